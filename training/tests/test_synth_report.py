"""The default-model recipe's report and training summary, from fake evaluation results."""

from __future__ import annotations

import json
from pathlib import Path

from countclip.synth import report


def _result(work: Path, model: str, dataset: str, metrics: dict) -> None:
    folder = work / "eval" / model
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{dataset}__m__{model}"
    (folder / f"{name}.json").write_text(json.dumps({"dataset": dataset, "model": "m", "pretrained": model,
                                                     "task": "t", "metrics": metrics}))
    (folder / f"{name}.confusion.png").write_bytes(b"\x89PNG fake")


def _work(tmp_path: Path, accuracies: dict[str, float], zeroshot: dict[str, float]) -> Path:
    work = tmp_path / "work"
    for model in report.MODELS:
        _result(work, model, report.COUNTBENCH, {"accuracy": accuracies[model], "mean_abs_deviation": 1.5,
                                                 "digits": {"accuracy": accuracies[model] / 2}})
        _result(work, model, report.HELD_OUT, {"accuracy": accuracies[model] - 0.1, "mean_abs_deviation": 2.0})
        _result(work, model, report.DISTRACTORS, {"accuracy": accuracies[model] - 0.2, "mean_abs_deviation": 2.5})
        _result(work, model, report.ZEROSHOT, {"acc1": zeroshot[model], "acc5": 0.9})
        (work / model / "final").mkdir(parents=True)
        (work / model / "final" / "training.json").write_text(json.dumps(
            {"steps": 10, "samples_seen": 1280, "config": {"lr": 5e-4, "count_loss_weight": 1.0, "seed": 3}}))
    (work / "timings.tsv").write_text("synth\t12\npretrain\t300\ntotal\t900\n")
    return work


def test_report_table_targets_and_confusions(tmp_path):
    work = _work(tmp_path, {"baseline": 0.2, "ours": 0.9, "ablation": 0.3},
                 {"baseline": 0.92, "ours": 0.91, "ablation": 0.93})
    out = tmp_path / "report"
    path = report.write_report(work, "scripts/recipes/train_default_model.sh", 3, out)
    text = path.read_text()
    assert "| ours | baseline fine-tuned with L_clip + L_count | 90.0% | 80.0% | 70.0% | 45.0% | 1.50 | 91.0% | 90.0% |" in text
    assert "baseline zero-shot object-kind top-1 >= 90.0%: 92.0% (met)" in text
    assert "ours on the synthetic CountBench >= 85.0%: 90.0% (met)" in text
    assert "ours with distractors >= 75.0%: 70.0% (NOT met)" in text
    assert "-1.0 points (within 2 points or better: met)" in text
    assert "| pretrain | 300 |" in text
    assert sorted(p.name for p in out.glob("*.png")) == ["confusion-ablation.png", "confusion-baseline.png",
                                                         "confusion-ours.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 3 and metrics["ours"]["countbench_accuracy"] == 0.9
    assert metrics["ours"]["countbench_distractors_accuracy"] == 0.7


def test_report_says_when_targets_are_missed(tmp_path):
    work = _work(tmp_path, {"baseline": 0.4, "ours": 0.6, "ablation": 0.5},
                 {"baseline": 0.60, "ours": 0.50, "ablation": 0.61})
    text = report.write_report(work, "cmd", 0, tmp_path / "r").read_text()
    assert "ours on the synthetic CountBench >= 85.0%: 60.0% (NOT met)" in text
    assert "NOT met: lost more than 2 points" in text


def test_summary_for_the_bundle_manifest(tmp_path):
    work = _work(tmp_path, {"baseline": 0.2, "ours": 0.75, "ablation": 0.3},
                 {"baseline": 0.6, "ours": 0.6, "ablation": 0.6})
    assert report.main(["summary", "--work", str(work), "--command", "the recipe", "--seed", "3"]) == 0
    summary = json.loads((work / "training-summary.json").read_text())
    assert summary["recipe"] == "the recipe" and summary["seed"] == 3
    assert summary["runs"]["ours"]["count_loss_weight"] == 1.0 and summary["timings_s"]["total"] == "900"
    metrics = json.loads((work / "metrics-ours.json").read_text())
    assert metrics["ours_countbench_accuracy"] == 0.75 and metrics["baseline_zeroshot_acc1"] == 0.6
    assert metrics["countbench"]["dataset"] == report.COUNTBENCH
