"""`countclip eval`: score models on registered datasets, write results and a report.

    countclip eval countbench --model SPEC [--model SPEC ...] [--data SOURCE] [--out DIR]
    countclip eval zeroshot   --model SPEC [--model SPEC ...] --data IMAGE_FOLDER [--out DIR]
    countclip eval list

Each model x dataset gives `OUT/<dataset>__<model>__<spec>.json` in CLIP_benchmark's shape; counting
adds `<same stem>.confusion.png` and `.confusion-digits.png` heat maps; `OUT/report.md` summarises
every result in OUT, so a CountBench run and a zero-shot run end in one report. CountBench.json's
URLs are fetched into --cache, with a dead-link report in OUT/dead_links.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from countclip.bundle.manifest import BundleError
from countclip.evaluation import registry, report
from countclip.evaluation.download import DownloadConfig
from countclip.evaluation.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS


def _default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "countclip" / "images"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True,
                        help="model spec (local dir, hub id, random:ARCH, open_clip:ARCH/TAG) or an exported bundle "
                             "directory (scored through onnxruntime); repeatable")
    parser.add_argument("--out", type=Path, default=Path("eval-results"), help="results directory (default: %(default)s)")
    parser.add_argument("--name", help="dataset label in results (default: the registered dataset name)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N records (per class for zero-shot)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countclip eval", description=__doc__.split("\n\n")[0])
    tasks = parser.add_subparsers(dest="task", required=True)
    bench = tasks.add_parser("countbench", help="CountBench counting accuracy (words and digits)")
    _common(bench)
    bench.add_argument("--data", default=registry.DATASETS["countbench"].default_source,
                       help="HF dataset id, parquet file/dir, CountBench.json (URLs), JSONL or folder "
                            "(default: %(default)s)")
    bench.add_argument("--split", default="train", help="HF dataset split (default: %(default)s)")
    bench.add_argument("--cache", type=Path, default=_default_cache(), help="image download cache (default: %(default)s)")
    bench.add_argument("--workers", type=int, default=16, help="parallel downloads")
    bench.add_argument("--timeout", type=float, default=10.0, help="seconds per socket operation")
    bench.add_argument("--deadline", type=float, default=30.0, help="seconds per download attempt")
    bench.add_argument("--retries", type=int, default=2, help="retries for transient failures")
    bench.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    bench.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    bench.add_argument("--retry-failed", action="store_true", help="refetch URLs cached as dead")
    zero = tasks.add_parser("zeroshot", help="zero-shot top-1/top-5 on an image folder")
    _common(zero)
    zero.add_argument("--data", required=True, help="image folder: <root>/<class name>/<images>")
    zero.add_argument("--dataset", default=registry.TASK_DEFAULTS["zeroshot"], choices=[
        name for name, spec in registry.DATASETS.items() if spec.task == "zeroshot_classification"])
    tasks.add_parser("list", help="list registered datasets")
    return parser


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.task != "countbench":
        return {"limit": args.limit}
    download = DownloadConfig(timeout=args.timeout, deadline=args.deadline, max_bytes=args.max_bytes,
                              max_pixels=args.max_pixels, retries=args.retries, workers=args.workers,
                              retry_failed=args.retry_failed)
    return {"cache_dir": args.cache, "download": download, "split": args.split, "limit": args.limit,
            "max_pixels": args.max_pixels, "report_dir": args.out}


def _device(requested: str | None) -> str:
    import torch

    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def _write_plots(out: Path, record: dict[str, Any]) -> None:
    metrics, stem = record["metrics"], report.result_stem(record)
    for suffix, task_metrics, form in (("confusion", metrics, "number words"),
                                       ("confusion-digits", metrics["digits"], "digits")):
        if task_metrics["n_scored"]:
            title = f"{record['dataset']} · {record['model']} ({form})\naccuracy {100 * task_metrics['accuracy']:.1f}%"
            report.plot_confusion(task_metrics["confusion_matrix"], task_metrics["counts"],
                                  out / f"{stem}.{suffix}.png", title)


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


def _headline(record: dict[str, Any]) -> str:
    m = record["metrics"]
    if record["task"] == "counting":
        return (f"accuracy {_fmt(m['accuracy'], True)} (digits {_fmt(m['digits']['accuracy'], True)}), "
                f"mean abs. deviation {_fmt(m['mean_abs_deviation'])}, scored {m['n_scored']}, skipped {m['n_skipped']}")
    return (f"top-1 {_fmt(m['acc1'], True)}, top-5 {_fmt(m['acc5'], True)}, "
            f"scored {m['n_scored']}, skipped {m['n_skipped']}")


def collect_results(out: Path) -> list[dict[str, Any]]:
    """Every result JSON in `out` (any run), for the combined report."""
    records = []
    for path in sorted(out.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and {"dataset", "model", "pretrained", "task", "metrics"} <= set(data):
            records.append(data)
    return records


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from countclip.bundle.onnx_model import load_any

    dataset_name = args.dataset if args.task == "zeroshot" else registry.TASK_DEFAULTS[args.task]
    spec = registry.get(dataset_name)
    label = args.name or spec.name
    started = time.time()
    data = spec.load(args.data, _load_options(args))
    print(f"{label}: {len(data.samples)} samples from {args.data} ({time.time() - started:.1f}s)")
    device, records = _device(args.device), []
    for model_spec in args.model:
        try:
            model = load_any(model_spec)
        except (OSError, ValueError, ImportError, BundleError) as error:
            raise ValueError(f"cannot load model {model_spec!r}: {type(error).__name__}: {error}") from error
        metrics = spec.evaluate(model, data, batch_size=args.batch_size, device=device)
        record = report.result_record(label, model.name, model_spec, spec.task, metrics)
        path = report.write_result(args.out, record)
        if spec.task == "counting":
            _write_plots(args.out, record)
        print(f"{label} · {model.name}: {_headline(record)} -> {path}")
        records.append(record)
    report.write_text_atomic(args.out / "report.md", report.markdown_report(collect_results(args.out)))
    print(f"report: {args.out / 'report.md'}")
    return records


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.task == "list":
        for name, spec in registry.DATASETS.items():
            print(f"{name:<12} {spec.task:<24} {spec.description}")
        return 0
    try:
        run(args)
    except (OSError, ValueError, KeyError, ImportError) as error:
        print(f"countclip eval: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
