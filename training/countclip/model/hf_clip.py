"""transformers CLIP behind the `ClipAdapter` interface: hub ids, local directories, random shapes.

    openai/clip-vit-base-patch32   a Hugging Face hub id (fetched into the HF cache)
    runs/b32/final                 a directory `HFClipAdapter.save` (or `save_pretrained`) wrote
    random:tiny, random:small ...  a randomly initialised CLIP of a shape in ARCHITECTURES
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from countclip.model.base import PREPROCESS_FILE, ClipTokenizerAdapter, clip_bpe_dir, clip_tokenizer, read_model_meta
from countclip.model.preprocess import OPENAI_MEAN, OPENAI_STD, PreprocessConfig


class HFClipAdapter(ClipTokenizerAdapter):
    """transformers `CLIPModel` + `CLIPTokenizer`."""

    def __init__(self, model: nn.Module, tokenizer: Any, preprocess_config: PreprocessConfig,
                 name: str, base_model: str | None = None, tokenizer_dir: Path | None = None) -> None:
        super().__init__(model, tokenizer, preprocess_config, name=name, base_model=base_model or name,
                         embed_dim=int(model.config.projection_dim),
                         context_length=int(model.config.text_config.max_position_embeddings),
                         tokenizer_dir=tokenizer_dir)

    @staticmethod
    def _features(output: Any) -> torch.Tensor:
        # transformers 4.x returns a tensor, 5.x a model output whose pooler_output is projected.
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._features(self.model.get_image_features(pixel_values=pixel_values))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        if enabled:
            self.model.gradient_checkpointing_enable()
        else:
            self.model.gradient_checkpointing_disable()

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory, safe_serialization=True)
        self.write_metadata(directory, family="hf")
        return directory


def _preprocess_from_hf_dir(directory: Path, image_size: int) -> PreprocessConfig:
    ours = directory / PREPROCESS_FILE
    if ours.exists():
        return PreprocessConfig.from_json(json.loads(ours.read_text()))
    theirs = directory / "preprocessor_config.json"
    if theirs.exists():
        data = json.loads(theirs.read_text())
        size = data.get("size", image_size)
        size = size.get("shortest_edge", image_size) if isinstance(size, dict) else size
        crop = data.get("crop_size", image_size)
        crop = crop.get("height", image_size) if isinstance(crop, dict) else crop
        return PreprocessConfig(size=int(size), crop_size=int(crop),
                                mean=tuple(data.get("image_mean", OPENAI_MEAN)),
                                std=tuple(data.get("image_std", OPENAI_STD)))
    return PreprocessConfig(size=image_size, crop_size=image_size)


def load_hf_clip(spec: str, revision: str | None = None) -> HFClipAdapter:
    """A transformers CLIP by hub id or local directory (the same code path for both)."""
    from huggingface_hub import snapshot_download
    from transformers import CLIPModel

    path = Path(spec)
    if not path.is_dir():
        # Hub id: fetch (or find in the HF cache) the files, then load them like a local checkpoint.
        path = Path(snapshot_download(spec, revision=revision,
                                      allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    model = CLIPModel.from_pretrained(path)
    tokenizer = clip_tokenizer(path, int(model.config.text_config.max_position_embeddings))
    meta = read_model_meta(path)
    preprocess = _preprocess_from_hf_dir(path, int(model.config.vision_config.image_size))
    return HFClipAdapter(model, tokenizer, preprocess, name=meta.get("name", spec),
                         base_model=meta.get("base_model", spec), tokenizer_dir=path)


# --- Architectures built from scratch (random init): tests, the synthetic world, GPU benchmarks ---

@dataclass(frozen=True)
class ClipArchitecture:
    """A CLIP shape. Names are registered below; nothing switches on substrings of them."""

    embed_dim: int
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    text_width: int
    text_layers: int
    text_heads: int
    context_length: int = 77
    vocab_size: int = 49408
    extra: dict[str, Any] = field(default_factory=dict)


ARCHITECTURES: dict[str, ClipArchitecture] = {
    # Unit tests: milliseconds per step on a CPU.
    "tiny": ClipArchitecture(embed_dim=32, image_size=32, patch_size=8, vision_width=32, vision_layers=2,
                             vision_heads=2, text_width=32, text_layers=2, text_heads=2, context_length=32),
    # The synthetic counting world's model: trained from scratch on 2 CPU cores within minutes, so the
    # vision tower is small (48 px, 8 px patches -> 36 tokens; an emoji among ten is ~1 patch). The text
    # tower keeps CLIP's 49,408-token BPE for the service's tokenizer; at width 64 that table is 12.6 MB
    # of the bundle's <= 20 MB.
    "small": ClipArchitecture(embed_dim=128, image_size=48, patch_size=8, vision_width=96, vision_layers=4,
                              vision_heads=4, text_width=64, text_layers=3, text_heads=4, context_length=32),
    "vit-b-32": ClipArchitecture(embed_dim=512, image_size=224, patch_size=32, vision_width=768, vision_layers=12,
                                 vision_heads=12, text_width=512, text_layers=12, text_heads=8),
    "vit-l-14": ClipArchitecture(embed_dim=768, image_size=224, patch_size=14, vision_width=1024, vision_layers=24,
                                 vision_heads=16, text_width=768, text_layers=12, text_heads=12),
}


def hf_config(arch: ClipArchitecture) -> Any:
    from transformers import CLIPConfig

    text = dict(vocab_size=arch.vocab_size, hidden_size=arch.text_width, intermediate_size=4 * arch.text_width,
                num_hidden_layers=arch.text_layers, num_attention_heads=arch.text_heads,
                max_position_embeddings=arch.context_length, bos_token_id=49406, eos_token_id=49407,
                pad_token_id=49407, hidden_act="quick_gelu")
    vision = dict(hidden_size=arch.vision_width, intermediate_size=4 * arch.vision_width,
                  num_hidden_layers=arch.vision_layers, num_attention_heads=arch.vision_heads,
                  image_size=arch.image_size, patch_size=arch.patch_size, hidden_act="quick_gelu")
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=arch.embed_dim,
                      logit_scale_init_value=math.log(1 / 0.07))


def create_hf_clip(arch_name: str, seed: int = 0, name: str | None = None) -> HFClipAdapter:
    """A randomly initialised transformers CLIP of a shape in ARCHITECTURES, with CLIP's real BPE."""
    from transformers import CLIPModel

    arch = ARCHITECTURES[arch_name]
    torch.manual_seed(seed)
    model = CLIPModel(hf_config(arch))
    tokenizer = clip_tokenizer(clip_bpe_dir(), arch.context_length)
    preprocess = PreprocessConfig(size=arch.image_size, crop_size=arch.image_size)
    label = name or f"countclip-{arch_name}-random"
    return HFClipAdapter(model, tokenizer, preprocess, name=label, base_model=f"random:{arch_name}")
