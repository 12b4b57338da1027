"""A small convolutional CLIP: the synthetic counting world's model (`random:small-conv`).

Why a convolutional image tower: the embedded default model is trained from scratch on 2 CPU
cores in minutes. A small ViT at that budget barely learns anything (a supervised count probe
stayed at chance for 300 steps), while a five-layer CNN learns to count in a few hundred
steps: convolutions bring locality and translation equivariance for free. CLIP itself ships
convolutional image towers (the RN50 family), so this is still CLIP: two towers, contrastive
training, cosine similarity with a learned temperature.

Each convolution is followed by a GroupNorm (per image, so nothing couples the images of a
batch, unlike BatchNorm) and GELU, and the tower ends with a mean over locations: an object
contributes much the same feature wherever it is. A per-location LayerNorm was tried as well
and learned slower (pre-training loss 4.19 against 3.64 after 200 steps, same data and seed).

The text tower is transformers' `CLIPTextModelWithProjection` with CLIP's BPE, so the
service's tokenizer and ONNX text path are the same as for any CLIP.

On disk (what `ConvClipAdapter.save` writes and `load_conv_clip` reads):
    conv_clip_config.json   the architecture (ConvClipArchitecture)
    model.safetensors       all weights
    vocab.json, merges.txt, tokenizer_config.json ...   the CLIP tokenizer
    preprocess.json, countclip_model.json (family "conv")
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from countclip.model.base import PREPROCESS_FILE, ClipTokenizerAdapter, clip_bpe_dir, clip_tokenizer, read_model_meta
from countclip.model.preprocess import PreprocessConfig

CONFIG_FILE = "conv_clip_config.json"
WEIGHTS_FILE = "model.safetensors"
GROUPS = 8  # GroupNorm groups; every width is a multiple of it


@dataclass(frozen=True)
class ConvClipArchitecture:
    embed_dim: int
    image_size: int
    channels: tuple[int, ...]  # one 3x3 convolution per entry
    strides: tuple[int, ...]
    text_width: int
    text_layers: int
    text_heads: int
    context_length: int = 32
    vocab_size: int = 49408
    head_width: int = 0  # 0: the pooled features are projected linearly; N: through a GELU MLP of width N

    def __post_init__(self) -> None:
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError("channels and strides need one entry per convolution")
        if any(channels % GROUPS for channels in self.channels):
            raise ValueError(f"every width must be a multiple of {GROUPS} (GroupNorm groups)")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ConvClipArchitecture":
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        known["channels"], known["strides"] = tuple(known["channels"]), tuple(known["strides"])
        return cls(**known)


CONV_ARCHITECTURES: dict[str, ConvClipArchitecture] = {
    # 48 px in, 6x6 locations out: at 64 images a step, ~0.25 s on 2 CPU cores with the text tower.
    # The text tower keeps CLIP's 49,408-token BPE; at width 64 that table is 12.6 MB of the bundle.
    # The MLP head: with a linear projection the embedding's direction can only move along one arc
    # as the count grows, so adjacent counts stay close; a hidden layer lets each count get a
    # direction of its own (a supervised count probe on the pooled features reached 49% after 300
    # steps with it, 39% with a linear head; same data and seed).
    "small-conv": ConvClipArchitecture(embed_dim=128, image_size=48, channels=(16, 32, 64, 64, 128),
                                       strides=(2, 1, 2, 1, 2), text_width=64, text_layers=3, text_heads=4,
                                       head_width=256),
    # The default model since it had to know object kinds first: 64 px in (objects 10-16 px across,
    # where 48 px left them 7-9 px and the baseline's kind zero-shot under 40%), 8x8 locations out,
    # and a wider last layer (160): cheap at 8x8, and it holds the features of 52 kinds and 10 counts.
    # About 26M multiply-adds per image, 1.9x the 48 px tower's 13.5M.
    "small-conv-64": ConvClipArchitecture(embed_dim=128, image_size=64, channels=(16, 32, 64, 64, 160),
                                          strides=(2, 1, 2, 1, 2), text_width=64, text_layers=3, text_heads=4,
                                          head_width=256),
    # Unit tests: milliseconds per step.
    "tiny-conv": ConvClipArchitecture(embed_dim=32, image_size=32, channels=(8, 16), strides=(2, 2),
                                      text_width=32, text_layers=2, text_heads=2, head_width=16),
}


class ConvImageTower(nn.Module):
    """conv3x3 -> GroupNorm -> GELU, repeated; mean over locations; a linear or MLP projection."""

    def __init__(self, arch: ConvClipArchitecture) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for channels, stride in zip(arch.channels, arch.strides):
            layers += [nn.Conv2d(previous, channels, 3, stride, 1, bias=False), nn.GroupNorm(GROUPS, channels), nn.GELU()]
            previous = channels
        self.features = nn.Sequential(*layers)
        self.projection: nn.Module = nn.Linear(previous, arch.embed_dim)
        if arch.head_width:
            self.projection = nn.Sequential(nn.Linear(previous, arch.head_width), nn.GELU(),
                                            nn.Linear(arch.head_width, arch.embed_dim))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features(pixel_values).mean(dim=(2, 3)))


class ConvClipModel(nn.Module):
    def __init__(self, arch: ConvClipArchitecture) -> None:
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModelWithProjection

        self.arch = arch
        self.vision = ConvImageTower(arch)
        text_config = CLIPTextConfig(
            vocab_size=arch.vocab_size, hidden_size=arch.text_width, intermediate_size=4 * arch.text_width,
            num_hidden_layers=arch.text_layers, num_attention_heads=arch.text_heads,
            max_position_embeddings=arch.context_length, projection_dim=arch.embed_dim, bos_token_id=49406,
            eos_token_id=49407, pad_token_id=49407, hidden_act="quick_gelu")
        self.text = CLIPTextModelWithProjection(text_config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))


class ConvClipAdapter(ClipTokenizerAdapter):
    def __init__(self, model: ConvClipModel, tokenizer: Any, preprocess_config: PreprocessConfig, name: str,
                 base_model: str, tokenizer_dir: Path | None = None) -> None:
        super().__init__(model, tokenizer, preprocess_config, name=name, base_model=base_model,
                         embed_dim=model.arch.embed_dim, context_length=model.arch.context_length,
                         tokenizer_dir=tokenizer_dir)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.vision(pixel_values)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.text(input_ids=input_ids, attention_mask=attention_mask).text_embeds

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        # The image tower is a few small convolutions; only the text transformer has activations worth it.
        if enabled:
            self.model.text.gradient_checkpointing_enable()
        else:
            self.model.text.gradient_checkpointing_disable()

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().contiguous().cpu() for key, value in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        (directory / CONFIG_FILE).write_text(json.dumps(self.model.arch.to_json(), indent=2))
        self.write_metadata(directory, family="conv")
        return directory


def create_conv_model(arch_name: str, seed: int = 0, name: str | None = None) -> ConvClipAdapter:
    """A randomly initialised convolutional CLIP of a registered architecture, with CLIP's real BPE."""
    arch = CONV_ARCHITECTURES[arch_name]
    torch.manual_seed(seed)
    model = ConvClipModel(arch)
    preprocess = PreprocessConfig(size=arch.image_size, crop_size=arch.image_size)
    return ConvClipAdapter(model, clip_tokenizer(clip_bpe_dir(), arch.context_length), preprocess,
                           name=name or f"countclip-{arch_name}-random", base_model=f"random:{arch_name}")


def is_conv_clip_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def load_conv_clip(directory: str | Path) -> ConvClipAdapter:
    """Read back what `ConvClipAdapter.save` wrote (safetensors only: no pickle is ever loaded)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    arch = ConvClipArchitecture.from_json(json.loads((directory / CONFIG_FILE).read_text()))
    model = ConvClipModel(arch)
    missing, unexpected = model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=False)
    # transformers may or may not register position_ids as a persistent buffer; nothing else may differ.
    missing = [key for key in missing if not key.endswith("position_ids")]
    unexpected = [key for key in unexpected if not key.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"{directory}: weights do not match the architecture "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    meta = read_model_meta(directory)
    preprocess_file = directory / PREPROCESS_FILE
    preprocess = (PreprocessConfig.from_json(json.loads(preprocess_file.read_text())) if preprocess_file.exists()
                  else PreprocessConfig(size=arch.image_size, crop_size=arch.image_size))
    return ConvClipAdapter(model, clip_tokenizer(directory, arch.context_length), preprocess,
                           name=meta.get("name", str(directory)), base_model=meta.get("base_model", str(directory)),
                           tokenizer_dir=directory)
