"""Result files: one JSON per model x dataset (CLIP_benchmark's shape), confusion heat maps, Markdown.

    {"dataset": "countbench", "model": "countclip-vit-b-32", "pretrained": "runs/x/final",
     "task": "counting", "metrics": {...}}
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Sequence


def result_record(dataset: str, model: str, pretrained: str, task: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": dataset, "model": model, "pretrained": pretrained, "task": task, "metrics": metrics}


def slug(text: str) -> str:
    """A file-name-safe form of a model or dataset name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "model"


def result_stem(record: dict[str, Any]) -> str:
    """`<dataset>__<model>__<pretrained>`: two checkpoints of one model name never overwrite each other."""
    return f"{slug(record['dataset'])}__{slug(record['model'])}__{slug(record['pretrained'])[-60:]}"


def write_text_atomic(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(out_dir: Path, record: dict[str, Any]) -> Path:
    return write_text_atomic(Path(out_dir) / f"{result_stem(record)}.json",
                             json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[Any], path: Path, title: str) -> Path:
    """Heat map of a confusion matrix (rows: true, columns: predicted), each cell annotated."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.asarray(matrix, dtype=float)
    figure, axes = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    try:
        shown = axes.imshow(data, cmap="Blues", vmin=0)
        figure.colorbar(shown, ax=axes, label="images")
        axes.set_xticks(range(len(labels)), [str(label) for label in labels])
        axes.set_yticks(range(len(labels)), [str(label) for label in labels])
        axes.set_xlabel("predicted count")
        axes.set_ylabel("true count")
        axes.set_title(title, fontsize=10)
        peak = data.max() if data.size else 0
        for (row, col), value in np.ndenumerate(data):
            axes.text(col, row, f"{int(value)}", ha="center", va="center", fontsize=8,
                      color="white" if peak and value > peak / 2 else "black")
        figure.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        figure.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(figure)
    return path


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}"


def counting_section(records: list[dict[str, Any]]) -> list[str]:
    lines = ["## Counting", "",
             "| dataset | model | accuracy | digits accuracy | mean abs. deviation | scored | skipped |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        m = r["metrics"]
        lines.append(f"| {r['dataset']} | {r['model']} | {_pct(m['accuracy'])} | {_pct(m['digits']['accuracy'])} "
                     f"| {_num(m['mean_abs_deviation'])} | {m['n_scored']} | {m['n_skipped']} |")
    lines += ["", f"Chance is {_pct(1 / 9)} (nine candidate counts). Per-count accuracy (number words):", ""]
    counts = records[0]["metrics"]["counts"] if records else []
    lines += ["| dataset | model | " + " | ".join(str(c) for c in counts) + " |",
              "|---|---|" + "---|" * len(counts)]
    for r in records:
        per = r["metrics"]["per_count_accuracy"]
        lines.append(f"| {r['dataset']} | {r['model']} | " + " | ".join(_pct(per[str(c)]) for c in counts) + " |")
    return lines + [""]


def zeroshot_section(records: list[dict[str, Any]]) -> list[str]:
    lines = ["## Zero-shot classification", "",
             "| dataset | model | top-1 | top-5 | mean per-class recall | classes | scored | skipped |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        m = r["metrics"]
        lines.append(f"| {r['dataset']} | {r['model']} | {_pct(m['acc1'])} | {_pct(m['acc5'])} "
                     f"| {_pct(m['mean_per_class_recall'])} | {m['n_classes']} | {m['n_scored']} | {m['n_skipped']} |")
    return lines + [""]


def markdown_report(records: list[dict[str, Any]], title: str = "countclip evaluation") -> str:
    lines = [f"# {title}", ""]
    counting = [r for r in records if r["task"] == "counting"]
    zeroshot = [r for r in records if r["task"] == "zeroshot_classification"]
    if counting:
        lines += counting_section(counting)
    if zeroshot:
        lines += zeroshot_section(zeroshot)
    lines += ["Models: " + ", ".join(sorted({f"`{r['model']}` ({r['pretrained']})" for r in records})), ""]
    return "\n".join(lines)
