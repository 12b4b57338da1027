"""Model adapters: one small interface over transformers CLIP and open_clip.

Everything above this module (losses, trainer, evaluation, export) talks to a
`ClipAdapter` and never to a framework directly:

    adapter.encode_image(pixel_values)            -> [B, D] projected features (not normalised)
    adapter.encode_text(input_ids, attention_mask) -> [B, D] projected features (not normalised)
    adapter.tokenize(texts)                         -> {"input_ids", "attention_mask"} padded to the batch's longest
    adapter.preprocess(pil_image)                   -> [3, H, W] float tensor
    adapter.preprocess_config                       -> dict written to a bundle's preprocess.json
    adapter.logit_scale                             -> the learnable *log* temperature (exp() it to scale logits)
    adapter.save(directory)                         -> a directory `load_model` reads back

`load_model(spec)` resolves a spec by its *form*, never by substrings of a model name:
  - "open_clip:ARCH/PRETRAINED" or "hf-hub:ORG/REPO"  -> open_clip (when installed)
  - "random:ARCH" (ARCH in ARCHITECTURES)              -> a randomly initialised transformers CLIP
  - "random:ARCH" (ARCH in conv_clip.CONV_ARCHITECTURES) -> a randomly initialised convolutional CLIP
  - a directory ConvClipAdapter.save wrote (conv_clip_config.json) -> that convolutional CLIP
  - an existing local directory or a Hugging Face hub id -> transformers CLIPModel
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

PREPROCESS_FILE = "preprocess.json"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
LOGIT_SCALE_MAX = math.log(100.0)


def clip_bpe_dir() -> Path:
    """CLIP's byte-level BPE vocabulary (vocab.json, merges.txt), shipped with the package."""
    return Path(str(resources.files("countclip") / "assets" / "clip-bpe"))


