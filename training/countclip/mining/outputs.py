"""Atomic output files: a reader never sees half a parquet, JSON report or PNG.

Everything is written to `<name>.tmp-<pid>` in the destination directory, flushed, and
renamed with `os.replace` (atomic on POSIX within one file system).
"""

from __future__ import annotations

import json
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
    """Grouped bar chart: one bar group per count, one bar per named series (e.g. eligible vs selected)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    counts = sorted({c for values in series.values() for c in values})
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [c + (i - (len(series) - 1) / 2) * width for c in counts]
        ax.bar(xs, [values.get(c, 0) for c in counts], width=width, label=name)
    ax.set_xticks(counts)
    ax.set_xlabel("count in caption")
    ax.set_ylabel("captions")
    ax.set_yscale("symlog")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    try:
        return atomic_write(path, save)
    finally:
        plt.close(fig)
