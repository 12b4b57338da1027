"""Emoji sprites rendered once from Noto Color Emoji, then scaled and rotated from a cache.

Noto Color Emoji is a bitmap (CBDT) font with a single strike at 109 px, so every
glyph is rendered at that size exactly once and all other sizes are resampled
from it; rendering text per instance would be ~20x slower.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

STRIKE_SIZE = 109  # the font's only bitmap size; FreeType refuses others
FONT_ENV = "COUNTCLIP_EMOJI_FONT"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
    "/System/Library/Fonts/Apple Color Emoji.ttc",
)
INSTALL_HINT = ("the synthetic world needs the Noto Color Emoji font: install Debian's fonts-noto-color-emoji "
                "(sudo apt-get install fonts-noto-color-emoji) or set COUNTCLIP_EMOJI_FONT to the .ttf path")


class FontNotFoundError(RuntimeError):
    pass


def find_emoji_font() -> Path:
    """The emoji font path: $COUNTCLIP_EMOJI_FONT, else the usual system locations."""
    override = os.environ.get(FONT_ENV)
    if override:
        if not Path(override).is_file():
            raise FontNotFoundError(f"{FONT_ENV}={override} is not a file; {INSTALL_HINT}")
        return Path(override)
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise FontNotFoundError(INSTALL_HINT)


@lru_cache(maxsize=4)
def _font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, STRIKE_SIZE)


@lru_cache(maxsize=256)
def master_sprite(emoji: str, font_path: str | None = None) -> Image.Image:
    """The emoji at the font's native size, RGBA, cropped to its visible pixels."""
    font = _font(font_path or str(find_emoji_font()))
    canvas = Image.new("RGBA", (STRIKE_SIZE * 2, STRIKE_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((STRIKE_SIZE // 4, STRIKE_SIZE // 4), emoji, font=font, embedded_color=True)
    box = canvas.getchannel("A").getbbox()
    if box is None:
        raise ValueError(f"the emoji font has no glyph for {emoji!r}")
    return canvas.crop(box)


@lru_cache(maxsize=4096)
def _scaled(emoji: str, long_edge: int, mirrored: bool) -> Image.Image:
    master = master_sprite(emoji)
    scale = long_edge / max(master.size)
    size = (max(1, round(master.width * scale)), max(1, round(master.height * scale)))
    # Downscale in premultiplied alpha so transparent pixels don't bleed dark fringes.
    sprite = master.convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    return sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored else sprite


def sprite(emoji: str, long_edge: int, angle: float = 0.0, mirrored: bool = False) -> Image.Image:
    """The emoji scaled so its longer side is `long_edge` px, mirrored and rotated (degrees, CCW)."""
    if long_edge < 1:
        raise ValueError(f"sprite size must be >= 1 px, got {long_edge}")
    scaled = _scaled(emoji, int(long_edge), bool(mirrored))
    if abs(angle) < 0.5:
        return scaled
    return scaled.convert("RGBa").rotate(angle, resample=Image.Resampling.BICUBIC, expand=True).convert("RGBA")
