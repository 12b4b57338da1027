"""Scene backgrounds: flat colours, gradients, smooth noise and simple textures.

Each background is a small spec (style + named colours) so a caption can describe
it ("on a blue gradient background") and a scene can be re-rendered from its spec.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Named colours a caption can use. Mostly light or mid tones: emoji read well on them.
PALETTE: dict[str, tuple[int, int, int]] = {
    "white": (248, 248, 246), "gray": (170, 172, 176), "black": (28, 28, 32), "red": (214, 64, 58),
    "orange": (242, 156, 72), "yellow": (246, 224, 110), "green": (112, 186, 108), "teal": (72, 164, 160),
    "blue": (96, 150, 222), "navy": (36, 52, 110), "purple": (150, 108, 196), "pink": (244, 170, 198),
    "beige": (232, 216, 184), "brown": (140, 98, 66), "mint": (190, 234, 208), "sky blue": (170, 214, 244),
    "lavender": (214, 200, 240), "cream": (252, 244, 222),
}

STYLES = ("flat", "gradient", "noise", "stripes", "grain", "checker")
# Never in training shards; the synthetic CountBench uses them among the others.
HELD_OUT_STYLES = frozenset({"checker"})


@dataclass(frozen=True)
class Background:
    style: str
    color: str
    second: str  # the other colour of gradients, stripes and checkers
    angle: float  # gradient / stripe direction, degrees
    period: float  # stripe / checker period as a fraction of the image side
    seed: int  # noise and grain

    def describe(self) -> str:
        """A caption phrase: 'a green background', 'a blue and white striped background'."""
        if self.style == "flat":
            return f"{_article(self.color)} {self.color} background"
        if self.style == "gradient":
            return f"{_article(self.color)} {self.color} gradient background"
        if self.style in ("noise", "grain"):
            return f"a textured {self.color} background"
        pattern = "striped" if self.style == "stripes" else "checkered"
        return f"{_article(self.color)} {self.color} and {self.second} {pattern} background"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def sample_background(rng: random.Random, styles: tuple[str, ...] = STYLES) -> Background:
    names = list(PALETTE)
    color = rng.choice(names)
    second = rng.choice([name for name in names if name != color])
    return Background(style=rng.choice(styles), color=color, second=second, angle=rng.uniform(0, 180),
                      period=rng.uniform(0.08, 0.25), seed=rng.randrange(2**31))


def render_background(spec: Background, size: int) -> Image.Image:
    a = np.asarray(PALETTE[spec.color], dtype=np.float32)
    b = np.asarray(PALETTE[spec.second], dtype=np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    theta = np.deg2rad(spec.angle)
    along = xs * np.cos(theta) + ys * np.sin(theta)  # position along the pattern direction
    if spec.style == "flat":
        pixels = np.broadcast_to(a, (size, size, 3))
    elif spec.style == "gradient":
        t = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
        pixels = a * (1 - t[..., None]) + b * t[..., None]
    elif spec.style == "stripes":
        t = (np.floor(along / spec.period) % 2)[..., None]
        pixels = a * (1 - t) + b * t
    elif spec.style == "checker":
        t = ((np.floor(xs / spec.period) + np.floor(ys / spec.period)) % 2)[..., None]
        pixels = a * (1 - t) + b * t
    elif spec.style in ("noise", "grain"):
        pixels = a + _noise(spec, size)[..., None]
    else:
        raise ValueError(f"unknown background style {spec.style!r}; known: {', '.join(STYLES)}")
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _noise(spec: Background, size: int) -> np.ndarray:
    """Smooth blotches ('noise') or fine paper grain ('grain'), zero-mean, in grey levels."""
    gen = np.random.default_rng(spec.seed)
    if spec.style == "grain":
        return gen.normal(0.0, 14.0, (size, size)).astype(np.float32)
    cells = gen.normal(0.0, 28.0, (5, 5)).astype(np.float32)
    coarse = Image.fromarray(cells, "F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(coarse, dtype=np.float32) + gen.normal(0.0, 4.0, (size, size)).astype(np.float32)
