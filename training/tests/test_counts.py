"""The count core against the shared specification (test/vectors/counts.json) and its API."""

from __future__ import annotations

import json
import pathlib
import random
import subprocess
import sys

import pytest

from countclip.counting import core as counts
from countclip.counting.core import CountMatch, count_variants, find_count, make_counterfactual, number_word, parse_query, replace_count

REPO = pathlib.Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "test" / "vectors" / "counts.json").read_text("utf-8"))


def as_dict(m: CountMatch | None) -> dict | None:
    return None if m is None else {"count": m.count, "start": m.start, "end": m.end, "noun": m.noun}


def test_vectors_are_many_and_up_to_date():
    assert len(VECTORS["find_count"]) >= 1000
    tags = {case.get("tag") for case in VECTORS["find_count"]}
    assert {"age", "time", "duration", "measure", "money", "rank or title", "year or date", "score",
            "fraction", "multiplier", "one of", "several counts", "boundaries"} <= tags
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "generators" / "gen_count_vectors.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("case", VECTORS["find_count"], ids=lambda c: c["text"][:40])
def test_find_count_vectors(case):
    assert as_dict(find_count(case["text"])) == case["expect"]


@pytest.mark.parametrize("case", VECTORS["replace_count"], ids=lambda c: f'{c["text"]}->{c["n"]}')
def test_replace_count_vectors(case):
    assert replace_count(case["text"], tuple(case["span"]), case["n"]) == case["expect"]


@pytest.mark.parametrize("case", VECTORS["count_variants"], ids=lambda c: c["text"][:40])
def test_count_variants_vectors(case):
    got = count_variants(case["text"], case["number"])
    assert got == case["expect"]
    assert len(got) == 9 and case["text"] in got


@pytest.mark.parametrize("case", VECTORS["parse_query"], ids=lambda c: c["text"][:40])
def test_parse_query_vectors(case):
    assert parse_query(case["text"]) == case["expect"]


def test_number_word_vectors():
    for case in VECTORS["number_word"]:
        assert number_word(case["n"]) == case["expect"]


@pytest.mark.parametrize("case", VECTORS["errors"], ids=lambda c: c["fn"])
def test_error_vectors(case):
    with pytest.raises(ValueError):
        if case["fn"] == "replace_count":
            replace_count(case["text"], tuple(case["span"]), case["n"])
        elif case["fn"] == "count_variants":
            count_variants(case["text"], case["number"])
        else:
            number_word(case["n"])


def test_count_match_is_frozen():
    m = find_count("three cats")
    assert m == CountMatch(3, 0, 5, "cats")
    with pytest.raises(Exception):
        m.count = 4  # type: ignore[misc]


def test_make_counterfactual_changes_every_count_and_keeps_form():
    rng = random.Random(0)
    seen = set()
    for _ in range(50):
        caption, true, new = make_counterfactual("Three little pigs - cute pig - three pigs", rng)
        assert true == 3 and new != 3 and 2 <= new <= 10
        word = number_word(new)
        assert caption == f"{word.capitalize()} little pigs - cute pig - {word} pigs"
        seen.add(new)
    assert seen == set(range(2, 11)) - {3}
    caption, true, new = make_counterfactual("Set of 4 mugs", random.Random(1))
    assert true == 4 and caption == f"Set of {new} mugs"


def test_make_counterfactual_one_becomes_plural_and_none_without_count():
    caption, true, new = make_counterfactual("one red apple on a table", random.Random(2))
    assert true == 1 and caption == f"{number_word(new)} red apples on a table"
    assert make_counterfactual("two cats and three dogs", random.Random(0)) is None
    assert make_counterfactual("a cat", random.Random(0)) is None


def test_bad_input_never_crashes():
    texts = ["", "\ud800 three cats \udfff", "😀" * 1000 + " two dogs", "٣ cats", "² cats", "three " * 20000,
             "x" * 100_000 + " two cats", "\x00\x01 two\x7f cats", "שתי two חתולות", "Ⅻ cats"]
    for text in texts:
        find_count(text)
        parse_query(text)
        counts.explain(text)
    assert find_count("x" * 100_000 + " two cats") == CountMatch(2, 100_001, 100_004, "cats")
    assert find_count("\ud800 three cats")  == CountMatch(3, 2, 7, "cats")
    assert find_count("٣ cats") is None and find_count("² cats") is None


def test_explain_names_the_reason():
    decisions = counts.explain("a 5-year-old boy with two dogs and $5")
    assert [(d["text"], d["reason"] is None) for d in decisions] == [("5", False), ("two", True), ("5", False)]
    assert decisions[0]["reason"] == "age"
    assert decisions[1]["noun"] == "dogs"


def test_singularize_and_pluralize():
    pairs = [("cats", "cat"), ("light bulbs", "light bulb"), ("children", "child"), ("puppies", "puppy"),
             ("boxes", "box"), ("glasses", "glass"), ("knives", "knife"), ("sheep", "sheep"),
             ("movies", "movie"), ("Buses", "Bus"), ("TOMATOES", "TOMATO")]
    for plural, singular in pairs:
        assert counts.singularize(plural) == singular
        assert counts.pluralize(singular) == plural
