"""Toy WebDataset shards with known counts: N drawn shapes, captioned "a photo of N red circles".

For tests, smoke runs and benchmarks that must not download anything. The shards use the
agreed img2dataset layout (`{key}.png`, `{key}.txt`, `{key}.json` with "count" and "noun").
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

from PIL import Image, ImageDraw

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine", 10: "ten"}
SHAPES = ("circles", "squares")
COLORS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60)}


def draw_shapes(count: int, shape: str, color: tuple[int, int, int], size: int, rng: random.Random) -> Image.Image:
    """`count` non-overlapping shapes on a light background, placed on a jittered grid."""
    image = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    grid = 4 if count > 9 else 3 if count > 4 else 2
    cell = size / grid
    radius = cell * 0.3
    cells = rng.sample(range(grid * grid), count)
    for index in cells:
        cx = (index % grid + 0.5) * cell + rng.uniform(-0.1, 0.1) * cell
        cy = (index // grid + 0.5) * cell + rng.uniform(-0.1, 0.1) * cell
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        (draw.ellipse if shape == "circles" else draw.rectangle)(box, fill=color)
    return image


def toy_sample(count: int, rng: random.Random, size: int = 64) -> tuple[Image.Image, str, dict]:
    shape = rng.choice(SHAPES)
    color_name = rng.choice(sorted(COLORS))
    image = draw_shapes(count, shape, COLORS[color_name], size, rng)
    caption = f"a photo of {NUMBER_WORDS[count]} {color_name} {shape}"
    return image, caption, {"count": count, "noun": shape}


def write_toy_shards(directory: str | Path, prefix: str, shards: int, per_shard: int, counts: tuple[int, ...],
                     seed: int = 0, size: int = 64) -> str:
    """Write `shards` tar files and return their brace-expanded spec."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for shard in range(shards):
        with tarfile.open(directory / f"{prefix}-{shard:05d}.tar", "w") as archive:
            for item in range(per_shard):
                image, caption, meta = toy_sample(rng.choice(counts), rng, size)
                key = f"{shard:05d}{item:04d}"
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                add_member(archive, f"{key}.png", buffer.getvalue())
                add_member(archive, f"{key}.txt", caption.encode())
                add_member(archive, f"{key}.json", json.dumps(meta).encode())
    return str(directory / f"{prefix}-{{{0:05d}..{shards - 1:05d}}}.tar")


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))
