"""The default-model recipe's bookkeeping: training summary for the bundle, and the report.

    python -m countclip.synth.report summary --work runs/default-model --command ... --seed 0
    python -m countclip.synth.report write --work runs/default-model --command ... --seed 0 --out DIR

Both read what the recipe left in --work: `<model>/config.json` and `<model>/final/training.json`
from `countclip train`, CLIP_benchmark-shaped results in `eval/<model>/` from `countclip eval`,
and `timings.tsv` (stage -> wall seconds) from the recipe script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

MODELS = ("baseline", "ours", "ablation")
DESCRIPTIONS = {
    "baseline": "pre-trained from scratch, L_clip only",
    "ours": "baseline fine-tuned with L_clip + L_count",
    "ablation": "baseline fine-tuned with L_clip only (same data, steps, seed)",
}
COUNTBENCH = "synthetic-countbench"
HELD_OUT = "synthetic-countbench-held-out-kinds"
DISTRACTORS = "synthetic-countbench-distractors"
ZEROSHOT = "synthetic-object-kinds"


def load_results(work: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{model: {dataset: result}} from eval/<model>/*.json."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for model in MODELS:
        results[model] = {}
        for path in sorted((work / "eval" / model).glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and "dataset" in data and "metrics" in data:
                results[model][data["dataset"]] = {**data, "_path": str(path)}
    return results


def headline(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The figures the issue asks for, for one model."""
    def metric(dataset: str, key: str) -> float | None:
        value = results.get(dataset, {}).get("metrics", {}).get(key)
        return float(value) if value is not None else None

    return {"countbench_accuracy": metric(COUNTBENCH, "accuracy"),
            "countbench_mean_abs_deviation": metric(COUNTBENCH, "mean_abs_deviation"),
            "countbench_digits_accuracy": (results.get(COUNTBENCH, {}).get("metrics", {}).get("digits") or {}).get(
                "accuracy"),
            "countbench_held_out_kinds_accuracy": metric(HELD_OUT, "accuracy"),
            "countbench_distractors_accuracy": metric(DISTRACTORS, "accuracy"),
            "zeroshot_acc1": metric(ZEROSHOT, "acc1"), "zeroshot_acc5": metric(ZEROSHOT, "acc5")}


def read_timings(work: Path) -> dict[str, str]:
    path = work / "timings.tsv"
    if not path.exists():
        return {}
    rows = (line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line)
    return {name: value for name, value in rows}


def training_runs(work: Path) -> dict[str, Any]:
    runs = {}
    for model in MODELS:
        summary = work / model / "final" / "training.json"
        if summary.exists():
            data = json.loads(summary.read_text())
            config = data.get("config", {})
            runs[model] = {"steps": data.get("steps"), "samples_seen": data.get("samples_seen"),
                           **{key: config.get(key) for key in ("model", "train_data", "counting_data",
                                                               "counting_ratio", "count_loss_weight", "lr",
                                                               "batch_size", "seed")}}
    return runs


