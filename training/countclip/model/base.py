"""The model interface: one small `ClipAdapter` over every CLIP backend (hf_clip, open_clip, conv).

Everything above this package (losses, trainer, evaluation, export) talks to a `ClipAdapter`
and never to a framework directly:

    adapter.encode_image(pixel_values)            -> [B, D] projected features (not normalised)
    adapter.encode_text(input_ids, attention_mask) -> [B, D] projected features (not normalised)
    adapter.tokenize(texts)                         -> {"input_ids", "attention_mask"} padded to the batch's longest
    adapter.preprocess(pil_image)                   -> [3, H, W] float tensor
    adapter.preprocess_config                       -> dict written to a bundle's preprocess.json
    adapter.logit_scale                             -> the learnable *log* temperature (exp() it to scale logits)
    adapter.save(directory)                         -> a directory `factory.load_model` reads back

This module imports no backend: each backend module builds on it, and `factory` (the only
module that imports the backends) resolves a model spec to one of them.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from countclip.model.preprocess import PreprocessConfig, preprocess_image

PREPROCESS_FILE = "preprocess.json"
MODEL_META_FILE = "countclip_model.json"  # {"name", "base_model", "family"}, beside every saved model
LOGIT_SCALE_MAX = math.log(100.0)


def clip_bpe_dir() -> Path:
    """CLIP's byte-level BPE vocabulary (vocab.json, merges.txt), shipped with the package."""
    return Path(str(resources.files("countclip") / "assets" / "clip-bpe"))


def clip_tokenizer(source: Path | str, context_length: int) -> Any:
    """transformers' `CLIPTokenizer` from a directory of BPE files, truncating at `context_length`."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(source)
    tokenizer.model_max_length = context_length
    return tokenizer


def read_model_meta(directory: Path | str) -> dict[str, Any]:
    """A saved model's countclip_model.json, or {} (a checkpoint countclip did not write)."""
    path = Path(directory) / MODEL_META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


class ClipAdapter(nn.Module):
    """The interface every model family implements (see the module docstring).

    The attributes every backend sets are set here; `model` is the backend's module, whose
    `logit_scale` parameter is the adapter's."""

    name: str
    base_model: str
    embed_dim: int
    context_length: int
    preprocess_config: PreprocessConfig

    def __init__(self, model: nn.Module, tokenizer: Any, preprocess_config: PreprocessConfig, *, name: str,
                 base_model: str, embed_dim: int, context_length: int) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.preprocess_config = preprocess_config
        self.name = name
        self.base_model = base_model
        self.embed_dim = embed_dim
        self.context_length = context_length

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.model.logit_scale

    def save(self, directory: str | Path) -> Path:
        raise NotImplementedError

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess_image(image, self.preprocess_config)

    def tokenizer_files(self) -> dict[str, Path]:
        """Files that let another runtime reproduce `tokenize` (copied into a bundle)."""
        raise NotImplementedError

    def write_model_meta(self, directory: Path, family: str) -> None:
        """preprocess.json and countclip_model.json: what every saved model holds besides weights."""
        (directory / PREPROCESS_FILE).write_text(json.dumps(self.preprocess_config.to_json(), indent=2))
        meta = {"name": self.name, "base_model": self.base_model, "family": family}
        (directory / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))


class ClipTokenizerAdapter(ClipAdapter):
    """What every adapter with a transformers `CLIPTokenizer` shares: tokenize, tokenizer files, metadata."""

    _tokenizer_dir: Path | None = None

    def __init__(self, model: nn.Module, tokenizer: Any, preprocess_config: PreprocessConfig, *, name: str,
                 base_model: str, embed_dim: int, context_length: int, tokenizer_dir: Path | None = None) -> None:
        super().__init__(model, tokenizer, preprocess_config, name=name, base_model=base_model, embed_dim=embed_dim,
                         context_length=context_length)
        self._tokenizer_dir = tokenizer_dir  # where the tokenizer's files lie, when they do

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
        self.write_model_meta(directory, family)
        self._tokenizer_dir = directory
