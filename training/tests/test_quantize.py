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
    assert report["parity_set"] == {"prompts": len(Q.parity_prompts()), "gallery_images": Q.GALLERY_SIZE,
                                    "dense_index": {"vectors": Q.DENSE_SIZE, "clusters": Q.DENSE_CLUSTERS,
                                                    "spread": Q.DENSE_SPREAD, "indexes": Q.DENSE_SEEDS}}
    for tower in ("text", "vision"):
        result = report[tower]
        dense = result["dense_recall_at_10"]
        assert (dense is None) == (tower == "vision")  # the dense index stands for image vectors: text queries it
        assert result["shipped"] == (result["min_cosine"] >= Q.MIN_COSINE)
        assert result["passed"] == (result["shipped"] and result["recall_at_10"] >= Q.MIN_RECALL
                                    and (dense is None or dense >= Q.MIN_RECALL))
        # The figures are those of an attempt: the passing one, else the first (all MLP layers: the fastest).
        attempts = result["attempts"]
        kept = {k: result[k] for k in attempts[0]}
        assert kept in attempts and (kept == attempts[-1] if result["passed"] else kept == attempts[0])
        assert attempts[0]["int8_layers"] == "0-1"  # tiny: 2 text and 2 vision layers, all tried first
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
    monkeypatch.setattr(Q, "quantize_file", lambda source, target, nodes: shutil.copyfile(other / source.name, target))
    out = tmp_path / "bundle"
    manifest = E.export_bundle(adapter, out, quantize="text", log=lambda *_: None)
    assert manifest["precision"] == {"text": "fp32", "vision": "fp32"}
    assert manifest["quantization"]["text"]["passed"] is False and manifest["quantization"]["text"]["shipped"] is False
    assert manifest["quantization"]["text"]["min_cosine"] < Q.MIN_COSINE
    assert Q.INT8_FILES["text"] not in manifest["files"] and not (out / Q.INT8_FILES["text"]).exists()
    assert "vision" not in manifest["quantization"]
    # Both recipes were tried (all layers, then the later half) and no candidate file is left behind.
    assert [a["int8_layers"] for a in manifest["quantization"]["text"]["attempts"]] == ["0-1", "1-1"]
    assert {p.name for p in out.iterdir()} == {*manifest["files"], B.MANIFEST}


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
    assert text["int8_layers"] == "0-1" and len(text["attempts"]) == 2  # the fastest attempt is the one kept


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


