"""`countclip mine`: selection equals the count core's, balancing, outputs, bad input."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from countclip.counting import fastcount
from countclip.cli import main as cli_main
from countclip.counting.core import find_count
from countclip.mining import mine, sample, select
from countclip.mining.rows import KEY_ORDER, ROWS_SCHEMA, Caps

SHARED_CAPTIONS = Path(__file__).resolve().parents[2].parent / "shared" / "captions" / "laion-captions.jsonl"

CAPTIONS = [
    "two dogs on a sofa", "three red apples", "a beach at sunset", "a 3 year old boy", "four chairs around a table",
    "five birds on a wire", "the 2014 calendar", "six cups of coffee", "seven wonders", "eight cats sleeping",
    "nine bowling pins", "ten candles", "one dog", "twelve eggs", "two cats and three dogs", "2 kg of rice",
    "a couple of ducks", "Two horses in a field", "3 little pigs", "10 pencils", None, "two dogs on a sofa",
    "a 3 year old boy with twelve balloons",
]


def write_parquet(path: Path, captions: list, urls: list | None = None, row_group_size: int = 4, **columns) -> Path:
    urls = urls if urls is not None else [f"https://img.example/{i}.jpg" for i in range(len(captions))]
    table = pa.table({"URL": pa.array(urls, pa.string()), "TEXT": pa.array(captions, pa.string()), **columns})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def expected_eligible(captions: list, urls: list) -> set[tuple[str, str, int, str]]:
    """The naive oracle: the count core on every row."""
    out = set()
    for url, text in zip(urls, captions):
        match = find_count(text) if text is not None else None
        if match and 2 <= match.count <= 10 and match.noun and url:
            out.add((url, text, match.count, match.noun))
    return out


def run_mine(tmp_path: Path, inputs: list[Path], *extra: str, out: str = "out") -> tuple[pl.DataFrame, dict]:
    code = mine.main([*map(str, inputs), "--out", str(tmp_path / out), "--workers", "1", *extra])
    assert code == 0
    frame = pl.read_parquet(tmp_path / out / mine.OUTPUT_NAME)
    return frame, json.loads((tmp_path / out / mine.STATS_NAME).read_text())


def rows(frame: pl.DataFrame) -> set[tuple]:
    return set(frame.select("url", "caption", "count", "noun").iter_rows())


def test_selection_equals_the_count_core_and_stats_add_up(tmp_path, capsys):
    urls = [f"https://img.example/{i}.jpg" for i in range(len(CAPTIONS))]
    path = write_parquet(tmp_path / "a.parquet", CAPTIONS, urls)
    frame, stats = run_mine(tmp_path, [path])
    assert rows(frame) == expected_eligible(CAPTIONS, urls)
    assert frame.columns == mine.OUTPUT_COLUMNS
    source_rows = frame.select("source_file", "row").iter_rows()
    assert all(CAPTIONS[row] == caption for (_, row), caption in zip(source_rows, frame["caption"]))
    assert stats["rows_read"] == len(CAPTIONS)
    excluded = sum(stats["excluded"].values())
    assert stats["eligible_total"] + excluded == stats["rows_read"]
    assert stats["excluded"]["null_caption"] == 1
    assert stats["excluded"]["out_of_range"] == 1  # twelve balloons (the 3 is an age)
    assert stats["excluded"]["no_number"] >= 3  # a beach, one dog, twelve eggs: never reach the core
    assert sum(stats["selected_per_count"].values()) == frame.height
    assert (tmp_path / "out" / mine.HISTOGRAM_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob("*.tmp-*"))
    printed = capsys.readouterr().out
    assert "img2dataset --url_list" in printed and "--url_col url --caption_col caption" in printed


def test_duplicate_url_caption_pairs_are_kept_once(tmp_path):
    captions = ["two dogs on a sofa"] * 3 + ["three cats"]
    urls = ["https://a/1.jpg", "https://a/1.jpg", "https://a/2.jpg", "https://a/3.jpg"]
    frame, stats = run_mine(tmp_path, [write_parquet(tmp_path / "d.parquet", captions, urls)])
    assert frame.height == 3 and stats["duplicates_dropped"] == 1


def test_real_laion_captions_match_the_naive_oracle(tmp_path):
    if not SHARED_CAPTIONS.is_file():
        pytest.skip(f"real captions not found at {SHARED_CAPTIONS}")
    texts = [json.loads(line)["text"] for line in SHARED_CAPTIONS.read_text(encoding="utf-8").splitlines() if line]
    texts = texts[:6000]
    urls = [f"https://img.example/{i}.jpg" for i in range(len(texts))]
    frame, stats = run_mine(tmp_path, [write_parquet(tmp_path / "laion.parquet", texts, urls, row_group_size=1000)])
    assert rows(frame) == expected_eligible(texts, urls)
    assert stats["prefilter_candidates"] < 0.4 * len(texts)


def many_captions(n: int) -> list[str]:
    nouns = ["dogs", "cats", "cups", "birds", "chairs", "apples"]
    words = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    return [f"{words[i % 9]} {nouns[(i // 9) % 6]} in picture {i}" for i in range(n)]


def test_balancing_caps_counts_is_seeded_and_independent_of_parallelism(tmp_path):
    captions = many_captions(540)
    a = write_parquet(tmp_path / "a.parquet", captions[:300], [f"https://x/{i}" for i in range(300)], row_group_size=50)
    b = write_parquet(tmp_path / "b.parquet", captions[300:], [f"https://x/{i}" for i in range(300, 540)], row_group_size=50)
    one, _ = run_mine(tmp_path, [a, b], "--cap-per-count", "7", "--seed", "1", out="one")
    assert one.group_by("count").len()["len"].to_list() == [7] * 9
    code = mine.main([str(a), str(b), "--out", str(tmp_path / "two"), "--workers", "2", "--rows-per-task", "100",
                      "--cap-per-count", "7", "--seed", "1"])
    assert code == 0
    two = pl.read_parquet(tmp_path / "two" / mine.OUTPUT_NAME)
    assert one.equals(two), "sample must not depend on workers or task split"
    other, _ = run_mine(tmp_path, [a, b], "--cap-per-count", "7", "--seed", "2", out="other")
    assert rows(other) != rows(one)


def test_cap_per_noun_groups_case_and_number(tmp_path):
    captions = many_captions(540) + ["two Dog", "three DOGS", "four dog"] * 4
    path = write_parquet(tmp_path / "n.parquet", captions, row_group_size=100)
    frame, stats = run_mine(tmp_path, [path], "--cap-per-noun", "5")
    assert frame.group_by("noun").len()["len"].max() <= 5
    singular = frame["noun"].str.to_lowercase().str.strip_suffix("s")
    assert singular.value_counts()["count"].max() == 5  # dogs, Dog, DOGS, dog: one kind
    assert frame.height == 6 * 5 and stats["eligible_total"] == 552
    assert stats["top_nouns"]["dog"] == 5


def test_custom_columns_and_missing_column_error(tmp_path, capsys):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"link": ["https://a/1"], "caption_text": ["two dogs"], "extra": [1]}), path)
    assert mine.main([str(path), "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    error = capsys.readouterr().err
    assert "'TEXT' not found" in error and "link, caption_text, extra" in error
    assert not (tmp_path / "o").exists()
    frame, _ = run_mine(tmp_path, [path], "--url-col", "link", "--caption-col", "caption_text")
    assert frame["caption"].to_list() == ["two dogs"]
    assert mine.main([str(path), "--out", str(tmp_path / "o"), "--url-col", "link", "--caption-col", "extra"]) == 2
    assert "column 'extra' has type int64" in capsys.readouterr().err


def test_malformed_parquet_is_a_clear_error_or_skipped_and_counted(tmp_path, capsys):
    good = write_parquet(tmp_path / "good.parquet", ["two dogs", "three cats"])
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet at all")
    assert mine.main([str(good), str(bad), "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    assert "bad.parquet: not a readable parquet file" in capsys.readouterr().err
    frame, stats = run_mine(tmp_path, [good, bad], "--skip-bad-inputs")
    assert frame.height == 2
    assert [f["path"] for f in stats["failed_inputs"]] == [str(bad)]


def test_non_utf8_and_null_captions_are_skipped_and_counted(tmp_path):
    path = tmp_path / "bin.parquet"
    captions = pa.array([b"two dogs", b"\xff\xfe three cats", None, b"four cats"], pa.binary())
    pq.write_table(pa.table({"URL": [f"https://a/{i}" for i in range(4)], "TEXT": captions}), path)
    frame, stats = run_mine(tmp_path, [path])
    assert sorted(frame["caption"].to_list()) == ["four cats", "two dogs"]
    assert stats["excluded"]["invalid_utf8"] == 1 and stats["excluded"]["null_caption"] == 1


def test_rows_without_url_are_not_selected_from_parquet(tmp_path):
    path = write_parquet(tmp_path / "u.parquet", ["two dogs", "three cats"], [None, "https://a/1"])
    frame, stats = run_mine(tmp_path, [path])
    assert frame["url"].to_list() == ["https://a/1"] and stats["excluded"]["no_url"] == 1


def write_shard(path: Path, samples: list[tuple[str, bytes | None, dict | None]], cut_inside: bytes = b"") -> Path:
    """A tar shard; with `cut_inside`, the file ends in the middle of that member's data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for key, caption, meta in samples:
            for ext, data in (("txt", caption), ("json", json.dumps(meta).encode() if meta else None)):
                if data is not None:
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    path.write_bytes(data[: data.rindex(cut_inside) + 2] if cut_inside else data)
    return path


