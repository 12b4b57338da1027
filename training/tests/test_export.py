"""`countclip export`: a tiny random CLIP -> bundle -> onnxruntime agrees with PyTorch.

Both model families the trainer builds from scratch go through it: the transformers ViT CLIP
and the convolutional CLIP of the synthetic world (the embedded default model's family).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from countclip.bundle import export as E
from countclip.bundle import manifest as B
from countclip.cli import main as cli_main
from countclip.model.conv_clip import create_conv_model
from countclip.model.factory import create_model, load_model

torch.set_num_threads(1)


@pytest.fixture(scope="module", params=["vit", "conv"])
def adapter(request):
    return create_model("tiny", seed=1) if request.param == "vit" else create_conv_model("tiny-conv", seed=1)


@pytest.fixture(scope="module")
def saved_model(adapter, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    adapter.save(directory)
    return directory


@pytest.fixture(scope="module")
def exported(saved_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    (root / "metrics.json").write_text(json.dumps({"dataset": "countbench", "model": "m", "pretrained": "p",
                                                   "task": "counting", "metrics": {"accuracy": 0.25}}))
    (root / "summary.json").write_text(json.dumps({"steps": 10, "lambda": 1.0}))
    out = root / "out"
    rc = cli_main(["export", "--model", str(saved_model), "--out", str(out), "--name", "tiny-test",
                   "--metrics", str(root / "metrics.json"), "--training-summary", str(root / "summary.json")])
    assert rc == 0
    return out


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_manifest_describes_the_model(exported, saved_model):
    manifest = B.verify_bundle(exported)
    adapter = load_model(str(saved_model))
    assert manifest["format"] == "countclip-bundle" and manifest["format_version"] == 1
    assert manifest["model_name"] == "tiny-test"
    assert manifest["embed_dim"] == 32 and manifest["context_length"] == 32 and manifest["image_size"] == 32
    assert manifest["logit_scale"] == pytest.approx(float(adapter.logit_scale.detach().exp()), rel=1e-6)
    assert manifest["training"] == {"steps": 10, "lambda": 1.0}
    assert manifest["metrics"] == {"countbench": {"task": "counting", "accuracy": 0.25}}
    assert set(manifest["files"]) == set(B.REQUIRED_FILES)
    assert manifest["command"].startswith("countclip export --model ")
    assert "search" not in manifest  # no ranking settings unless asked: the service's defaults
    assert json.loads((exported / B.PREPROCESS).read_text())["crop_size"] == 32
    leftovers = [p.name for p in exported.parent.iterdir() if p.name.startswith(".out.")]
    assert leftovers == []


def test_onnx_signature_has_agreed_names_and_dynamic_axes(exported):
    text, vision = _session(exported / B.TEXT_ONNX), _session(exported / B.VISION_ONNX)
    assert [(i.name, i.type) for i in text.get_inputs()] == [("input_ids", "tensor(int64)"),
                                                             ("attention_mask", "tensor(int64)")]
    assert all(isinstance(d, str) for i in text.get_inputs() for d in i.shape)
    assert [o.name for o in text.get_outputs()] == ["text_embeds"]
    assert [i.name for i in vision.get_inputs()] == ["pixel_values"]
    assert isinstance(vision.get_inputs()[0].shape[0], str)
    assert [o.name for o in vision.get_outputs()] == ["image_embeds"]


@torch.no_grad()
def test_onnx_matches_pytorch_and_padding_does_not_change_embeddings(exported, saved_model):
    adapter = load_model(str(saved_model)).eval()
    session = _session(exported / B.TEXT_ONNX)
    captions = ["three cats", "a photo of seven red apples on a long wooden table in the sun", "two", "x y z"]
    batch = adapter.tokenize(captions)
    assert batch["attention_mask"].min() == 0  # the batch really is padded
    got = session.run(None, {k: v.long().numpy() for k, v in batch.items()})[0]
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    for row, caption in enumerate(captions):
        alone = adapter.tokenize([caption])
        want = E.TextTower(adapter)(alone["input_ids"], alone["attention_mask"]).numpy()[0]
        one = session.run(None, {k: v.long().numpy() for k, v in alone.items()})[0][0]
        assert float(got[row] @ want) >= 0.9999 and float(one @ want) >= 0.9999


@torch.no_grad()
def test_vision_onnx_matches_pytorch_on_odd_batch_sizes(exported, saved_model):
    adapter = load_model(str(saved_model)).eval()
    session = _session(exported / B.VISION_ONNX)
    for count in (1, 3):
        pixels = torch.stack([adapter.preprocess(image) for image in E.real_images()[:count]])
        got = session.run(None, {"pixel_values": pixels.numpy()})[0]
        want = E.VisionTower(adapter)(pixels).numpy()
        assert got.shape == (count, 32)
        assert ((got * want).sum(1) >= 0.9999).all()


def test_bundle_tokenizer_reproduces_the_model_tokenizer_with_truncation(exported, saved_model):
    from tokenizers import Tokenizer

    adapter = load_model(str(saved_model))
    tokenizer = Tokenizer.from_file(str(exported / B.TOKENIZER))
    captions = ["Three cats!", "two", "dog " * 100]
    expected = adapter.tokenize(captions)
    encodings = tokenizer.encode_batch(captions)
    assert [e.ids for e in encodings] == expected["input_ids"].tolist()
    assert [e.attention_mask for e in encodings] == expected["attention_mask"].tolist()
    assert len(encodings[2].ids) == 32 and encodings[2].ids[-1] == 49407


def test_reexport_replaces_a_previous_bundle(exported, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(exported, out)
    first = B.load_manifest(out)["files"]["vision.onnx"]["sha256"]
    E.export_bundle(create_model("tiny", seed=5), out, log=lambda *_: None)
    assert B.verify_bundle(out)["files"]["vision.onnx"]["sha256"] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_hubness_settings_are_recorded_for_the_service(tmp_path):
    out = tmp_path / "bundle"
    assert E.main(["--model", "random:tiny", "--out", str(out), "--hubness-beta", "0.25", "--hubness-top-k", "5"]) == 0
    manifest = B.verify_bundle(out)
    assert manifest["search"] == {"hubness": {"bank": "coco-80", "beta": 0.25, "top_k": 5}}
    assert "--hubness-beta 0.25" in manifest["command"]


@pytest.mark.parametrize("flags", [["--hubness-beta", "-0.1"], ["--hubness-beta", "x"], ["--hubness-beta", "1", "--hubness-top-k", "0"]])
def test_bad_hubness_settings_are_refused_before_export(tmp_path, flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        E.main(["--model", "random:tiny", "--out", str(tmp_path / "b"), *flags])
    assert exit_info.value.code == 2 and "--hubness" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_refuses_to_overwrite_a_directory_that_is_not_a_bundle(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not lose me")
    assert E.main(["--model", "random:tiny", "--out", str(out)]) == 1
    assert (out / "thesis.tex").read_text() == "do not lose me"


def test_padding_dependent_text_tower_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    """Pooling the last position (instead of CLIP's first EOS) makes embeddings depend on padding:
    the export must notice and leave no bundle behind."""
    model = create_model("tiny", seed=2)

    def last_position(input_ids, attention_mask):
        hidden = model.model.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return model.model.text_projection(hidden[:, -1])

    monkeypatch.setattr(model, "encode_text", last_position)
    with pytest.raises(E.ExportError, match="padded"):
        E.export_bundle(model, tmp_path / "bundle", log=lambda *_: None)
    assert list(tmp_path.iterdir()) == []


def test_unused_attention_mask_is_kept_as_an_input(tmp_path):
    """open_clip text towers ignore the mask; the bundle must still accept it."""

    class MaskBlind(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return torch.nn.functional.normalize(input_ids.float()[:, :2] + 1.0, dim=-1)

    path = tmp_path / "t.onnx"
    ids = torch.ones(2, 3, dtype=torch.long)
    E._export_onnx(MaskBlind(), (ids, ids), path, ["input_ids", "attention_mask"], "text_embeds",
                   {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}, "torchscript", 8)
    import onnx

    E._ensure_inputs(path, ["input_ids", "attention_mask"], onnx.TensorProto.INT64, ["batch", "seq"])
    E._check_signature(path, ["input_ids", "attention_mask"], "text_embeds")
    out = _session(path).run(None, {"input_ids": np.ones((1, 5), np.int64), "attention_mask": np.ones((1, 5), np.int64)})
    assert out[0].shape == (1, 2)


def test_tokenizer_json_is_built_from_bare_bpe_files(tmp_path):
    """Adapters that only ship vocab.json + merges.txt (open_clip) still get a working tokenizer.json."""
    from tokenizers import Tokenizer

    from countclip.model.base import clip_bpe_dir

    files = {"vocab.json": clip_bpe_dir() / "vocab.json", "merges.txt": clip_bpe_dir() / "merges.txt"}
    built = E._tokenizer_json_from_bpe(files, tmp_path)
    ids = Tokenizer.from_file(str(built["tokenizer.json"])).encode("Three cats!").ids
    assert ids == [49406, 2097, 3989, 256, 49407]
