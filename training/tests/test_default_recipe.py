"""The default-model recipe end to end on CPU at a tiny setting: the same command, fewer steps and samples.

It checks the recipe's plumbing (synth -> pre-train -> two fine-tunes -> evaluation -> export ->
gallery -> report), not the model's quality: the committed bundle's figures come from the full run.
A rerun with the same inputs reuses the pre-trained baseline instead of training it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from countclip.synth.sprites import FontNotFoundError, find_emoji_font

try:
    find_emoji_font()
except FontNotFoundError as error:
    pytest.skip(f"Noto Color Emoji not installed ({error})", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
TINY = {"PRETRAIN_STEPS": "6", "FINETUNE_STEPS": "6", "PRETRAIN_BATCH": "16", "FINETUNE_BATCH": "16",
        "GENERAL_SAMPLES": "64", "COUNTING_SAMPLES": "64", "GALLERY_IMAGES": "60", "THREADS": "2"}


def run_recipe(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **TINY, "WORK": str(tmp_path / "work"), "REPORT_DIR": str(tmp_path / "report"),
           "BUNDLE_DIR": str(tmp_path / "bundle"), "GALLERY_DIR": str(tmp_path / "gallery"), "PY": sys.executable}
    return subprocess.run(["bash", "scripts/recipes/train_default_model.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def test_recipe_runs_end_to_end_and_reuses_its_baseline(tmp_path):
    first = run_recipe(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    metrics = manifest["metrics"]
    for key in ("baseline_zeroshot_acc1", "ours_zeroshot_acc1", "ours_countbench_accuracy",
                "ours_countbench_held_out_kinds_accuracy", "ours_countbench_digits_accuracy",
                "ours_countbench_distractors_accuracy", "ablation_countbench_accuracy"):
        assert isinstance(metrics[key], float), key
    assert manifest["image_size"] == 64
    rows = [json.loads(line) for line in (tmp_path / "gallery" / "gallery.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and {row["count"] for row in rows} == {1}  # the first 60: every kind once, count 1
    report = (tmp_path / "report" / "README.md").read_text()
    assert "| ours |" in report and "ours with distractors" in report

    second = run_recipe(tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing" in second.stderr and f"{tmp_path / 'work'}/baseline" in second.stderr
