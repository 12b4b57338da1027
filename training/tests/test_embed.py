"""`countclip embed`: a vector bundle the service imports, embedded exactly as the bundle does, resumable."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from countclip.bundle.embed import expand_braces, image_id, main, model_id
from countclip.bundle.export import export_bundle
from countclip.bundle.onnx_model import BundleModel
from countclip.model.factory import create_model

torch.set_num_threads(1)


def dots(n: int) -> Image.Image:
    image = Image.new("RGB", (48, 40), (240, 240, 240))
    draw = ImageDraw.Draw(image)
    for k in range(n):
        draw.ellipse((3 + 5 * k, 15, 7 + 5 * k, 19), fill=(200, 20, 20))
    return image


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed")
    export_bundle(create_model("tiny", seed=5), root / "bundle", log=lambda *_: None)
    return root / "bundle"


def read(out):
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [json.loads(line) for line in (out / "ids.jsonl").read_text().splitlines()]
    return manifest, rows, np.load(out / "vectors.npy")


def test_folder_embeds_like_the_bundle_and_resumes(bundle, tmp_path):
    images = tmp_path / "images" / "sub"
    images.mkdir(parents=True)
    for n in range(1, 6):
        dots(n).save(images / f"{n} dots.png")
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    assert main(["--bundle", str(bundle), "--images", str(tmp_path / "images"), "--out", str(out), "--part-size", "2", "--batch-size", "2"]) == 0
    manifest, rows, vectors = read(out)
    assert manifest["format"] == "countclip-vectors" and manifest["modelId"] == model_id(bundle)
    assert manifest["count"] == 5 and vectors.shape == (5, manifest["dim"]) and vectors.dtype == np.float32
    assert [r["id"] for r in rows] == [f"sub:{n}_dots.png" for n in range(1, 6)]
    model = BundleModel(bundle)
    expected = model.encode_image(torch.stack([model.preprocess(dots(n)) for n in range(1, 6)])).numpy()
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # Resume: finished parts are not embedded again; the final files are rewritten the same.
    part = out / "parts" / "00000.npy"
    stamp = part.stat().st_mtime_ns
    (out / "vectors.npy").unlink()
    assert main(["--bundle", str(bundle), "--images", str(tmp_path / "images"), "--out", str(out), "--part-size", "2"]) == 0
    assert part.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(read(out)[2], vectors)


def test_shards_and_parquet(bundle, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for s in range(2):
        with tarfile.open(tmp_path / f"shard-{s:02d}.tar", "w") as tar:
            for n in range(1, 3):
                file = tmp_path / f"{s}{n}.png"
                dots(n + s).save(file)
                tar.add(file, arcname=f"{s:02d}{n:04d}.png")
                (tmp_path / f"{s}{n}.txt").write_text("caption")
                tar.add(tmp_path / f"{s}{n}.txt", arcname=f"{s:02d}{n:04d}.txt")
    out = tmp_path / "from-shards"
    assert main(["--bundle", str(bundle), "--shards", str(tmp_path / "shard-{00..01}.tar"), "--out", str(out)]) == 0
    manifest, rows, _ = read(out)
    assert manifest["count"] == 4 and [r["id"] for r in rows] == ["000001", "000002", "010001", "010002"]
    pq.write_table(pa.table({"path": ["01.png", "02.png"], "key": ["a", "b"]}), tmp_path / "paths.parquet")
    out = tmp_path / "from-parquet"
    assert main(["--bundle", str(bundle), "--parquet", str(tmp_path / "paths.parquet"), "--id-column", "key", "--out", str(out)]) == 0
    assert [r["id"] for r in read(out)[1]] == ["a", "b"]


def test_ids_and_shard_ranges():
    assert image_id("a/b c.png") == "a:b_c.png"
    assert image_id("_x").startswith("img-") and image_id("x" * 200).startswith("img-")
    assert expand_braces("s/{008..010}.tar") == ["s/008.tar", "s/009.tar", "s/010.tar"]


def test_ranks_split_the_parts_and_the_last_assembles(bundle, tmp_path, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    for n in range(1, 6):
        dots(n).save(images / f"{n}.png")
    out = tmp_path / "out"
    args = ["--bundle", str(bundle), "--images", str(images), "--out", str(out), "--part-size", "2"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(args) == 0
    assert sorted(p.name for p in (out / "parts").glob("*.jsonl")) == ["00000.jsonl", "00002.jsonl"]
    assert not (out / "manifest.json").exists()
    monkeypatch.setenv("RANK", "1")
    assert main(args) == 0
    manifest, rows, vectors = read(out)
    assert manifest["count"] == 5 and [r["id"] for r in rows] == [f"{n}.png" for n in range(1, 6)]
    assert vectors.shape == (5, manifest["dim"])