def test_webdataset_input_and_broken_members(tmp_path):
    samples = [(f"{i:05d}", c.encode(), {"url": f"https://a/{i}"}) for i, c in enumerate(["two dogs", "a beach", "three cats"])]
    good = write_shard(tmp_path / "s-0.tar", samples)
    samples = [(f"{i:05d}", f"{w} birds".encode(), {"url": f"https://b/{i}"}) for i, w in enumerate(["four", "five", "six"])]
    broken = write_shard(tmp_path / "s-1.tar", samples, cut_inside=b"six birds")
    frame, stats = run_mine(tmp_path, [tmp_path / "s-{0..1}.tar"])
    assert {"two dogs", "three cats", "four birds"} <= set(frame["caption"].to_list())
    assert "six birds" not in frame["caption"].to_list()
    assert stats["input_problems"] == {"broken_member": 1, "truncated_shard": 1}
    assert stats["rows_read"] >= 4 and good.exists() and broken.exists()


def test_cli_dispatch_and_bad_arguments(tmp_path, capsys):
    path = write_parquet(tmp_path / "a.parquet", ["two dogs"])
    assert cli_main(["mine", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]) == 0
    assert cli_main(["mine", str(tmp_path / "missing-*.parquet"), "--out", str(tmp_path / "o2")]) == 2
    assert "matches no" in capsys.readouterr().err
    assert mine.main([str(path), "--out", str(tmp_path / "o3"), "--cap-per-count", "0"]) == 2


