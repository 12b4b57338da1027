"""Evaluation: CountBench (counting) and zero-shot classification (retention of general skill).

Every evaluator follows CLIP_benchmark's contract, `evaluate(model, data) -> dict` of metrics,
and every dataset is registered once in `registry.DATASETS`. `countclip eval` (cli.py) writes
one JSON result per model x dataset, `{"dataset", "model", "pretrained", "task", "metrics"}`,
plus a Markdown report and, for counting, a confusion-matrix heat map.
"""
