"""`countclip verify` with the deterministic blob detector: keep/drop, reports, resume, ranks, damage."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from countclip.mining import verify
from countclip.mining.detectors import BlobCountDetector, box_iou, nms
from countclip.mining.shards import expand_braces, iter_samples

torch.set_num_threads(1)


def squares_image(n: int, fmt: str = "JPEG", size: int = 96) -> bytes:
    """n separate red squares on white: what the blob detector counts."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    cell = size // 4
    for i in range(n):
        x, y = (i % 4) * cell + cell // 4, (i // 4) * cell + cell // 4
        image.paste((200, 20, 20), (x, y, x + cell // 2, y + cell // 2))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def sample_files(drawn: int, count: int | None, noun: str = "squares", caption: str | None = None) -> dict[str, bytes]:
    meta = {"url": "https://img.example/x.jpg", "caption": caption}
    if count is not None:
        meta.update(count=count, noun=noun)
    return {"jpg": squares_image(drawn), "txt": (caption or f"{count} {noun}").encode(), "json": json.dumps(meta).encode()}


def write_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]], cut_inside: bytes = b"") -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    path.write_bytes(data[: data.rindex(cut_inside) + 10] if cut_inside else data)
    return path


def make_shards(tmp_path: Path, n_shards: int = 3) -> list[Path]:
    """Each shard: 2 correct samples (2 and 3 squares), 1 too few, 1 too many."""
    shards = []
    for s in range(n_shards):
        samples = [(f"{s}{i:04d}", files) for i, files in enumerate(
            [sample_files(2, 2), sample_files(3, 3), sample_files(2, 4), sample_files(5, 3)])]
        shards.append(write_tar(tmp_path / "in" / f"shard-{s:05d}.tar", samples))
    return shards


def read_shard(path: Path) -> list:
    problems = Counter()
    samples = list(iter_samples(path, problems))
    assert not problems
    return samples


def run_verify(tmp_path: Path, *extra: str, pattern: str = "shard-{00000..00002}.tar") -> int:
    return verify.main([str(tmp_path / "in" / pattern), "--out", str(tmp_path / "out"), "--detector", "fake",
                        "--device", "cpu", *extra])


def test_keeps_samples_whose_detected_count_matches(tmp_path):
    (tmp_path / "in").mkdir()
    make_shards(tmp_path)
    assert run_verify(tmp_path) == 0
    for s in range(3):
        kept = read_shard(tmp_path / "out" / f"shard-{s:05d}.tar")
        assert [x.key for x in kept] == [f"{s}0000", f"{s}0001"]
        meta = json.loads(kept[0].files["json"])
        assert meta["count"] == 2 and meta["verified"] == {"detector": "fake", "detected": 2, "threshold": 0.3}
        assert kept[0].files["jpg"] == squares_image(2)  # image bytes pass through untouched
    report = json.loads((tmp_path / "out" / verify.REPORT_NAME).read_text())
    assert (report["samples"], report["kept"], report["shards"]) == (12, 6, 3)
    assert report["dropped"] == {"detected_fewer": 3, "detected_more": 3}
    assert report["per_count"]["3"] == {"kept": 3, "detected_more": 3}
    assert report["detected_vs_caption"]["4"] == {"2": 3}
    assert not list((tmp_path / "out").rglob("*.tmp-*"))


def test_the_trainer_reads_verified_shards(tmp_path):
    from countclip.data.sources import count_samples, open_source

    (tmp_path / "in").mkdir()
    make_shards(tmp_path, n_shards=2)
    assert run_verify(tmp_path, pattern="shard-{00000..00001}.tar") == 0
    source = open_source(str(tmp_path / "out" / "shard-{00000..00001}.tar"))
    assert count_samples(source) == 4
    entries = source.index(0)
    sample = source.read(0, entries[1])
    meta = json.loads(sample.meta)
    assert (meta["count"], meta["noun"], meta["verified"]["detected"]) == (3, "squares", 3)
    assert sample.image == squares_image(3) and sample.text == b"3 squares" and not source.problems


def test_unusable_samples_are_dropped_with_a_reason(tmp_path):
    no_count = sample_files(2, None, caption="a plain photo")
    count_from_caption = sample_files(2, None, caption="two red squares")
    bad_image = dict(sample_files(2, 2), jpg=b"\xff\xd8 not really a jpeg")
    no_image = {k: v for k, v in sample_files(2, 2).items() if k != "jpg"}
    out_of_range = sample_files(1, 1)
    no_noun = dict(sample_files(2, 2), json=json.dumps({"count": 2}).encode(), txt=b"2")
    (tmp_path / "in").mkdir()
    write_tar(tmp_path / "in" / "shard-00000.tar", [("a", no_count), ("b", count_from_caption), ("c", bad_image),
                                                   ("d", no_image), ("e", out_of_range), ("f", no_noun)])
    assert run_verify(tmp_path, pattern="shard-00000.tar") == 0
    report = json.loads((tmp_path / "out" / verify.REPORT_NAME).read_text())
    assert report["kept"] == 1  # the count read from the caption by the count core
    assert report["dropped"] == {"no_count": 2, "undecodable_image": 1, "no_image": 1, "no_noun": 1}


