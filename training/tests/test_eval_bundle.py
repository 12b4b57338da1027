"""Scoring the exported bundle itself: same CountBench answers as the PyTorch model, tampering refused."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw

from countclip.bundle.export import export_bundle
from countclip.bundle.manifest import BundleError
from countclip.bundle.onnx_model import BundleModel, is_bundle
from countclip.cli import main as cli_main
from countclip.counting.core import number_word
from countclip.evaluation import countbench
from countclip.model.factory import create_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle-eval")
    model = create_model("tiny", seed=3)
    export_bundle(model, root / "bundle", log=lambda *_: None)
    (root / "bench" / "images").mkdir(parents=True)
    rows = []
    for n in range(2, 11):
        image = Image.new("RGB", (40 + 3 * n, 36), (240, 240, 240))
        draw = ImageDraw.Draw(image)
        for k in range(n):
            draw.rectangle((2 + 4 * k, 10, 4 + 4 * k, 14), fill=(20, 20, 200))
        image.save(root / "bench" / "images" / f"{n}.png")
        rows.append({"image": f"images/{n}.png", "text": f"{number_word(n)} blue bricks in a row", "number": n})
    (root / "bench" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return model, root


def test_bundle_scores_like_the_pytorch_model(setup):
    model, root = setup
    assert is_bundle(str(root / "bundle")) and not is_bundle(str(root / "bench"))
    data = countbench.load(str(root / "bench"))
    from_torch = countbench.evaluate(model, data, batch_size=4)
    from_bundle = countbench.evaluate(BundleModel(root / "bundle"), data, batch_size=4)
    for task in (from_torch, from_torch["digits"]):
        assert task["n_scored"] == 9
    assert from_bundle["confusion_matrix"] == from_torch["confusion_matrix"]
    assert from_bundle["digits"]["confusion_matrix"] == from_torch["digits"]["confusion_matrix"]
    assert from_bundle["accuracy"] == from_torch["accuracy"]


def test_tampered_bundle_is_not_scored(setup, tmp_path, capsys):
    _, root = setup
    import shutil

    copy = tmp_path / "bundle"
    shutil.copytree(root / "bundle", copy)
    with open(copy / "preprocess.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(BundleError, match="preprocess.json"):
        BundleModel(copy)
    assert cli_main(["eval", "countbench", "--model", str(copy), "--data", str(root / "bench"),
                     "--out", str(tmp_path / "out")]) == 1
    assert "preprocess.json" in capsys.readouterr().err