# Fields of stats.json that say how the run went, not what it selected.
RUN_FIELDS = ("elapsed_s", "captions_per_s", "worker_cpu_seconds", "command", "proven_abstentions", "count_core")


def test_output_is_identical_with_and_without_bulk_proofs_and_the_c_core(tmp_path):
    """The prover (prove.py) and the C core (fastcount.py) only save time: same parquet, same stats."""
    if not SHARED_CAPTIONS.is_file():
        pytest.skip(f"real captions not found at {SHARED_CAPTIONS}")
    texts = [json.loads(line)["text"] for line in SHARED_CAPTIONS.read_text(encoding="utf-8").splitlines() if line]
    texts += ["image 3", "Set of 4", "Galaxy Note 5 Case", "2.5 kg", None, "two dogs"]
    urls = [f"https://img.example/{i}.jpg" for i in range(len(texts))]
    path = write_parquet(tmp_path / "laion.parquet", texts, urls, row_group_size=5000)
    fast, fast_stats = run_mine(tmp_path, [path], "--cap-per-count", "300", "--python-core", out="fast")
    exact, exact_stats = run_mine(tmp_path, [path], "--cap-per-count", "300", "--python-core", "--no-proofs",
                                  out="exact")
    default, default_stats = run_mine(tmp_path, [path], "--cap-per-count", "300", out="default")
    assert fast.equals(exact) and default.equals(exact)
    assert fast_stats["proven_abstentions"] > 1000 and exact_stats["proven_abstentions"] == 0
    assert exact_stats["count_core"] == ["python (asked for)"]
    if fastcount.load()[0] is not None:
        assert default_stats["count_core"] == ["c"] and default_stats["proven_abstentions"] == 0
    for stats in (fast_stats, default_stats):
        assert {k: v for k, v in stats.items() if k not in RUN_FIELDS} == \
               {k: v for k, v in exact_stats.items() if k not in RUN_FIELDS}
    # --explain-abstentions needs the core's reason for every caption it declines: no proofs then.
    _, explained = run_mine(tmp_path, [path], "--explain-abstentions", out="explained")
    assert explained["proven_abstentions"] == 0