def test_resume_skips_finished_shards_and_redoes_interrupted_ones(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    shards = make_shards(tmp_path)

    class Crash(RuntimeError):
        pass

    class CrashOnSecondShard(BlobCountDetector):
        calls = 0

        def detect(self, images, nouns):
            type(self).calls += 1
            if type(self).calls == 2:  # one batch per shard: dies inside the second shard
                raise Crash("killed")
            return super().detect(images, nouns)

    monkeypatch.setattr(verify, "load_detector", lambda *a, **k: CrashOnSecondShard())
    with pytest.raises(Crash):
        run_verify(tmp_path)
    out = tmp_path / "out"
    assert verify.is_done(out, shards[0]) and not (out / shards[1].name).exists()
    assert not list(out.glob("*.tmp-*")), "an interrupted shard leaves no partial output"
    assert not (out / verify.REPORT_NAME).exists()
    first_bytes = (out / shards[0].name).read_bytes()
    (out / f"{shards[1].name}.tmp-99999").write_bytes(b"stale file of a killed run")

    monkeypatch.setattr(verify, "load_detector", lambda *a, **k: BlobCountDetector())
    assert run_verify(tmp_path) == 0
    assert (out / shards[0].name).read_bytes() == first_bytes
    assert all(verify.is_done(out, s) for s in shards)
    assert not list(out.glob("*.tmp-*"))
    assert json.loads((out / verify.REPORT_NAME).read_text())["kept"] == 6


def test_ranks_split_shards_and_the_last_one_writes_the_report(tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    shards = make_shards(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert run_verify(tmp_path) == 0
    out = tmp_path / "out"
    assert [verify.is_done(out, s) for s in shards] == [False, True, False]
    assert not (out / verify.REPORT_NAME).exists()
    assert "still in progress" in capsys.readouterr().out
    monkeypatch.setenv("RANK", "0")
    assert run_verify(tmp_path) == 0
    assert json.loads((out / verify.REPORT_NAME).read_text())["shards"] == 3
    monkeypatch.setenv("RANK", "2")
    assert run_verify(tmp_path) == 2


def test_damaged_shards_are_counted_or_reported(tmp_path):
    (tmp_path / "in").mkdir()
    samples = [(f"{i:04d}", sample_files(2, 2)) for i in range(3)]
    samples[2][1]["txt"] = b"LAST-MEMBER two squares"
    write_tar(tmp_path / "in" / "shard-00000.tar", samples, cut_inside=b"LAST-MEMBER")
    (tmp_path / "in" / "shard-00001.tar").write_bytes(b"this is not a tar file")
    assert run_verify(tmp_path, pattern="shard-{00000..00001}.tar") == 1
    report = json.loads((tmp_path / "out" / verify.REPORT_NAME).read_text())
    # The last sample lost its caption and json members (cut off): counted, then dropped for lack of a count.
    assert (report["kept"], report["dropped"]) == (2, {"no_count": 1})
    assert report["problems"] == {"broken_member": 1, "truncated_shard": 1}
    assert [f["shard"] for f in report["failed_shards"]] == ["shard-00001.tar"]


def test_duplicate_shard_names_and_missing_inputs_are_errors(tmp_path, capsys):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        write_tar(tmp_path / d / "shard.tar", [("k", sample_files(2, 2))])
    args = ["--out", str(tmp_path / "out"), "--detector", "fake"]
    assert verify.main([str(tmp_path / "a" / "shard.tar"), str(tmp_path / "b" / "shard.tar"), *args]) == 2
    assert verify.main([str(tmp_path / "nothing-*.tar"), *args]) == 2
    assert "share names" in capsys.readouterr().err
    assert verify.main([str(tmp_path / "a" / "shard.tar"), "--out", str(tmp_path / "a"), "--detector", "fake"]) == 2
    assert "would replace them" in capsys.readouterr().err


def test_blob_detector_counts_squares():
    images = [Image.open(io.BytesIO(squares_image(n, fmt="PNG"))) for n in range(0, 11)]
    assert [d.count for d in BlobCountDetector().detect(images, ["x"] * len(images))] == list(range(11))


def test_nms_suppresses_overlaps_only():
    boxes = torch.tensor([[0, 0, 1, 1], [0.05, 0, 1, 1], [2, 2, 3, 3]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert nms(boxes, scores, 0.99).tolist() == [0, 1, 2]
    assert box_iou(boxes[0], boxes[2:]).item() == 0.0


def test_expand_braces():
    assert expand_braces("s-{00008..00010}.tar") == ["s-00008.tar", "s-00009.tar", "s-00010.tar"]
    assert expand_braces("{a,b}/x-{1..2}") == ["a/x-1", "a/x-2", "b/x-1", "b/x-2"]
