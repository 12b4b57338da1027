"""The synthetic counting world: scenes, captions and the files `countclip synth` writes."""

from __future__ import annotations

import io
import json
import math
import random
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from countclip.synth import backgrounds, captions, kinds, scenes, streams, writers
from countclip.synth.cli import main as synth_main
from countclip.synth.sprites import FontNotFoundError, find_emoji_font, master_sprite

try:
    find_emoji_font()
except FontNotFoundError as error:  # pragma: no cover - depends on the machine
    pytest.skip(f"Noto Color Emoji not installed ({error})", allow_module_level=True)

NUMBER_WORDS = captions.NUMBER_WORDS[1:]  # "one" too: counting captions state 1..10


def test_catalogue_has_enough_distinct_kinds_and_a_proper_held_out_split():
    assert len(kinds.KINDS) >= 40
    for attribute in ("name", "plural", "emoji"):
        values = [getattr(kind, attribute) for kind in kinds.KINDS]
        assert len(set(values)) == len(values), f"duplicate {attribute}"
    assert kinds.HELD_OUT < set(kinds.BY_NAME)
    assert not {kind.name for kind in kinds.training_kinds()} & kinds.HELD_OUT
    assert backgrounds.HELD_OUT_STYLES < set(backgrounds.STYLES)


def test_every_kind_has_a_glyph_in_the_font():
    for kind in kinds.KINDS:
        sprite = master_sprite(kind.emoji)
        assert sprite.mode == "RGBA" and min(sprite.size) > 40, kind.name


def test_missing_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COUNTCLIP_EMOJI_FONT", str(tmp_path / "missing.ttf"))
    with pytest.raises(FontNotFoundError, match="fonts-noto-color-emoji"):
        find_emoji_font()
    assert synth_main(["gallery", "--out", str(tmp_path / "g"), "--count", "1"]) == 2


@pytest.mark.parametrize("count", [1, 2, 7, 10])
def test_scene_places_the_exact_count_without_heavy_overlap(count):
    rng = random.Random(count)
    scene = scenes.sample_scene(rng, kinds.BY_NAME["cat"], count, distractors=kinds.KINDS, distractor_prob=1.0)
    counted = [item for item in scene.objects if item.emoji == scene.kind.emoji]
    assert len(counted) == count
    assert scene.distractor is not None and scene.distractor.name != "cat"
    assert len(scene.objects) == count + scene.distractor_count
    for item in scene.objects:
        assert item.size / 2 <= item.x <= 1 - item.size / 2 and item.size / 2 <= item.y <= 1 - item.size / 2
        assert abs(item.angle) <= scenes.MAX_ROTATION
    for i, a in enumerate(scene.objects):
        for b in scene.objects[i + 1:]:
            assert math.hypot(a.x - b.x, a.y - b.y) >= scenes.MIN_GAP * (a.size + b.size) / 2 - 1e-9


def test_object_size_does_not_depend_on_the_count():
    """More objects cover more of the image, as in photos: sizes come from one range for every count."""
    low, high = scenes.SIZE_RANGE

    def mean_size(count: int) -> float:
        sizes = [item.size for seed in range(40)
                 for item in scenes.sample_scene(random.Random(seed), kinds.BY_NAME["apple"], count).objects]
        assert all(0.85 * low * 0.9 <= size <= 1.15 * high for size in sizes)
        return sum(sizes) / len(sizes)

    assert abs(mean_size(2) - mean_size(10)) < 0.01


def test_scene_rejects_counts_outside_one_to_ten():
    with pytest.raises(ValueError):
        scenes.sample_scene(random.Random(0), kinds.KINDS[0], 11)


def test_rendering_is_deterministic_and_differs_between_samples():
    first = streams.counting(3, 5).scene.render(48).tobytes()
    assert streams.counting(3, 5).scene.render(48).tobytes() == first
    assert streams.counting(3, 6).scene.render(48).tobytes() != first
    assert streams.counting(4, 5).scene.render(48).tobytes() != first


@pytest.mark.parametrize("style", backgrounds.STYLES)
def test_every_background_style_renders_and_is_described(style):
    spec = backgrounds.Background(style=style, color="green", second="white", angle=30.0, period=0.2, seed=1)
    image = backgrounds.render_background(spec, 32)
    assert image.size == (32, 32) and image.mode == "RGB"
    assert spec.describe().endswith("background")


def _words(text: str) -> set[str]:
    return {word.strip(",.").lower() for word in text.split()}


def _stated_count(text: str) -> list[str]:
    return [word for word in _words(text) if word in NUMBER_WORDS or word.isdigit()]


def test_counting_captions_state_the_count_once_before_the_noun():
    digits = 0
    for index in range(400):
        sample = streams.counting(0, index)
        count = sample.meta["count"]
        text = sample.caption.lower()
        stated = _stated_count(text)
        assert stated in ([captions.number_word(count)], [str(count)]), sample.caption
        assert f"{stated[0]} " in text and sample.meta["noun"] in text
        assert sample.meta["kind"] not in kinds.HELD_OUT
        assert count != 1 or " group of" not in text and "there are" not in text, sample.caption
        digits += stated[0].isdigit()
    # As in web alt text, about a third write the count in digits ("3 cats").
    assert 0.25 < digits / 400 < 0.45


def test_countbench_captions_keep_number_words():
    # The protocol's words task reads the captions as they are; the digits task rewrites them.
    for index in range(0, 540, 7):
        sample = streams.countbench(0, index)
        assert _stated_count(sample.caption.lower()) == [captions.number_word(sample.meta["count"])]


