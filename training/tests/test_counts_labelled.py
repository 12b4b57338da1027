"""The hand-labelled LAION captions (test/vectors/laion-count-labels.jsonl, issue 21).

The file holds only hashes and labels; the captions are read from `<repo>/../shared` and the
tests that need them skip without it. Checked here: the file's shape, that its precision and
recall do not fall back below what the issue-21 rules reach, and that the three count cores
(Python, C, TypeScript) give the same answer on every labelled caption.
"""

from __future__ import annotations

import collections
import json

import pytest

from countclip.counting import core as counts
from countclip.counting import eval_captions, fastcount
from test_counts_parity import assert_same_output, caption_lines, needs_ts

ROWS = [json.loads(line) for line in eval_captions.LABELS.read_text("utf-8").splitlines()]
needs_captions = pytest.mark.skipif(not eval_captions.CAPTIONS.exists(),
                                    reason=f"{eval_captions.CAPTIONS} absent (captions are read from ../shared)")


def test_the_file_holds_hashes_labels_and_halves_only():
    assert len(ROWS) >= 1600
    assert len({row["sha256"] for row in ROWS}) == len(ROWS)
    # the first round's halves, dealt at random; the second and third rounds' fresh held-out draws
    assert collections.Counter(row["split"] for row in ROWS) == {
        "dev": 500, "held-out": 500, "held-out-2": 600, "held-out-3": 600, "held-out-4": 600, "held-out-5": 600}
    for fresh in ("held-out-2", "held-out-3", "held-out-4", "held-out-5"):
        assert collections.Counter(row["stratum"] for row in ROWS if row["split"] == fresh) == {
            "flagged": 420, "other-numeral": 120, "rest": 60}
    for row in ROWS:
        assert set(row) == {"sha256", "label", "split", "stratum", "old_core"}
        assert len(row["sha256"]) == 64 and int(row["sha256"], 16) >= 0
        assert row["label"] is None or (isinstance(row["label"], int) and row["label"] >= 1)
        assert row["old_core"] is None or 2 <= row["old_core"] <= 10
        assert row["stratum"] in {"flagged", "other-numeral", "rest"}


def test_score_counts_only_2_to_10_as_positives():
    s = eval_captions.score([(3, 3), (2, None), (None, 4), (None, 12), (None, None), (5, 6)])
    assert (s["selected"], s["right"], s["positives"]) == (3, 1, 3)


@pytest.fixture(scope="module")
def labelled() -> list[eval_captions.Labelled]:
    if not eval_captions.CAPTIONS.exists():
        pytest.skip(f"{eval_captions.CAPTIONS} absent")
    return eval_captions.load_labelled()


@needs_captions
def test_every_hash_is_a_shared_caption(labelled):
    assert len(labelled) == len(ROWS)


@needs_captions
def test_precision_and_recall_stay_where_issue_21_left_them(labelled):
    # Floors at the figures measured when the rules were written (README of countclip/mining):
    # a rule change that loses them fails here. held-out-2 was scored once, after the second
    # round's rules were written, and held-out-3 once, after the third's (77.3 % / 77.3 %);
    # the fourth round read the errors of all four splits, so all four are tuning data now,
    # and these floors guard against regressions only (the issue's targets are judged on a
    # fresh set that is not in this file).
    results = eval_captions.evaluate(labelled)
    core, old = results["core"], results["old core (9a7c84b)"]
    assert core["dev"]["precision"] >= 0.965 and core["dev"]["recall"] >= 0.905, core["dev"]
    assert core["held-out"]["precision"] >= 0.92 and core["held-out"]["recall"] >= 0.80, core["held-out"]
    assert core["held-out-2"]["precision"] >= 0.925 and core["held-out-2"]["recall"] >= 0.855, core["held-out-2"]
    assert core["held-out-3"]["precision"] >= 0.835 and core["held-out-3"]["recall"] >= 0.825, core["held-out-3"]
    # held-out-4 was scored once, after round 4 (84.0 % / 79.5 %): a floor, not a target
    assert core["held-out-4"]["precision"] >= 0.835 and core["held-out-4"]["recall"] >= 0.79, core["held-out-4"]
    for half in eval_captions.SPLITS:
        assert core[half]["precision"] > old[half]["precision"] + 0.15


@needs_captions
def test_the_c_core_agrees_on_every_labelled_caption(labelled):
    fast, why = fastcount.load()
    if fast is None:
        pytest.skip(f"C count core not in use: {why}")
    texts = [row["text"] for row in labelled]
    values, nouns = fast.count_many(texts)
    for text, value, noun in zip(texts, values, nouns):
        m = counts.find_count(text)
        assert (int(value), noun) == ((m.count, m.noun) if m else (0, None)), text


@needs_ts
@needs_captions
def test_the_typescript_core_agrees_on_every_labelled_caption(labelled):
    assert_same_output("parse", caption_lines([row["text"] for row in labelled]))
    assert_same_output("explain", caption_lines([row["text"] for row in labelled]))
