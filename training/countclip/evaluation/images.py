"""Decoding untrusted image bytes: size caps, decompression-bomb checks, classified failures.

Every failure is an `ImageRejected` whose `reason` is one of REASONS, so callers (the
downloader, the dataset loaders) can report *why* an image was skipped instead of crashing.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# 64 megapixels (e.g. 8000 x 8000): far above any benchmark photo, far below a bomb's size.
DEFAULT_MAX_PIXELS = 64_000_000
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
REASONS = ("missing", "too_large", "too_many_pixels", "truncated", "undecodable")


class ImageRejected(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decode `data` (so truncation shows now, not mid-batch); refuse bombs before decoding."""
    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS and raises above twice that; we refuse at our own cap
            # and turn PIL's warning into a refusal too, whatever the global setting is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected("too_many_pixels", f"{width}x{height} exceeds {max_pixels} pixels")
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected("too_many_pixels", str(error)) from error
    except UnidentifiedImageError as error:
        raise ImageRejected("undecodable", "not a recognised image format") from error
    except EOFError as error:
        raise ImageRejected("truncated", f"image data ends early ({error})") from error
    except (OSError, SyntaxError, ValueError, TypeError, MemoryError) as error:
        # PIL reports a short file as OSError("image file is truncated ...").
        reason = "truncated" if "truncated" in str(error).lower() else "undecodable"
        raise ImageRejected(reason, f"{type(error).__name__}: {error}") from error
    return image


def open_image_file(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> Image.Image:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ImageRejected("missing", f"{path}: {error.strerror or error}") from error
    if size > max_bytes:
        raise ImageRejected("too_large", f"{path}: {size} bytes exceeds {max_bytes}")
    return decode_image(path.read_bytes(), max_pixels)
