"""`countclip eval` end to end on a tiny random CLIP: result JSONs, heat maps, one combined report."""

from __future__ import annotations

import json

import torch
from PIL import Image, ImageDraw

from countclip.cli import main as cli_main
from countclip.counting.core import number_word

torch.set_num_threads(1)


def _scene(n: int, path) -> None:
    image = Image.new("RGB", (48, 40), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    for k in range(n):
        x, y = 4 + (k * 9) % 40, 4 + 12 * (k // 5)
        draw.ellipse((x, y, x + 6, y + 6), fill=(200, 30, 30))
    image.save(path)


def test_countbench_and_zeroshot_results_and_report(tmp_path, capsys):
    bench = tmp_path / "bench"
    (bench / "images").mkdir(parents=True)
    rows = []
    for n in range(2, 11):
        _scene(n, bench / "images" / f"{n}.png")
        rows.append({"image": f"images/{n}.png", "text": f"{number_word(n)} red dots", "number": n})
    (bench / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = tmp_path / "classes"
    for name, color in (("cat", (200, 100, 0)), ("dog", (0, 100, 200))):
        (folder / name).mkdir(parents=True)
        Image.new("RGB", (30, 30), color).save(folder / name / "0.png")
    out = tmp_path / "results"

    assert cli_main(["eval", "countbench", "--model", "random:tiny", "--data", str(bench), "--out", str(out),
                     "--batch-size", "4", "--device", "cpu"]) == 0
    assert cli_main(["eval", "zeroshot", "--model", "random:tiny", "--data", str(folder), "--out", str(out),
                     "--name", "toy-classes", "--device", "cpu"]) == 0

    record = json.loads((out / "countbench__countclip-tiny-random__random_tiny.json").read_text())
    assert set(record) == {"dataset", "model", "pretrained", "task", "metrics"}
    assert (record["dataset"], record["model"], record["pretrained"], record["task"]) == \
        ("countbench", "countclip-tiny-random", "random:tiny", "counting")
    metrics = record["metrics"]
    assert metrics["n_scored"] == 9 and metrics["n_skipped"] == 0
    assert sum(map(sum, metrics["confusion_matrix"])) == 9
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["digits"]["n_scored"] == 9
    for suffix in ("confusion.png", "confusion-digits.png"):
        with Image.open(out / f"countbench__countclip-tiny-random__random_tiny.{suffix}") as image:
            assert image.format == "PNG" and image.size[0] > 300
    zero = json.loads((out / "toy-classes__countclip-tiny-random__random_tiny.json").read_text())
    assert zero["task"] == "zeroshot_classification" and zero["metrics"]["n_scored"] == 2
    assert zero["metrics"]["acc5"] == 1.0  # two classes: always in the top five
    report = (out / "report.md").read_text()
    assert "## Counting" in report and "## Zero-shot classification" in report
    assert "| countbench | countclip-tiny-random |" in report and "| toy-classes | countclip-tiny-random |" in report


def test_list_and_errors(tmp_path, capsys):
    assert cli_main(["eval", "list"]) == 0
    assert "countbench" in capsys.readouterr().out
    assert cli_main(["eval", "countbench", "--model", "random:tiny", "--data", str(tmp_path / "missing.jsonl"),
                     "--out", str(tmp_path / "out")]) == 1
    assert "no such file" in capsys.readouterr().err