def _reference_balance(frame: pl.DataFrame, caps: Caps) -> pl.DataFrame:
    """The definition: dedupe in KEY_ORDER, noun cap, then each count's first rows in KEY_ORDER."""
    frame = frame.sort(KEY_ORDER).unique(subset=["key", "url", "caption"], keep="first", maintain_order=True)
    if caps.per_noun is not None:
        frame = frame.filter(pl.int_range(pl.len()).over("noun_key") < caps.per_noun)
    frame = frame.sort(["count", *KEY_ORDER])
    if caps.per_count is not None:
        frame = frame.filter(pl.int_range(pl.len()).over("count") < caps.per_count)
    return frame


@pytest.mark.parametrize("key_range", [2**64, 40])  # 40: many equal keys of different rows
@pytest.mark.parametrize("caps", [Caps(), Caps(per_count=5), Caps(per_count=5, per_noun=3)])
def test_balance_and_prune_follow_the_sampling_order_with_duplicates_and_equal_keys(key_range, caps):
    import numpy as np

    rng = np.random.default_rng(0)
    n = 400
    ids = rng.integers(0, 300, n)  # repeated ids: exact duplicate (url, caption) pairs
    keys = [int(k) for k in rng.integers(0, key_range, 300, dtype=np.uint64)]
    frame = pl.DataFrame({
        "url": [f"u{i}" for i in ids], "caption": [f"c{i}" for i in ids], "count": (ids % 9 + 2).astype(np.int32),
        "noun": [f"n{i % 7}" for i in ids], "source_file": [f"f{j % 3}" for j in range(n)], "row": np.arange(n) // 3,
        "key": [keys[i] for i in ids], "noun_key": [f"n{i % 7}" for i in ids],
    }, schema=sample.SCHEMA)
    expected = _reference_balance(frame, caps)
    got, duplicates = sample.balance(frame, caps)
    assert got.equals(expected) and duplicates == n - frame.unique(["key", "url", "caption"]).height
    # Pruning parts first (as tasks do, on Arrow rows; as the driver does, in polars) changes nothing.
    parts = [select.prune_rows(frame.slice(start, 100).to_arrow().cast(ROWS_SCHEMA), caps)[0]
             for start in range(0, n, 100)]
    assert all(part.schema == ROWS_SCHEMA for part in parts)
    assert sample.balance(pl.concat(map(sample.to_frame, parts)), caps)[0].equals(expected)
    parts = [sample.prune(frame.slice(start, 100), caps)[0] for start in range(0, n, 100)]
    assert sample.balance(pl.concat(parts), caps)[0].equals(expected)
    # Equal keys in any order: ties go by (source_file, row).
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    in_order = shuffled.sort(["count", *KEY_ORDER])
    if caps.per_count is not None:
        in_order = in_order.filter(pl.int_range(pl.len()).over("count") < caps.per_count)
    assert shuffled[sample._first_per_count(shuffled, caps.per_count)].equals(in_order)


def test_worker_processes_do_not_import_polars(tmp_path):
    """Workers mine plain counts with Arrow and numpy only: polars' import (a quarter of a second
    in every process) is left to the driver."""
    import subprocess
    import sys

    path = write_parquet(tmp_path / "w.parquet", many_captions(200), row_group_size=50)
    code = ("import sys; from pathlib import Path; from countclip.mining import mine; "
            f"tasks, _ = mine.plan_tasks([Path({str(path)!r})], mine.Columns(), 100); "
            "result = mine.run_task(tasks[0], mine.MineConfig(caps=mine.Caps(per_count=3))); "
            "assert result.rows.num_rows == 27, result.rows.num_rows; print('polars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_last_tasks_are_split_per_row_group(tmp_path):
    """Splitting the last tasks keeps every row exactly once, numbered as in its file."""
    from countclip.mining.sources import Columns, plan_tasks

    a = write_parquet(tmp_path / "a.parquet", many_captions(230), row_group_size=50)  # groups of 50, last 30
    b = write_parquet(tmp_path / "b.parquet", many_captions(120), row_group_size=40)
    whole, _ = plan_tasks([a, b], Columns(), 100)
    split, _ = plan_tasks([a, b], Columns(), 100, split_last=3)
    assert [t.num_rows for t in whole] == [100, 100, 30, 120]
    assert [t.num_rows for t in split] == [100, 50, 50, 30, 40, 40, 40]
    for tasks in (whole, split):
        for path in (a, b):
            parts = [(t.first_row, t.num_rows, t.row_groups) for t in tasks if t.path == str(path)]
            assert parts[0][0] == 0 and all(f + n == g for (f, n, _), (g, _, _) in zip(parts, parts[1:]))
            assert [g for _, _, groups in parts for g in groups] == list(range(pq.ParquetFile(path).num_row_groups))
