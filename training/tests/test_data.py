"""Data specs, shard/table reading, skip accounting, deterministic resumable streams, mixing."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from countclip.data import DataSpecError, LoaderSpec, MixedLoader, expand_braces, normalize_pixels, open_source
from countclip.data import collate as collate_module
from countclip.data.decode import decode, resize_and_crop
from countclip.data.stream import RawStream
from countclip.data.toy import add_member, write_toy_shards
from countclip.model.preprocess import PreprocessConfig, preprocess_image

torch.set_num_threads(1)
CONFIG = PreprocessConfig(size=32, crop_size=32)


def png_bytes(size=(40, 30), color=(200, 10, 10), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else color + (128,)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_brace_expansion_keeps_zero_padding_and_alternatives():
    assert expand_braces("s-{00008..00011}.tar") == ["s-00008.tar", "s-00009.tar", "s-00010.tar", "s-00011.tar"]
    assert expand_braces("{a,b}/{1..2}") == ["a/1", "a/2", "b/1", "b/2"]
    assert expand_braces("plain.tar") == ["plain.tar"]


def test_open_source_accepts_lists_directories_and_reports_missing_shards(tmp_path):
    spec = write_toy_shards(tmp_path, "toy", shards=3, per_shard=2, counts=(2,))
    assert len(open_source(spec).units) == 3
    assert len(open_source(str(tmp_path)).units) == 3
    assert len(open_source(f"{tmp_path}/toy-00000.tar::{tmp_path}/toy-00002.tar").units) == 2
    with pytest.raises(DataSpecError, match="not found"):
        open_source(f"{tmp_path}/toy-{{00000..00005}}.tar")


def write_messy_shard(path) -> dict[str, str]:
    """One good sample and one of each kind of damage; returns key -> expected outcome."""
    good = png_bytes()
    with tarfile.open(path, "w") as archive:
        for key, members in {
            "good": {"png": good, "txt": b"two red circles", "json": b'{"count": 2}'},
            "truncated": {"png": good[: len(good) // 2], "txt": b"x"},
            "garbage": {"jpg": b"not an image at all", "txt": b"x"},
            "nocaption": {"png": good},
            "latin1": {"png": good, "txt": "caf\xe9".encode("latin-1")},
            "noimage": {"txt": b"a caption"},
            "empty": {"png": good, "txt": b"   "},
            "badjson": {"png": good, "txt": b"fine", "json": b"{not json"},
        }.items():
            for ext, data in members.items():
                add_member(archive, f"{key}.{ext}", data)
    return {"good": "ok", "truncated": "corrupt_image", "garbage": "corrupt_image", "nocaption": "missing_caption",
            "latin1": "bad_utf8", "noimage": "missing_image", "empty": "empty_caption", "badjson": "ok"}


def test_damaged_samples_are_skipped_with_a_reason(tmp_path):
    expected = write_messy_shard(tmp_path / "messy.tar")
    source = open_source(str(tmp_path / "messy.tar"))
    outcomes = {}
    for entry in source.index(0):
        result = decode(source.read(0, entry), CONFIG)
        outcomes[result.key] = getattr(result, "reason", "ok")
    assert outcomes == expected


def test_loader_counts_skips_and_keeps_going(tmp_path):
    write_messy_shard(tmp_path / "messy.tar")
    spec = LoaderSpec(batch_size=2, counting_ratio=0.0, seed=0, with_counterfactuals=False, prefetch_batches=0)
    loader = MixedLoader(spec, CONFIG, fake_tokenize, open_source(str(tmp_path / "messy.tar")), None)
    batches = [batch for _, batch in zip(range(4), loader)]
    skipped = dict(batches[-1]["data_state"]["skipped"])
    # 4 batches of 2 = 8 usable samples = 4 passes over the shard (2 usable, 6 dropped, 1 bad json each)
    assert skipped.pop("bad_metadata") in (3, 4)
    assert sum(skipped.values()) in range(6 * 3, 6 * 4 + 1)
    assert set(skipped) == {"corrupt_image", "missing_caption", "bad_utf8", "missing_image", "empty_caption"}
    assert all(set(b["captions"]) <= {"two red circles", "fine"} for b in batches)


def test_truncated_tar_keeps_the_samples_before_the_damage(tmp_path):
    spec = write_toy_shards(tmp_path, "toy", shards=1, per_shard=6, counts=(3,))
    path = tmp_path / "toy-00000.tar"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    source = open_source(spec)
    entries = source.index(0)
    assert 0 < len(entries) < 6
    assert source.problems == [] or "toy-00000.tar" in source.problems[0]


@pytest.mark.parametrize("orientation", [1, 6])  # 6: stored sideways, shown rotated (phone photos)
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_device_normalisation_reproduces_preprocess_image(orientation, mode):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)).convert(mode)
    exif = image.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif.tobytes())
    image = Image.open(io.BytesIO(buffer.getvalue()))
    ours = normalize_pixels(torch.from_numpy(resize_and_crop(image, CONFIG))[None], CONFIG)[0]
    torch.testing.assert_close(ours, preprocess_image(image, CONFIG), rtol=0, atol=1e-6)


def test_table_source_reads_csv_and_parquet_over_an_image_root(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "images"
    root.mkdir()
    (root / "a.png").write_bytes(png_bytes())
    (root / "b.png").write_bytes(png_bytes(color=(0, 0, 200)))
    (tmp_path / "pairs.csv").write_text("image,caption,count\na.png,three red circles,3\nb,two blue squares,\n")
    pq.write_table(pa.table({"image_path": ["a.png"], "text": ["one"]}), tmp_path / "pairs.parquet")
    csv_source = open_source(str(tmp_path / "pairs.csv"), str(root))
    samples = [decode(csv_source.read(0, row), CONFIG) for row in csv_source.index(0)]
    assert [s.caption for s in samples] == ["three red circles", "two blue squares"]
    assert samples[0].meta == {"count": 3} and samples[1].meta == {}
    parquet_source = open_source(str(tmp_path / "pairs.parquet"), str(root))
    assert decode(parquet_source.read(0, 0), CONFIG).caption == "one"
    with pytest.raises(DataSpecError, match="caption"):
        (tmp_path / "bad.csv").write_text("image,label\na.png,x\n")
        open_source(str(tmp_path / "bad.csv"))


def test_table_with_non_utf8_caption_is_skipped_not_fatal(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes())
    (tmp_path / "t.csv").write_bytes(b"image,caption,count\na.png,caf\xe9,2\na.png,fine,\na.png,two,lots\n")
    source = open_source(str(tmp_path / "t.csv"))
    results = [decode(source.read(0, row), CONFIG) for row in source.index(0)]
    assert [getattr(r, "reason", "ok") for r in results] == ["bad_utf8", "ok", "ok"]
    assert results[2].meta == {"_bad_metadata": True}  # an unreadable count: counted by the loader, pair kept


def keys(stream, n):
    return [sample.key for _, sample in zip(range(n), stream)]


def test_stream_resumes_exactly_from_a_saved_position(tmp_path):
    source = open_source(write_toy_shards(tmp_path, "toy", shards=3, per_shard=4, counts=(2,)))
    full = list(zip(range(30), RawStream(source, "general", seed=5)))
    assert sorted(s.key for _, s in full[:12]) == sorted(s.key for _, s in full[12:24])  # epochs cover the data
    assert [s.key for _, s in full[:12]] != [s.key for _, s in full[12:24]]  # ... in a new order each epoch
    position = full[16][1].position
    resumed = RawStream(source, "general", seed=5, state=position)
    assert keys(resumed, 13) == [s.key for _, s in full[17:30]]


@pytest.mark.parametrize("shards", [1, 4])
def test_ranks_split_an_epoch_into_disjoint_parts(tmp_path, shards):
    source = open_source(write_toy_shards(tmp_path, "toy", shards=shards, per_shard=8 // shards, counts=(2,)))
    rank0 = keys(RawStream(source, "g", seed=1, rank=0, world_size=2, epochs=1), 100)
    rank1 = keys(RawStream(source, "g", seed=1, rank=1, world_size=2, epochs=1), 100)
    assert not set(rank0) & set(rank1)
    assert sorted(rank0 + rank1) == sorted(keys(RawStream(source, "g", seed=1, epochs=1), 100))


def fake_tokenize(texts):
    length = max(len(t.split()) for t in texts) + 2
    ids = torch.zeros(len(texts), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, text in enumerate(texts):
        n = len(text.split()) + 2
        ids[i, :n] = torch.arange(1, n + 1)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask}


def fake_counterfactual(text, rng):
    if "no count" in text:
        return None
    return text.replace("two", "nine"), 2, 9


def test_mixed_batches_have_the_ratio_and_counterfactuals_index_their_images(tmp_path, monkeypatch):
    monkeypatch.setattr(collate_module, "_make_counterfactual", fake_counterfactual)
    general = open_source(write_toy_shards(tmp_path / "g", "g", shards=1, per_shard=10, counts=(3,)))
    counting = open_source(write_toy_shards(tmp_path / "c", "c", shards=1, per_shard=10, counts=(2,)))
    spec = LoaderSpec(batch_size=8, counting_ratio=0.25, seed=0, with_counterfactuals=True, pad_multiple=8,
                      prefetch_batches=1)
    loader = MixedLoader(spec, CONFIG, fake_tokenize, general, counting)
    batch = next(iter(loader))
    loader.close()
    assert batch["pixels"].shape == (8, 32, 32, 3) and batch["pixels"].dtype == torch.uint8
    assert batch["is_counting"].tolist() == [False] * 6 + [True] * 2
    assert batch["count_index"].tolist() == [6, 7]
    assert batch["input_ids"].shape[0] == 8 + 2 and batch["input_ids"].shape[1] % 8 == 0
    assert all("nine" in text for text in batch["counterfactuals"])
    assert batch["true_count"].tolist() == [2, 2] and batch["counterfactual_count"].tolist() == [9, 9]
    assert set(batch["data_state"]["streams"]) == {"general", "counting"}


def test_batches_are_identical_after_resuming_from_a_batch_state(tmp_path, monkeypatch):
    monkeypatch.setattr(collate_module, "_make_counterfactual", fake_counterfactual)
    general = open_source(write_toy_shards(tmp_path, "g", shards=2, per_shard=5, counts=(2, 3)))
    spec = LoaderSpec(batch_size=3, counting_ratio=0.0, seed=0, with_counterfactuals=False, prefetch_batches=0)
    first = [b for _, b in zip(range(7), MixedLoader(spec, CONFIG, fake_tokenize, general, None))]
    resumed = MixedLoader(spec, CONFIG, fake_tokenize, general, None, start_step=4, state=first[3]["data_state"])
    again = [b for _, b in zip(range(3), resumed)]
    assert [b["keys"] for b in again] == [b["keys"] for b in first[4:]]
    assert all(torch.equal(a["pixels"], b["pixels"]) for a, b in zip(again, first[4:]))


def test_worker_pool_gives_the_same_batches_as_in_process_decoding(tmp_path):
    general = open_source(write_toy_shards(tmp_path, "g", shards=2, per_shard=6, counts=(2, 3)))
    base = dict(batch_size=4, counting_ratio=0.0, seed=3, with_counterfactuals=False, prefetch_batches=0)
    inline = [b["keys"] for _, b in zip(range(4), MixedLoader(LoaderSpec(**base), CONFIG, fake_tokenize, general, None))]
    pooled_loader = MixedLoader(LoaderSpec(**base, workers=1), CONFIG, fake_tokenize, general, None)
    try:
        pooled = [b["keys"] for _, b in zip(range(4), pooled_loader)]
    finally:
        pooled_loader.close()
    assert pooled == inline


def test_epochs_become_steps_from_the_general_stream_and_img2dataset_stats(tmp_path):
    from countclip.data import count_samples
    from countclip.train.config import TrainConfig
    from countclip.train.main import steps_for_epochs

    general = open_source(write_toy_shards(tmp_path / "g", "g", shards=2, per_shard=10, counts=(2,)))
    counting = open_source(write_toy_shards(tmp_path / "c", "c", shards=1, per_shard=6, counts=(2,)))
    assert count_samples(general) == 20
    config = TrainConfig(train_data="x", counting_data="y", batch_size=4, counting_ratio=0.5, epochs=1.5)
    assert steps_for_epochs(config, general, counting, world_size=1) == 15  # 30 general samples, 2 per step
    assert steps_for_epochs(config, general, counting, world_size=2) == 8
    only_counting = TrainConfig(counting_data="y", batch_size=4, epochs=2)
    assert steps_for_epochs(only_counting, None, counting, world_size=1) == 3
    (tmp_path / "g" / "g-00000_stats.json").write_text(json.dumps({"successes": 7}))  # img2dataset's count wins
    assert count_samples(general) == 17


def test_extra_padding_leaves_text_embeddings_unchanged():
    from countclip.data.collate import pad_tokens
    from countclip.model.factory import create_model

    model = create_model("tiny").eval()
    tokens = model.tokenize(["two red circles", "a photo of three blue squares on a table"])
    padded = pad_tokens(tokens, multiple=8, pad_id=0, limit=model.context_length)
    assert padded["input_ids"].shape[1] % 8 == 0 and padded["input_ids"].shape[1] > tokens["input_ids"].shape[1]
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(**padded), model.encode_text(**tokens), rtol=0, atol=1e-5)


def take_batches(loader, n):
    try:
        return [batch for _, batch in zip(range(n), loader)]
    finally:
        loader.close()


@pytest.mark.parametrize("workers", [0, 1])
def test_decode_cache_gives_the_same_batches_and_skip_counts(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(collate_module, "_make_counterfactual", fake_counterfactual)
    write_messy_shard(tmp_path / "messy.tar")  # skips and bad metadata must be counted every epoch, cache or not
    general = f"{tmp_path}/messy.tar::" + write_toy_shards(tmp_path / "g", "g", shards=2, per_shard=5, counts=(3,))
    counting = write_toy_shards(tmp_path / "c", "c", shards=2, per_shard=4, counts=(2,))
    base = dict(batch_size=6, counting_ratio=0.5, seed=4, with_counterfactuals=True, prefetch_batches=0, workers=workers)
    plain = take_batches(MixedLoader(LoaderSpec(**base), CONFIG, fake_tokenize, open_source(general), open_source(counting)), 12)
    cached_loader = MixedLoader(LoaderSpec(**base, decode_cache_mb=1), CONFIG, fake_tokenize,
                                open_source(general), open_source(counting))
    cached = take_batches(cached_loader, 12)  # 36 counting samples over 8: several epochs each
    assert cached_loader.cache.hits > 20
    for a, b in zip(plain, cached):
        assert a["keys"] == b["keys"] and a["captions"] == b["captions"] and a["counterfactuals"] == b["counterfactuals"]
        assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["input_ids"], b["input_ids"])
        assert a["data_state"] == b["data_state"]  # stream positions and skip counts alike
    assert cached[-1]["data_state"]["skipped"]["bad_metadata"] >= 2


def test_decode_cache_stops_adding_at_its_budget(tmp_path):
    from countclip.data.cache import DecodeCache

    source = open_source(write_toy_shards(tmp_path, "g", shards=1, per_shard=6, counts=(2,)))
    cache = DecodeCache(budget_bytes=2 * (32 * 32 * 3 + 100))
    raws = [source.read(0, entry) for entry in source.index(0)]
    for raw in raws:
        raw.unit = 0
        cache.put("g", raw, decode(raw, CONFIG))
    assert len(cache.items) == 2 and cache.used <= cache.budget
    raws[0].position = {"epoch": 1, "unit": 0, "item": 1}
    hit = cache.get("g", raws[0])
    assert hit.position == raws[0].position and np.array_equal(hit.pixels, decode(raws[0], CONFIG).pixels)
    assert cache.get("other-stream", raws[0]) is None and cache.get("g", raws[5]) is None


def test_a_shard_is_indexed_once_and_each_caller_gets_its_own_list(tmp_path, monkeypatch):
    source = open_source(write_toy_shards(tmp_path, "g", shards=1, per_shard=4, counts=(2,)))
    opened = []
    real_open = tarfile.open
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    first = source.index(0)
    first.reverse()  # streams shuffle what they get in place
    second = source.index(0)
    assert len(opened) == 1
    assert second == list(reversed(first)) and len(second) == 4


def test_decode_cache_size_must_not_be_negative():
    from countclip.train.config import parse_config

    with pytest.raises(SystemExit, match="decode-cache-mb"):
        parse_config(["--train-data", "x.tar", "--decode-cache-mb", "-1"])