@dataclass(frozen=True)
class PreprocessConfig:
    """What the service needs to reproduce our image preprocessing exactly.

    resize the shortest edge to `size` (bicubic), centre-crop `crop_size`, scale to [0,1],
    normalise with mean/std per channel. RGB, alpha composited on white.
    """

    size: int = 224
    crop_size: int = 224
    interpolation: str = "bicubic"
    resize: str = "shortest_edge"
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    background: tuple[int, int, int] = (255, 255, 255)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PreprocessConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("mean", "std", "background"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Any PIL image to RGB; transparency is composited on `background` (not dropped to black)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray((array / peak * 255.0).round().astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


EXIF_ORIENTATION = 0x0112


def exif_orient(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (as browsers and the service's sharp pipeline do); else unchanged."""
    if image.getexif().get(EXIF_ORIENTATION, 1) in range(2, 9):
        return ImageOps.exif_transpose(image)
    return image


def resize_and_crop(image: Image.Image, config: PreprocessConfig) -> Image.Image:
    """EXIF-orient, RGB, shortest edge to `size` (bicubic), centre crop: the integer half of preprocessing."""
    image = to_rgb(exif_orient(image), config.background)
    width, height = image.size
    scale = config.size / min(width, height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left = (new_w - config.crop_size) // 2
    top = (new_h - config.crop_size) // 2
    return image.crop((left, top, left + config.crop_size, top + config.crop_size))


def preprocess_image(image: Image.Image, config: PreprocessConfig) -> torch.Tensor:
    """resize_and_crop, then normalise. Mirrors the service's sharp pipeline."""
    array = np.asarray(resize_and_crop(image, config), dtype=np.float32) / 255.0
    array = (array - np.asarray(config.mean, dtype=np.float32)) / np.asarray(config.std, dtype=np.float32)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


class ClipAdapter(nn.Module):
    """The interface every model family implements (see the module docstring)."""

    name: str
    base_model: str
    embed_dim: int
    context_length: int
    preprocess_config: PreprocessConfig

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def logit_scale(self) -> nn.Parameter:
        raise NotImplementedError

    def save(self, directory: str | Path) -> Path:
        raise NotImplementedError

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess_image(image, self.preprocess_config)

    def tokenizer_files(self) -> dict[str, Path]:
        """Files that let another runtime reproduce `tokenize` (copied into a bundle)."""
        raise NotImplementedError


class ClipTokenizerAdapter(ClipAdapter):
    """What every adapter with a transformers `CLIPTokenizer` shares: tokenize, tokenizer files, metadata."""

    tokenizer: Any
    _tokenizer_dir: Path | None = None

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        # Pad to the batch's longest caption, not to 77: most captions are short.
        encoded = self.tokenizer(list(texts), padding="longest", truncation=True,
                                 max_length=self.context_length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def tokenizer_files(self) -> dict[str, Path]:
        if self._tokenizer_dir is None:
            import tempfile

            self._tokenizer_dir = Path(tempfile.mkdtemp(prefix="countclip-tok-"))
            self.tokenizer.save_pretrained(self._tokenizer_dir)
        files = {}
        for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            path = self._tokenizer_dir / name
            if path.exists():
                files[name] = path
        return files

    def write_metadata(self, directory: Path, family: str) -> None:
        """Tokenizer, preprocess.json and countclip_model.json: everything but the weights."""
        self.tokenizer.save_pretrained(directory)
        (directory / PREPROCESS_FILE).write_text(json.dumps(self.preprocess_config.to_json(), indent=2))
        meta = {"name": self.name, "base_model": self.base_model, "family": family}
        (directory / "countclip_model.json").write_text(json.dumps(meta, indent=2))
        self._tokenizer_dir = directory


class HFClipAdapter(ClipTokenizerAdapter):
    """transformers `CLIPModel` + `CLIPTokenizer`."""

    def __init__(self, model: nn.Module, tokenizer: Any, preprocess_config: PreprocessConfig,
                 name: str, base_model: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess_config = preprocess_config
        self.name = name
        self.base_model = base_model or name
        self.embed_dim = int(model.config.projection_dim)
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self._tokenizer_dir: Path | None = None

    @staticmethod
    def _features(output: Any) -> torch.Tensor:
        # transformers 4.x returns a tensor, 5.x a model output whose pooler_output is projected.
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._features(self.model.get_image_features(pixel_values=pixel_values))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.model.logit_scale

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
    from transformers import CLIPModel, CLIPTokenizer

    path = Path(spec)
    if not path.is_dir():
        # Hub id: fetch (or find in the HF cache) the files, then load them like a local checkpoint.
        path = Path(snapshot_download(spec, revision=revision,
                                      allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    model = CLIPModel.from_pretrained(path)
    tokenizer = CLIPTokenizer.from_pretrained(path)
    tokenizer.model_max_length = int(model.config.text_config.max_position_embeddings)
    meta_file = path / "countclip_model.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    preprocess = _preprocess_from_hf_dir(path, int(model.config.vision_config.image_size))
    adapter = HFClipAdapter(model, tokenizer, preprocess, name=meta.get("name", spec),
                            base_model=meta.get("base_model", spec))
    adapter._tokenizer_dir = path
    return adapter


def load_model(spec: str) -> ClipAdapter:
    """Resolve a model spec (see module docstring) to an adapter."""
    from countclip import conv_clip  # imported here: conv_clip builds on this module

    if spec.startswith("open_clip:") or spec.startswith("hf-hub:"):
        from countclip.open_clip_adapter import load_open_clip

        return load_open_clip(spec)
    if spec.startswith("random:"):
        arch_name = spec.removeprefix("random:")
        if arch_name in conv_clip.CONV_ARCHITECTURES:
            return conv_clip.create_conv_model(arch_name)
        return create_model(arch_name)
    if conv_clip.is_conv_clip_dir(Path(spec)):  # a directory ConvClipAdapter.save wrote
        return conv_clip.load_conv_clip(spec)
    if (Path(spec) / "open_clip_config.json").is_file():  # a directory OpenClipAdapter.save wrote
        from countclip.open_clip_adapter import load_open_clip

        return load_open_clip(spec)
    return load_hf_clip(spec)


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


def create_model(arch_name: str, seed: int = 0, name: str | None = None) -> HFClipAdapter:
    """A randomly initialised transformers CLIP of a registered architecture, with CLIP's real BPE."""
    from transformers import CLIPModel, CLIPTokenizer

    if arch_name not in ARCHITECTURES:
        from countclip.conv_clip import CONV_ARCHITECTURES

        known = ", ".join([*ARCHITECTURES, *CONV_ARCHITECTURES])
        raise ValueError(f"unknown architecture {arch_name!r}; known: {known}")
    arch = ARCHITECTURES[arch_name]
    torch.manual_seed(seed)
    model = CLIPModel(hf_config(arch))
    tokenizer = CLIPTokenizer.from_pretrained(clip_bpe_dir())
    tokenizer.model_max_length = arch.context_length
    preprocess = PreprocessConfig(size=arch.image_size, crop_size=arch.image_size)
    label = name or f"countclip-{arch_name}-random"
    return HFClipAdapter(model, tokenizer, preprocess, name=label, base_model=f"random:{arch_name}")
