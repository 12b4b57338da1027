"""`countclip counts eval-captions`: the count decision against hand-labelled real captions.

    countclip counts eval-captions                       # the table, both halves
    countclip counts eval-captions --json                # the same figures as JSON

The labelled set is `test/vectors/laion-count-labels.jsonl` (its labelling rules beside it in
`laion-count-labels.md`): one line per caption of `../shared/captions/laion-captions.jsonl`
with the SHA-256 of its text (never the text), the count of visible objects a reader found
stated in it (or null), its split (`dev`: the rules were tuned on it; `held-out`: not read in
the first round's tuning, though its totals were seen between steps, and its errors were read
in the second round's, so no longer held out; `held-out-2`: drawn and labelled afresh in the
second round, frozen before any rule of that round changed, scored once at its end, then read
in the third round's tuning; `held-out-3`: the third round's fresh draw, labelled by two readers
independently (a third for half of it), frozen after that round's rules were written and scored
once, then read in the fourth round's tuning; `held-out-4`: the fourth round's fresh draw, two
readers and an adjudicator, frozen while that round's rules were written, scored once at its end,
then read in the fifth round's tuning; `held-out-5`: the fifth round's fresh draw, the same way)
and the old core's answer (`old_core`, that of 9a7c84b, before issue
21's rules). The captions themselves are read from ../shared.

What is scored is the mining decision: a caption is selected when the core finds a count of
2..10 with a noun (what `countclip mine` keeps). Positives are captions labelled 2..10. A
selection is right when its count equals the label: precision = right / selected, recall =
right / positives. The naive filter selects a caption holding a number word or digits 2..10
as a word, with that first number as its count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import re
import sys
from collections.abc import Callable, Iterable
from typing import TypedDict

from countclip.counting import core

REPO = pathlib.Path(__file__).resolve().parents[3]  # the repository (this is training/countclip/counting/)
LABELS = REPO / "test" / "vectors" / "laion-count-labels.jsonl"
CAPTIONS = REPO.parent / "shared" / "captions" / "laion-captions.jsonl"
SPLITS = ("dev", "held-out", "held-out-2", "held-out-3", "held-out-4", "held-out-5")
MINED = range(2, 11)  # the counts `countclip mine` selects
NAIVE_RE = re.compile(r"(?i)\b(two|three|four|five|six|seven|eight|nine|ten|[2-9]|10)\b")


class Labelled(TypedDict):
    text: str
    label: int | None
    split: str
    stratum: str
    old_core: int | None


class Score(TypedDict):
    selected: int
    right: int
    positives: int
    precision: float
    recall: float


def load_labelled(labels: pathlib.Path = LABELS, captions: pathlib.Path = CAPTIONS) -> list[Labelled]:
    """The labelled captions with their texts, read from ../shared by hash."""
    by_hash = {}
    with captions.open(encoding="utf-8") as lines:
        for line in lines:
            text = json.loads(line)["text"]
            by_hash[hashlib.sha256(text.encode("utf-8")).hexdigest()] = text
    out: list[Labelled] = []
    with labels.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            text = by_hash.get(row["sha256"])
            if text is None:
                raise ValueError(f"{labels}: caption {row['sha256'][:12]} is not in {captions}")
            out.append({"text": text, "label": row["label"], "split": row["split"],
                        "stratum": row["stratum"], "old_core": row["old_core"]})
    return out


def naive_count(text: str) -> int | None:
    m = NAIVE_RE.search(text)
    if m is None:
        return None
    word = m.group(1).lower()
    return int(word) if word.isdigit() else core.WORD_VALUES[word]


def core_count(text: str) -> int | None:
    """The count `countclip mine` would select the caption with, or None."""
    m = core.find_count(text)
    return m.count if m is not None and m.noun is not None and m.count in MINED else None


def score(pairs: Iterable[tuple[int | None, int | None]]) -> Score:
    """Precision and recall of (predicted, label) pairs; only counts 2..10 are positives."""
    selected = right = positives = 0
    for predicted, label in pairs:
        positive = label is not None and label in MINED
        positives += positive
        if predicted is not None:
            selected += 1
            right += predicted == label
    return {"selected": selected, "right": right, "positives": positives,
            "precision": right / selected if selected else 0.0,
            "recall": right / positives if positives else 0.0}


def evaluate(rows: list[Labelled]) -> dict[str, dict[str, Score]]:
    """{decider: {split: Score}} for the naive filter, the old core (recorded) and the core."""
    deciders: dict[str, Callable[[Labelled], int | None]] = {
        "naive filter": lambda row: naive_count(row["text"]),
        "old core (9a7c84b)": lambda row: row["old_core"],
        "core": lambda row: core_count(row["text"]),
    }
    return {name: {split: score((decide(row), row["label"]) for row in rows if row["split"] == split)
                   for split in SPLITS}
            for name, decide in deciders.items()}


def table(results: dict[str, dict[str, Score]]) -> str:
    lines = ["| decider | half | selected | right | positives | precision | recall |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, by_split in results.items():
        for split, s in by_split.items():
            lines.append(f"| {name} | {split} | {s['selected']} | {s['right']} | {s['positives']} "
                         f"| {100 * s['precision']:.1f}% | {100 * s['recall']:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="countclip counts eval-captions", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=pathlib.Path, default=LABELS)
    parser.add_argument("--captions", type=pathlib.Path, default=CAPTIONS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.captions.exists():
        print(f"countclip counts eval-captions: {args.captions} not found (the captions are read from ../shared)",
              file=sys.stderr)
        return 2
    results = evaluate(load_labelled(args.labels, args.captions))
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
