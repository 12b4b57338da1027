"""The pre-filter must never drop a caption the count core would select (2..10)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from countclip.counting.core import find_count
from countclip.mining.prefilter import Prefilter, clean_captions

SHARED_CAPTIONS = Path(__file__).resolve().parents[2].parent / "shared" / "captions" / "laion-captions.jsonl"

EDGE_CASES = [
    "two dogs on a sofa", "TWO DOGS", "Two-headed eagles", "a couple of cats", "A Pair Of Birds",
    "half a dozen eggs", "10 apples in a bowl", "(3) cats", "3cats", "café two cats", "deux chats, two cats",
    "two\tcats", "two_cats", "2 x 4 lumber", "1,2 cups", "the 2nd floor", "9 lives", "10 10 10",
    "ten: the number of bottles", "twoo dogs", "étwo dogs", "two\u00e9 dogs", "中two dogs", "two中 dogs",
    "a couple  of ducks", "a\tpair of  shoes", "７ cats", "٣ cats", "02 cats", "010 cats", "Seven Samurai",
    "Nine inch nails", "eight-legged spiders", "three-quarters", "four_five cats",
]


def selected(text: str) -> bool:
    match = find_count(text)
    return match is not None and 2 <= match.count <= 10


def test_superset_on_edge_cases():
    mask = Prefilter().mask(pa.array(EDGE_CASES)).to_pylist()
    missed = [t for t, kept in zip(EDGE_CASES, mask) if selected(t) and not kept]
    assert not missed, f"pre-filter drops captions the count core selects: {missed}"


def test_superset_on_real_laion_captions():
    if not SHARED_CAPTIONS.is_file():
        pytest.skip(f"real captions not found at {SHARED_CAPTIONS}")
    texts = [json.loads(line)["text"] for line in SHARED_CAPTIONS.read_text(encoding="utf-8").splitlines() if line]
    mask = Prefilter().mask(pa.array(texts)).to_pylist()
    missed = [t for t, kept in zip(texts, mask) if not kept and selected(t)]
    assert not missed, f"{len(missed)} selectable captions dropped, e.g. {missed[:5]}"
    # ... and it must be worth having: most captions never reach the core.
    assert sum(mask) / len(mask) < 0.4


def test_rejects_captions_without_any_way_to_say_2_to_10():
    texts = ["a beach at sunset", "2014 calendar", "model 250", "one dog", "twenty cats", "tent in the woods",
             "network diagram", "often seen", "x2 speed", "4k wallpaper", "20 cats", None]
    assert Prefilter().mask(pa.array(texts)).to_pylist() == [False] * len(texts)


def test_accepts_words_and_digits_in_range():
    texts = ["Two cats", "three", "... 4 dogs", "ten.", "10 cats", "a pair of shoes", "a couple of geese"]
    assert all(Prefilter().mask(pa.array(texts)).to_pylist())


def test_clean_captions_counts_nulls_and_invalid_utf8_in_binary_columns():
    raw = pa.array([b"two dogs", b"\xff\xfe broken", None, "caf\u00e9".encode()], pa.binary())
    captions, n_null, n_invalid = clean_captions(raw)
    assert captions.to_pylist() == ["two dogs", None, None, "caf\u00e9"]
    assert (n_null, n_invalid) == (1, 1)


def test_clean_captions_catches_invalid_bytes_inside_a_string_column():
    # Some parquet writers do not validate UTF-8; Arrow then holds a string array with bad bytes.
    bad = pa.array([b"three cats", b"\xc3\x28 oops"], pa.binary()).view(pa.string())
    captions, n_null, n_invalid = clean_captions(bad)
    assert captions.to_pylist() == ["three cats", None]
    assert (n_null, n_invalid) == (0, 1)


def test_clean_captions_rejects_non_text_columns():
    with pytest.raises(TypeError, match="int64"):
        clean_captions(pa.array([1, 2, 3]))
