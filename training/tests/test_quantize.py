"""`countclip export --quantize`: int8 towers beside fp32, kept only when they pass parity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from countclip.bundle import export as E
from countclip.bundle import manifest as B
from countclip.bundle import quantize as Q
from countclip.model.factory import create_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def adapter():
    return create_model("tiny", seed=3)


@pytest.fixture(scope="module")
def quantized(adapter, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("q") / "bundle"
    E.export_bundle(adapter, out, name="tiny-q", quantize="all", log=lambda *_: None)
    return out


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_manifest_records_parity_and_the_choice_per_tower(quantized):
    manifest = B.verify_bundle(quantized)
    report = manifest["quantization"]
    assert report["thresholds"] == {"min_cosine": Q.MIN_COSINE, "min_recall_at_10": Q.MIN_RECALL}
    assert report["parity_set"] == {"prompts": len(Q.parity_prompts()), "gallery_images": Q.GALLERY_SIZE}
    for tower in ("text", "vision"):
        result = report[tower]
        assert result["shipped"] == (result["min_cosine"] >= Q.MIN_COSINE)
        assert result["passed"] == (result["shipped"] and result["recall_at_10"] >= Q.MIN_RECALL)
        assert -1 <= result["min_cosine"] <= result["mean_cosine"] <= 1 + 1e-6 and 0 <= result["recall_at_10"] <= 1
        # The choice follows the checks; an int8 file with good cosines ships even when not chosen.
        assert manifest["precision"][tower] == ("int8" if result["passed"] else "fp32")
        assert (Q.INT8_FILES[tower] in manifest["files"]) == result["shipped"]
        assert (quantized / Q.INT8_FILES[tower]).exists() == result["shipped"]
    assert {B.TEXT_ONNX, B.VISION_ONNX} <= set(manifest["files"])  # fp32 stays available


def test_text_int8_is_recomputed_to_the_recorded_cosine(quantized, adapter):
    """The recorded figures are reproducible: rerun both text files on the parity prompts."""
    manifest = B.load_manifest(quantized)
    int8 = quantized / Q.INT8_FILES["text"]
    assert int8.exists(), manifest["quantization"]["text"]  # int8 rounding of a tiny MLP stays far above 0.99
    embed = E._parity_text(quantized)
    prompts = Q.parity_prompts()
    cos = Q.cosines(embed(int8, prompts), embed(quantized / B.TEXT_ONNX, prompts))
    assert float(cos.min()) == pytest.approx(manifest["quantization"]["text"]["min_cosine"], abs=1e-5)
    assert [i.name for i in _session(int8).get_inputs()] == list(B.TEXT_INPUTS)


def test_quantized_files_are_smaller_and_int8(quantized):
    import onnx

    for tower in ("text", "vision"):
        path = quantized / Q.INT8_FILES[tower]
        if path.exists():
            assert path.stat().st_size < (quantized / Q.FP32_FILES[tower]).stat().st_size
            ops = {node.op_type for node in onnx.load(str(path)).graph.node}
            assert ops & {"MatMulInteger", "DynamicQuantizeLinear", "ConvInteger", "DynamicQuantizeMatMul"}


def test_a_tower_that_fails_parity_is_dropped_and_fp32_chosen(adapter, tmp_path, monkeypatch):
    """A 'quantiser' that writes another model's tower: cosines collapse, so the file must not ship."""
    other = tmp_path / "other"
    E.export_bundle(create_model("tiny", seed=99), other, log=lambda *_: None)
    monkeypatch.setattr(Q, "quantize_file", lambda source, target: shutil.copyfile(other / source.name, target))
    out = tmp_path / "bundle"
    manifest = E.export_bundle(adapter, out, quantize="text", log=lambda *_: None)
    assert manifest["precision"] == {"text": "fp32", "vision": "fp32"}
    assert manifest["quantization"]["text"]["passed"] is False and manifest["quantization"]["text"]["shipped"] is False
    assert manifest["quantization"]["text"]["min_cosine"] < Q.MIN_COSINE
    assert Q.INT8_FILES["text"] not in manifest["files"] and not (out / Q.INT8_FILES["text"]).exists()
    assert "vision" not in manifest["quantization"]


def test_plain_export_records_fp32_and_writes_no_int8(adapter, tmp_path):
    manifest = E.export_bundle(adapter, tmp_path / "b", log=lambda *_: None)
    assert manifest["precision"] == {"text": "fp32", "vision": "fp32"}
    assert "quantization" not in manifest and set(manifest["files"]) == set(B.REQUIRED_FILES)


def test_unknown_choice_is_refused(adapter, tmp_path):
    with pytest.raises(E.ExportError, match="--quantize"):
        E.export_bundle(adapter, tmp_path / "b", quantize="vision-only")


def test_a_tower_that_ranks_differently_is_kept_but_not_chosen(adapter, tmp_path, monkeypatch):
    """Cosines pass, ranking does not (recall forced low): the file ships, fp32 stays the choice."""
    monkeypatch.setattr(Q, "recall_at_k", lambda *args, **kwargs: 0.5)
    manifest = E.export_bundle(adapter, tmp_path / "b", quantize="text", log=lambda *_: None)
    text = manifest["quantization"]["text"]
    assert text["shipped"] is True and text["passed"] is False and text["recall_at_10"] == 0.5
    assert manifest["precision"]["text"] == "fp32" and Q.INT8_FILES["text"] in manifest["files"]


def test_recall_at_k_counts_the_overlap_of_top_k():
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((50, 8))
    queries = rng.standard_normal((5, 8))
    assert Q.recall_at_k(queries, gallery, queries, gallery) == 1.0
    # Reversed queries rank the gallery in the opposite order: top-10 of 50 cannot overlap.
    assert Q.recall_at_k(-queries, gallery, queries, gallery) == 0.0


def test_parity_prompts_are_fixed_and_cover_every_count():
    prompts = Q.parity_prompts()
    assert prompts == Q.parity_prompts() and len(set(prompts)) == len(prompts)
    assert "a photo of one cat" in prompts and "a photo of ten cats" in prompts and "a photo of three sheep" in prompts