def test_general_captions_omit_the_count_unless_asked():
    stated = 0
    for index in range(300):
        sample = streams.general(0, index, count_prob=0.0)
        assert not _stated_count(sample.caption), sample.caption
        assert "count" not in sample.meta
        stated += bool(_stated_count(streams.general(0, index, count_prob=1.0).caption))
    assert stated > 150  # every scene of 2+ objects states it when count_prob is 1


def test_captions_are_parseable_by_the_count_core():
    counts = pytest.importorskip("countclip.counting.core", reason="count core not available yet")
    for index in range(300):
        sample = streams.counting(1, index) if index % 2 else streams.countbench(1, index)
        match = counts.find_count(sample.caption)
        assert match is not None and match.count == sample.meta["count"], sample.caption
        variants = counts.count_variants(sample.caption, sample.meta["count"])
        if sample.meta["count"] == 1:  # its variants are the plural captions of 2..10
            assert len(variants) == 9 and all(sample.scene.kind.plural in v.lower() for v in variants), variants
        else:
            assert len(variants) == 9 and sample.caption in variants


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


def test_shards_follow_the_img2dataset_layout_and_do_not_depend_on_workers(tmp_path):
    make = lambda index: streams.counting(0, index)  # noqa: E731 - single-process path only
    one = writers.write_shards(tmp_path / "a", make, 5, prefix="counting", per_shard=2, size=32, workers=1)
    assert one["shards"] == 3 and one["pattern"].endswith("counting-{00000..00002}.tar")
    from functools import partial

    two = writers.write_shards(tmp_path / "b", partial(streams.counting, 0), 5, prefix="counting", per_shard=2,
                               size=32, workers=2)
    for shard in range(3):
        name = f"counting-{shard:05d}.tar"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    members = _members(tmp_path / "a" / "counting-00001.tar")
    assert sorted(members) == ["000010000.jpg", "000010000.json", "000010000.txt",
                               "000010001.jpg", "000010001.json", "000010001.txt"]
    meta = json.loads(members["000010000.json"])
    assert meta["key"] == "000010000" and 2 <= meta["count"] <= 10 and meta["noun"]
    assert members["000010000.txt"].decode("utf-8") == meta["caption"]
    assert Image.open(io.BytesIO(members["000010000.jpg"])).size == (32, 32)
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_synthetic_countbench_is_balanced_and_in_countbench_schema(tmp_path):
    assert synth_main(["countbench", "--out", str(tmp_path / "cb"), "--size", "24", "--workers", "2"]) == 0
    entries = json.loads((tmp_path / "cb" / "CountBench.json").read_text())
    lines = [json.loads(line) for line in (tmp_path / "cb" / "countbench.jsonl").read_text().splitlines()]
    assert len(entries) == len(lines) == 540
    assert {number: sum(e["number"] == number for e in entries) for number in range(2, 11)} == dict.fromkeys(
        range(2, 11), 60)
    assert set(entries[0]) == {"image", "text", "number"}
    for entry in entries[::50]:
        assert (tmp_path / "cb" / entry["image"]).is_file()
        assert captions.number_word(entry["number"]) in entry["text"].lower()
    held_out = [line for line in lines if line["held_out_kind"]]
    assert len(held_out) == 270 and all(line["kind"] in kinds.HELD_OUT for line in held_out)
    assert any(line["held_out_background"] for line in lines)
    distracted = [json.loads(line) for line in (tmp_path / "cb" / "countbench-distractors.jsonl").read_text().splitlines()]
    assert distracted == [line for line in lines if line["distractor"]] and 100 < len(distracted) < 260


def test_gallery_holds_every_kind_at_every_count():
    rounds = 2
    samples = [streams.gallery(0, index) for index in range(len(kinds.KINDS) * 10 * rounds)]
    pairs = {}
    for sample in samples:
        key = (sample.meta["kind"], sample.meta["count"])
        pairs[key] = pairs.get(key, 0) + 1
    assert pairs == {(kind.name, count): rounds for kind in kinds.KINDS for count in range(1, 11)}
    assert 0.15 < sum(sample.meta["distractor"] is not None for sample in samples) / len(samples) < 0.35


def test_gallery_and_zeroshot_folders(tmp_path):
    assert synth_main(["gallery", "--out", str(tmp_path / "g"), "--count", "12", "--size", "40"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "g" / "gallery.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and len({row["id"] for row in rows}) == 12
    for row in rows:
        assert {"id", "file", "caption", "count", "noun", "kind", "distractor"} <= set(row)
        assert Image.open(tmp_path / "g" / row["file"]).size == (40, 40)
        assert 1 <= row["count"] <= 10
    assert synth_main(["zeroshot", "--out", str(tmp_path / "z"), "--per-class", "1", "--size", "24"]) == 0
    classes = sorted(path.name for path in (tmp_path / "z").iterdir())
    assert classes == sorted(kind.name for kind in kinds.training_kinds())


def test_failed_generation_keeps_the_previous_output(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with writers.staged_dir(target) as stage:
            (stage / "new.txt").write_text("partial")
            raise RuntimeError("interrupted")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
    assert (target / "keep.txt").read_text() == "old"


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert synth_main(["gallery", "--out", str(tmp_path), "--size", "8"]) == 2
    assert "--size" in capsys.readouterr().err
    assert synth_main(["shards", "--stream", "general", "--samples", "3", "--out", str(tmp_path),
                       "--count-prob", "1.5"]) == 2