def write_summary(work: Path, command: str, seed: int) -> None:
    results = load_results(work)
    summary = {"recipe": command, "seed": seed, "data": "synthetic counting world (countclip synth)",
               "runs": training_runs(work), "timings_s": read_timings(work)}
    metrics = {f"{model}_{key}": value for model in MODELS for key, value in headline(results[model]).items()}
    ours = results["ours"].get(COUNTBENCH)
    if ours:  # the full result for the bundle's service-facing "countbench" entry
        metrics["countbench"] = {"dataset": ours["dataset"], **ours["metrics"]}
    _write_json(work / "training-summary.json", summary)
    _write_json(work / "metrics-ours.json", metrics)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _table(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = ["| model | what | CountBench acc. | held-out kinds acc. | with distractors acc. | digits acc. "
             "| mean abs. dev. | zero-shot top-1 | zero-shot top-5 |", "|---|---|---|---|---|---|---|---|---|"]
    for model in MODELS:
        h = headline(results[model])
        dev = "n/a" if h["countbench_mean_abs_deviation"] is None else f"{h['countbench_mean_abs_deviation']:.2f}"
        lines.append(f"| {model} | {DESCRIPTIONS[model]} | {_pct(h['countbench_accuracy'])} | "
                     f"{_pct(h['countbench_held_out_kinds_accuracy'])} | {_pct(h['countbench_distractors_accuracy'])} | "
                     f"{_pct(h['countbench_digits_accuracy'])} | "
                     f"{dev} | {_pct(h['zeroshot_acc1'])} | {_pct(h['zeroshot_acc5'])} |")
    return lines


# The default model's targets: (label, model, headline key, at least).
TARGETS = (
    ("baseline zero-shot object-kind top-1", "baseline", "zeroshot_acc1", 0.90),
    ("ours on the synthetic CountBench", "ours", "countbench_accuracy", 0.85),
    ("ours on held-out kinds", "ours", "countbench_held_out_kinds_accuracy", 0.80),
    ("ours with distractors", "ours", "countbench_distractors_accuracy", 0.75),
    ("ours, digits form (\"3 cats\")", "ours", "countbench_digits_accuracy", 0.80),
)


def _checks(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    figures = {model: headline(results[model]) for model in MODELS}
    lines = []
    for label, model, key, floor in TARGETS:
        value = figures[model][key]
        verdict = "n/a" if value is None else ("met" if value >= floor else "NOT met")
        lines.append(f"- {label} >= {_pct(floor)}: {_pct(value)} ({verdict})")
    ours, base = figures["ours"]["zeroshot_acc1"], figures["baseline"]["zeroshot_acc1"]
    if ours is not None and base is not None:
        delta = 100 * (ours - base)
        lines.append(f"- zero-shot top-1, ours minus baseline: {delta:+.1f} points "
                     f"({'within 2 points or better: met' if delta >= -2 else 'NOT met: lost more than 2 points'})")
    return lines


def _confusions(results: dict[str, dict[str, dict[str, Any]]], out: Path) -> list[str]:
    lines = []
    for model in MODELS:
        result = results[model].get(COUNTBENCH)
        if not result:
            continue
        source = Path(result["_path"]).with_suffix(".confusion.png")
        if source.exists():
            shutil.copyfile(source, out / f"confusion-{model}.png")
            lines.append(f"![{model}](confusion-{model}.png)")
    return lines


def write_report(work: Path, command: str, seed: int, out: Path) -> Path:
    results = load_results(work)
    timings = read_timings(work)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# The embedded default model: a small CLIP that learns object kinds first, then to count", "",
             f"Made by `{command}` (seed {seed}). Synthetic CountBench: 540 images, 60 per count 2..10, half of "
             "them of object kinds never seen in training, about a third with 1-2 objects of another kind beside the counted "
             "ones (distractors), backgrounds including a style never seen in training; "
             "the prediction is the most similar of the caption's nine count variants (chance 11.1%). Zero-shot: "
             "object-kind classification over the training kinds (CLIP prompt ensemble).", "",
             *_table(results), "", "## Targets", "", *_checks(results), "",
             "## Wall time (seconds)", "", "| stage | seconds |", "|---|---|",
             *[f"| {name} | {value} |" for name, value in timings.items()], "",
             "## Confusion matrices (synthetic CountBench, number words; rows true, columns predicted)", "",
             *_confusions(results, out), ""]
    report = out / "README.md"
    tmp = report.with_name(report.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, report)
    _write_json(out / "metrics.json", {"command": command, "seed": seed, "timings_s": timings,
                                       **{model: headline(results[model]) for model in MODELS}})
    return report


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m countclip.synth.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("summary", "write"))
    parser.add_argument("--work", type=Path, required=True, help="the recipe's scratch directory")
    parser.add_argument("--command", required=True, help="the recipe command line, recorded verbatim")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, help="report directory (write)")
    args = parser.parse_args(argv)
    if args.action == "summary":
        write_summary(args.work, args.command, args.seed)
        return 0
    if args.out is None:
        parser.error("write needs --out")
    print(write_report(args.work, args.command, args.seed, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
