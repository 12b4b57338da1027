"""Atomic output files: a reader never sees half a parquet, JSON report or PNG.

Everything is written to `<name>.tmp-<pid>` in the destination directory, flushed, and
renamed with `os.replace` (atomic on POSIX within one file system).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)`, then rename tmp_path to `path`; the tmp file is removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_count_histogram(path: str | Path, series: dict[str, dict[int, int]], title: str) -> Path:
    """Grouped bar chart: one bar group per count, one bar per named series (e.g. eligible vs
    selected), on a log scale. Drawn with Pillow: matplotlib's import alone costs a CPU-second."""
    from PIL import Image, ImageDraw, ImageFont

    counts = sorted({c for values in series.values() for c in values})
    width, height, left, right, top, bottom = 800, 450, 70, 20, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(ImageFont, 13)
    peak = max([v for values in series.values() for v in values.values()] + [1])
    decades = max(1, math.ceil(math.log10(peak)))

    def y(value: float) -> float:  # log10(1 + value) scale, so that 0 sits on the axis
        return height - bottom - (height - top - bottom) * math.log10(1 + value) / math.log10(1 + 10 ** decades)

    for value in [0] + [10 ** k for k in range(decades + 1)]:  # grid and y labels: 0, 1, 10, 100, ...
        draw.line([(left, y(value)), (width - right, y(value))], fill=(225, 225, 225))
        draw.text((left - 6, y(value)), f"{value:,}", fill="black", font=font, anchor="rm")
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    group = (width - left - right) / max(1, len(counts))
    bar = group * 0.8 / max(1, len(series))
    for i, count in enumerate(counts):
        x0 = left + i * group + group * 0.1
        for j, (name, values) in enumerate(series.items()):
            value = values.get(count, 0)
            if value:
                draw.rectangle([x0 + j * bar, y(value), x0 + (j + 1) * bar - 1, y(0)], fill=colours[j % len(colours)])
        draw.text((left + (i + 0.5) * group, height - bottom + 6), str(count), fill="black", font=font, anchor="mt")
    draw.line([(left, top), (left, y(0)), (width - right, y(0))], fill="black")
    draw.text((width / 2, height - 8), "count in caption", fill="black", font=font, anchor="ms")
    draw.text((width / 2, 12), title, fill="black", font=font, anchor="mt")
    draw.text((12, top - 14), "captions (log scale)", fill="black", font=font, anchor="lm")
    for j, name in enumerate(series):  # legend, top right
        ly = top + 8 + 18 * j
        draw.rectangle([width - right - 120, ly - 5, width - right - 110, ly + 5], fill=colours[j % len(colours)])
        draw.text((width - right - 104, ly), name, fill="black", font=font, anchor="lm")
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def _font(image_font, size: int):
    try:
        return image_font.load_default(size=size)  # scalable with Pillow >= 10.1 and FreeType
    except (TypeError, OSError, AttributeError):
        return image_font.load_default()
