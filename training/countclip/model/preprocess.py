"""Image preprocessing, exactly as the service reproduces it (server/model/preprocess.ts, sharp).

`PreprocessConfig` is what a bundle's preprocess.json holds; `preprocess_image` is what every
adapter's `preprocess` does with it. No model here: the data loader, the ONNX bundle model and
the detector verification use it without loading one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


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
