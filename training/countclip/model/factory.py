"""Model specs to adapters: the one owner of model loading, and the only module that imports backends.

`load_model(spec)` resolves a spec by its *form*, never by substrings of a model name:
  - "open_clip:ARCH/PRETRAINED" or "hf-hub:ORG/REPO"   -> open_clip (when installed)
  - "random:ARCH" (ARCH in hf_clip.ARCHITECTURES)        -> a randomly initialised transformers CLIP
  - "random:ARCH" (ARCH in conv_clip.CONV_ARCHITECTURES) -> a randomly initialised convolutional CLIP
  - a directory ConvClipAdapter.save wrote (conv_clip_config.json) -> that convolutional CLIP
  - a directory OpenClipAdapter.save wrote (open_clip_config.json) -> that open_clip model
  - an existing local directory or a Hugging Face hub id -> transformers CLIPModel

open_clip itself is optional: open_clip_adapter imports it only when one of its specs is loaded.
"""

from __future__ import annotations

from pathlib import Path

from countclip.model import conv_clip, hf_clip, open_clip_adapter
from countclip.model.base import ClipAdapter

RANDOM_PREFIX = "random:"


def architectures() -> list[str]:
    """Every name `random:NAME` (and `create_model`) accepts."""
    return [*hf_clip.ARCHITECTURES, *conv_clip.CONV_ARCHITECTURES]


def create_model(arch_name: str, seed: int = 0, name: str | None = None) -> ClipAdapter:
    """A randomly initialised CLIP of a registered architecture, with CLIP's real BPE."""
    if arch_name in hf_clip.ARCHITECTURES:
        return hf_clip.create_hf_clip(arch_name, seed=seed, name=name)
    if arch_name in conv_clip.CONV_ARCHITECTURES:
        return conv_clip.create_conv_model(arch_name, seed=seed, name=name)
    raise ValueError(f"unknown architecture {arch_name!r}; known: {', '.join(architectures())}")


def load_model(spec: str) -> ClipAdapter:
    """Resolve a model spec (see the module docstring) to an adapter."""
    if spec.startswith("open_clip:") or spec.startswith("hf-hub:"):
        return open_clip_adapter.load_open_clip(spec)
    if spec.startswith(RANDOM_PREFIX):
        return create_model(spec.removeprefix(RANDOM_PREFIX))
    if conv_clip.is_conv_clip_dir(Path(spec)):  # a directory ConvClipAdapter.save wrote
        return conv_clip.load_conv_clip(spec)
    if (Path(spec) / open_clip_adapter.CONFIG_FILE).is_file():  # a directory OpenClipAdapter.save wrote
        return open_clip_adapter.load_open_clip(spec)
    return hf_clip.load_hf_clip(spec)