def test_the_recipe_quantizes_only_the_mlp_matmuls_per_channel(quantized):
    """Attention, projection and the token-embedding table stay fp32; MLP weights get one scale per column."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(quantized / Q.INT8_FILES["text"]))
    quantized_nodes = [n.name for n in model.graph.node if n.op_type in {"MatMulInteger", "DynamicQuantizeMatMul"}]
    float_matmuls = [n.name for n in model.graph.node if n.op_type == "MatMul"]
    assert quantized_nodes and all("/mlp/" in name for name in quantized_nodes)
    assert len(quantized_nodes) == 4  # fc1 and fc2 of both layers
    assert any("/self_attn/q_proj/" in name for name in float_matmuls) and any("text_projection" in name for name in float_matmuls)
    assert {n.op_type for n in model.graph.node if "token_embedding" in n.name} == {"Gather"}
    scales = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith("_scale")}
    fc1 = [a for name, a in scales.items() if "MatMul" in name and a.size > 1]
    assert fc1 and all(a.size in (32, 128) for a in fc1)  # tiny: width 32, MLP 4 x 32: one scale per output column


def test_mlp_matmuls_names_the_layers_of_a_transformer_tower_and_nothing_of_a_conv_one(quantized, tmp_path):
    layers = Q.mlp_matmuls(quantized / B.TEXT_ONNX)
    assert sorted(layers) == [0, 1] and all(len(names) == 2 for names in layers.values())
    assert all(name.endswith(("fc1/MatMul", "fc2/MatMul")) for names in layers.values() for name in names)
    from countclip.model.conv_clip import create_conv_model

    conv = tmp_path / "conv"
    E.export_bundle(create_conv_model("tiny-conv", seed=0), conv, log=lambda *_: None)
    assert Q.mlp_matmuls(conv / B.VISION_ONNX) == {}


def test_layers_left_fp32_from_the_first_until_parity_passes(adapter, tmp_path, monkeypatch):
    """A 'quantiser' whose error comes from layer 0 only: all layers fail, the later layer alone passes."""
    other = tmp_path / "other"
    E.export_bundle(create_model("tiny", seed=99), other, log=lambda *_: None)
    seen: list[list[str] | None] = []

    def fake(source, target, nodes):
        seen.append(nodes)
        broken = nodes is not None and any("layers.0/" in n for n in nodes)
        shutil.copyfile(other / source.name if broken else source, target)

    monkeypatch.setattr(Q, "quantize_file", fake)
    manifest = E.export_bundle(adapter, tmp_path / "b", quantize="text", log=lambda *_: None)
    text = manifest["quantization"]["text"]
    assert manifest["precision"]["text"] == "int8" and text["passed"] and text["int8_layers"] == "1-1"
    assert [a["int8_layers"] for a in text["attempts"]] == ["0-1", "1-1"] and not text["attempts"][0]["passed"]
    assert [sorted({n.split("layers.")[1].split("/")[0] for n in nodes or []}) for nodes in seen] == [["0", "1"], ["1"]]
    assert Q.INT8_FILES["text"] in manifest["files"]


def test_search_first_layer_finds_the_lowest_passing_layer_within_the_later_half():
    layers = list(range(12))
    for threshold in range(12):
        asked: list[int] = []

        def passes(first: int) -> bool:
            asked.append(first)
            return first >= threshold

        found = Q.search_first_layer(layers, passes)
        assert found == (threshold if threshold <= 6 else None), threshold
        assert asked[0] == 0 and len(asked) <= 4 and all(a <= 6 for a in asked)  # all layers, then a binary search


def test_the_dense_index_alone_can_fail_the_gate():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 8))
    assert Q.attempt_parity("0-1", x, x, 0.99, None)["passed"] is True  # vision: no dense index
    assert Q.attempt_parity("0-1", x, x, 0.99, 0.985)["passed"] is True
    assert Q.attempt_parity("0-1", x, x, 0.99, 0.97)["passed"] is False
    assert Q.attempt_parity("0-1", x, x, 0.97, 0.99)["passed"] is False


def test_dense_index_is_clustered_unit_vectors_and_fixed():
    index = Q.dense_index(16, size=3000, clusters=100)
    assert index.shape == (3000, 16) and index.dtype == np.float32
    assert np.allclose(np.linalg.norm(index, axis=1), 1, atol=1e-5)
    assert np.array_equal(index, Q.dense_index(16, size=3000, clusters=100))
    same = (index[:100] * index[100:200]).sum(1)  # item i and i + clusters share a centre
    other = (index[:100] * index[1:101]).sum(1)
    assert same.mean() > 0.6 > 0.2 > abs(other.mean())


def test_a_small_isotropic_error_costs_recall_on_the_dense_index():
    """Why the dense index is checked: near-tied neighbours swap under an error a gallery of 256 shrugs off."""
    rng = np.random.default_rng(2)
    index = Q.dense_index(64, size=20_000, clusters=200)
    queries = Q._unit(rng.standard_normal((50, 64)))
    noise = Q._unit(rng.standard_normal((50, 64)))
    noisy = Q._unit(queries + 0.05 * noise)  # cosine ~0.999 to the query
    assert float(Q.cosines(noisy, queries).min()) > 0.99
    assert Q.recall_at_k(noisy, index, queries, index) < 0.95
