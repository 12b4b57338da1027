"""Raw bytes -> (uint8 image crop, caption, metadata), or the reason the sample is skipped.

Decoding stops at the uint8 crop on purpose: the float normalisation happens on the training
device (`normalize_pixels`), so workers ship 4x fewer bytes and the GPU does the arithmetic.
`resize_and_crop` + `normalize_pixels` reproduce `countclip.model.preprocess.preprocess_image` exactly
(a test holds them together).
"""

from __future__ import annotations

import functools
import io
import json
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from countclip.data.sources import RawSample
from countclip.model import preprocess
from countclip.model.preprocess import PreprocessConfig

SKIP_REASONS = ("missing_image", "corrupt_image", "missing_caption", "empty_caption", "bad_utf8")
# Counted alongside the skips, but such samples are still trained on (their caption is fine).
USED_ANYWAY = ("bad_metadata",)


@dataclass
class Decoded:
    key: str
    pixels: np.ndarray  # uint8 [H, W, 3]
    caption: str
    meta: dict[str, Any]
    position: dict[str, int] | None


@dataclass
class Skipped:
    key: str
    reason: str
    detail: str
    position: dict[str, int] | None


def resize_and_crop(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """The integer half of preprocessing (preprocess.resize_and_crop) as a uint8 HWC array."""
    image = preprocess.resize_and_crop(image, config)
    return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy wants one)


@functools.lru_cache(maxsize=8)
def _mean_std(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Built once per device: a fresh torch.tensor(..., device="cuda") every step is a blocking copy.
    return (torch.tensor(mean, dtype=torch.float32, device=device),
            torch.tensor(std, dtype=torch.float32, device=device))


def normalize_pixels(pixels: torch.Tensor, config: PreprocessConfig, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised [B, 3, H, W] on the tensor's device."""
    mean, std = _mean_std(tuple(config.mean), tuple(config.std), pixels.device)
    values = (pixels.to(torch.float32) / 255.0 - mean) / std
    return values.permute(0, 3, 1, 2).contiguous().to(dtype)


def decode(raw: RawSample, config: PreprocessConfig) -> Decoded | Skipped:
    """Never raises on bad data: every failure becomes a `Skipped` with a reason from SKIP_REASONS."""
    def skip(reason: str, detail: str = "") -> Skipped:
        return Skipped(raw.key, reason, detail, raw.position)

    if raw.text is None:
        return skip("missing_caption")
    try:
        caption = raw.text.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        return skip("bad_utf8", str(error))
    if not caption:
        return skip("empty_caption")
    meta: dict[str, Any] = {}
    if raw.meta:
        try:
            loaded = json.loads(raw.meta.decode("utf-8"))
            meta = loaded if isinstance(loaded, dict) else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            meta = {"_bad_metadata": True}  # the pair is still usable; the counter notes it
    if not raw.image:
        return skip("missing_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw.image)) as image:
                image.load()  # forces a full decode: truncated files fail here, not later
                pixels = resize_and_crop(image, config)
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ValueError, bombs ...)
        return skip("corrupt_image", f"{type(error).__name__}: {error}")
    return Decoded(raw.key, pixels, caption, meta, raw.position)


def decode_chunk(chunk: list[RawSample], config: PreprocessConfig) -> list[Decoded | Skipped]:
    """Worker entry point (top-level so process pools can pickle it)."""
    return [decode(raw, config) for raw in chunk]


class SkipStats:
    """Counts of skipped samples by reason, with a few example keys for the report."""

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self.counts: Counter[str] = Counter(counts or {})
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, key: str) -> None:
        self.counts[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < 5:
            bucket.append(key)

    def total(self) -> int:
        """Samples actually dropped (problems in USED_ANYWAY are not drops)."""
        return sum(count for reason, count in self.counts.items() if reason not in USED_ANYWAY)

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)

    def describe(self) -> str:
        return describe_skips(self.counts)


def describe_skips(counts: dict[str, int]) -> str:
    dropped = {reason: n for reason, n in counts.items() if reason not in USED_ANYWAY}
    text = "no samples skipped"
    if dropped:
        text = f"skipped {sum(dropped.values())} samples (" + ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) + ")"
    for reason in USED_ANYWAY:
        if counts.get(reason):
            text += f"; {counts[reason]} samples with {reason.replace('_', ' ')} used anyway"
    return text
