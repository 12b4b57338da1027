"""preprocess_image applies EXIF orientation, as the service's sharp pipeline does."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from countclip.model.preprocess import PreprocessConfig, exif_orient, preprocess_image

torch.set_num_threads(1)


def _jpeg_with_orientation(array: np.ndarray, orientation: int) -> Image.Image:
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    buffer.seek(0)
    return Image.open(buffer)


def test_orientation_6_rotates_before_preprocessing() -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)
    tagged = _jpeg_with_orientation(array, 6)
    assert tagged.size == (50, 30)
    upright = exif_orient(tagged)
    assert upright.size == (30, 50)  # orientation 6: rotate 90 degrees clockwise
    config = PreprocessConfig(size=16, crop_size=16)
    # The same decoded pixels turned 90 degrees clockwise, in a fresh image with no EXIF.
    rotated = Image.fromarray(np.rot90(np.asarray(tagged.convert("RGB")), k=-1).copy())
    expected = preprocess_image(rotated, config)
    assert torch.equal(preprocess_image(tagged, config), expected)


def test_images_without_orientation_are_untouched() -> None:
    image = Image.new("RGB", (8, 4), (10, 20, 30))
    assert exif_orient(image) is image
    tagged_normal = _jpeg_with_orientation(np.zeros((4, 8, 3), np.uint8), 1)
    assert exif_orient(tagged_normal) is tagged_normal
