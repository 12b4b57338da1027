"""Bundle integrity: the manifest's sha256s verify; tampered, missing or unlisted files are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from countclip.bundle import manifest as B


def _make_bundle(directory: Path) -> Path:
    directory.mkdir()
    for index, name in enumerate(B.REQUIRED_FILES):
        (directory / name).write_bytes(bytes([index]) * (100 + index))
    B.write_manifest(directory, {"model_name": "m", "base_model": "b", "embed_dim": 4, "logit_scale": 100.0,
                                 "context_length": 77, "image_size": 224, "created_at": "2026-01-01T00:00:00Z",
                                 "training": {}, "metrics": {}, "command": "test"})
    return directory


@pytest.fixture
def bundle_dir(tmp_path) -> Path:
    return _make_bundle(tmp_path / "bundle")


def test_written_manifest_verifies_and_lists_every_file(bundle_dir):
    manifest = B.verify_bundle(bundle_dir)
    assert manifest["files"]["text.onnx"]["bytes"] == 100
    assert manifest["files"]["text.onnx"]["sha256"] == B.sha256_file(bundle_dir / "text.onnx")
    assert set(manifest["files"]) == set(B.REQUIRED_FILES)
    assert B.main([str(bundle_dir)]) == 0


def test_a_flipped_byte_is_refused_naming_the_file(bundle_dir):
    path = bundle_dir / "vision.onnx"
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(B.BundleError, match=r"vision\.onnx: sha256 .* \(file altered\)"):
        B.verify_bundle(bundle_dir)
    assert B.main([str(bundle_dir)]) == 1


def test_truncated_missing_and_unlisted_files_are_all_named(bundle_dir):
    (bundle_dir / "text.onnx").write_bytes(b"short")
    (bundle_dir / "preprocess.json").unlink()
    (bundle_dir / "extra.bin").write_bytes(b"?")
    with pytest.raises(B.BundleError) as error:
        B.verify_bundle(bundle_dir)
    message = str(error.value)
    assert "text.onnx: size 5 bytes" in message
    assert "preprocess.json: missing" in message
    assert "extra.bin: not listed" in message


@pytest.mark.parametrize("edit, pattern", [
    (lambda m: m.update(format="other"), "format is not"),
    (lambda m: m.update(format_version=2), "format_version 2 is not supported"),
    (lambda m: m.pop("embed_dim"), "missing keys: embed_dim"),
    (lambda m: m["files"].pop("tokenizer.json"), "does not list tokenizer.json"),
    (lambda m: m["files"].update({"../etc/passwd": {"sha256": "x", "bytes": 1}}), "not a plain file name"),
])
def test_bad_manifests_are_refused(bundle_dir, edit, pattern):
    manifest = json.loads((bundle_dir / B.MANIFEST).read_text())
    edit(manifest)
    (bundle_dir / B.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(B.BundleError, match=pattern):
        B.verify_bundle(bundle_dir)


def test_not_a_bundle(tmp_path):
    with pytest.raises(B.BundleError, match="not a countclip bundle"):
        B.load_manifest(tmp_path)
    (tmp_path / B.MANIFEST).write_text("{not json")
    with pytest.raises(B.BundleError, match="not valid JSON"):
        B.load_manifest(tmp_path)


def test_manifest_needs_every_required_file(tmp_path):
    directory = _make_bundle(tmp_path / "b")
    copy = tmp_path / "c"
    shutil.copytree(directory, copy)
    (copy / "text.onnx").unlink()
    with pytest.raises(B.BundleError, match="missing text.onnx"):
        B.write_manifest(copy, {})
