"""Scenes with an exact, known number of objects of one kind, plus optional distractors.

A scene is sampled as a spec (kind, count, layout, background) and rendered from
it, so the same seed always gives the same pixels and metadata. Objects of one
scene share a size (with a little jitter) drawn independently of the count, get
small rotations and random mirror flips, and are placed by rejection sampling so that no two overlap heavily.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from PIL import Image

from countclip.synth.backgrounds import STYLES, Background, render_background, sample_background
from countclip.synth.kinds import Kind
from countclip.synth.sprites import sprite

MAX_COUNT = 10
MIN_GAP = 0.85  # centres at least this fraction of the two radii apart: touching, never hidden
MAX_ROTATION = 20.0


@dataclass(frozen=True)
class Placement:
    emoji: str
    x: float  # centre, fraction of the image side
    y: float
    size: float  # long edge, fraction of the image side
    angle: float
    mirrored: bool


@dataclass(frozen=True)
class Scene:
    kind: Kind
    count: int
    background: Background
    objects: tuple[Placement, ...]  # the counted objects first, then distractors
    distractor: Kind | None = None
    distractor_count: int = 0
    meta: dict = field(default_factory=dict, compare=False)

    def render(self, size: int) -> Image.Image:
        canvas = render_background(self.background, size).convert("RGBA")
        for item in self.objects:
            image = sprite(item.emoji, max(1, round(item.size * size)), item.angle, item.mirrored)
            left = round(item.x * size - image.width / 2)
            top = round(item.y * size - image.height / 2)
            canvas.alpha_composite(image, (left, top)) if left >= 0 and top >= 0 else canvas.paste(
                image, (left, top), image)
        return canvas.convert("RGB")


# Object size (long edge, fraction of the side), drawn per scene from one range whatever the count.
# As in photos, more objects mostly cover more of the image; tying size to count (shrinking objects
# so that the covered area stays constant) would make the world adversarial to counting and unlike
# real data. `layout` shrinks a scene that does not fit, so ten objects end up near 0.18 while one to
# four keep the size drawn: at 64 px input an object is then 10-16 px across, enough to tell a cat from
# a dog (at 0.14-0.18 of 48 px, 7-9 px, the baseline's object-kind zero-shot stayed under 40%).
SIZE_RANGE = (0.15, 0.25)


def _place(rng: random.Random, sizes: list[float]) -> list[tuple[float, float]] | None:
    centres: list[tuple[float, float, float]] = []
    for size in sizes:
        radius = size / 2
        for _ in range(200):
            x, y = rng.uniform(radius, 1 - radius), rng.uniform(radius, 1 - radius)
            if all(math.hypot(x - cx, y - cy) >= MIN_GAP * (radius + cr) for cx, cy, cr in centres):
                centres.append((x, y, radius))
                break
        else:
            return None
    return [(x, y) for x, y, _ in centres]


def layout(rng: random.Random, emojis: list[str]) -> tuple[Placement, ...]:
    """Non-overlapping placements for the given sprites (shrinking the scale until they fit)."""
    base = rng.uniform(*SIZE_RANGE)
    while True:
        sizes = [base * rng.uniform(0.85, 1.15) for _ in emojis]
        centres = _place(rng, sizes)
        if centres is not None:
            break
        base *= 0.9
    return tuple(Placement(emoji=emoji, x=x, y=y, size=size, angle=rng.uniform(-MAX_ROTATION, MAX_ROTATION),
                           mirrored=rng.random() < 0.5)
                 for emoji, size, (x, y) in zip(emojis, sizes, centres))


def sample_scene(rng: random.Random, kind: Kind, count: int, *, distractors: list[Kind] | tuple[Kind, ...] = (),
                 distractor_prob: float = 0.0, max_distractors: int = 2,
                 styles: tuple[str, ...] = STYLES) -> Scene:
    """`count` objects of `kind`; with probability `distractor_prob`, 1..max_distractors of another kind."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be in 1..{MAX_COUNT}, got {count}")
    others = [other for other in distractors if other.name != kind.name]
    distractor, n_distractors = None, 0
    if others and max_distractors > 0 and rng.random() < distractor_prob:
        distractor, n_distractors = rng.choice(others), rng.randint(1, max_distractors)
    emojis = [kind.emoji] * count + ([distractor.emoji] * n_distractors if distractor else [])
    placements = layout(rng, emojis)
    return Scene(kind=kind, count=count, background=sample_background(rng, styles), objects=placements,
                 distractor=distractor, distractor_count=n_distractors)
