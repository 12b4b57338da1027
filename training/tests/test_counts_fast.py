"""The count core's shortcuts decide exactly as the plain rules would.

`find_count` is fast because of two shortcuts: NUMERAL_RE scans a lowercased copy of the
text (see `_scan_text`), and `_quiet` lets `_classify` skip the exclusion rules when none of
them can fire. Both are checked here against the plain definitions on the shared vectors,
on random lines built from the rules' own vocabulary, and on real captions when present.
"""

from __future__ import annotations

import json
import pathlib
import random
import re

import pytest

from countclip.counting import core as counts
from countclip.counting import lexicon

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
COUNTBENCH = SHARED / "countbench" / "CountBench.json"
LAION = SHARED / "captions" / "laion-captions.jsonl"


def _any_case_trie(phrases: list[str]) -> str:
    """The trie as TypeScript builds it: `[Tt](?:[Ww][Oo]|...)`, matched in the text as written."""
    branches: dict[str, list[str]] = {}
    for phrase in phrases:
        branches.setdefault(phrase[0], []).append(phrase[1:])
    parts = []
    for first, rests in branches.items():
        char = "[ \\t\u00a0]+" if first == " " else f"[{first.upper()}{first}]"
        longer = [rest for rest in rests if rest]
        if not longer:
            parts.append(char)
            continue
        parts.append(f"{char}(?:{_any_case_trie(longer)}){'?' if '' in rests else ''}")
    return "|".join(parts)


W = lexicon.WORD_CHARS
# The specification's pattern (TypeScript's NUMERAL_RE plus AFTER_RE), on the text as written.
# Digits also end where a glued pack word starts ("10pcs").
SPEC_RE = re.compile(rf"(?<![{W}])(?:(?:{_any_case_trie(counts.NUMERAL_PHRASES)}|[0-9]+)(?![{W}])"
                     rf"|[0-9]+(?=(?:{_any_case_trie(list(counts.GLUED_PACK_WORDS))})(?![{W}])))(?={counts._AFTER})")


def _vocabulary() -> list[str]:
    lex = lexicon
    words = set(lex.WORD_VALUES) | set(lex.BIG_WORDS) | {phrase for phrase, _ in lex.IDIOMS}
    for table in (lex.DURATION_WORDS, lex.TIME_WORDS, lex.UNIT_WORDS, lex.MONEY_WORDS, lex.FRACTION_WORDS,
                  lex.MULTIPLIER_WORDS, lex.CONNECTOR_WORDS, lex.MONTH_WORDS, lex.RANK_WORDS, lex.APPROX_WORDS,
                  lex.SUPERLATIVE_WORDS, lex.AGE_WORDS, lex.MULTIPLIER_PREFIX_WORDS, lex.INTRODUCER_WORDS,
                  lex.ONE_PRONOUN_PREFIX, lex.ONE_NOT_COUNT_NEXT, lex.STOP_WORDS, lex.MODIFIER_NOUNS,
                  lex.ADJECTIVES, lex.PAIR_NOUNS, lex.NOT_PLURAL, lex.IRREGULAR_PLURALS):
        words |= set(table)
    return sorted(words) + [
        "Two", "THREE", "Seven", "One", "ONE", "A Pair Of", "twenty-one", "5", "12", "1", "01", "100", "1999",
        "6-4", "5:30", "1.5", "3,000", "$", "#", "%", "°", "x", "×", "-", "–", ",", ".", ";", "'", "’", '"', "(",
        ")", "out of", "up to", "and a half", "cats", "Cats", "CATS", "light bulbs", "iPhone", "Ocean's", "Liam,",
        "é", "ſix", "\u212aM", "İ", "\u00a0", "\t", "😀", "٣", "cat's", "1st", "4C",
    ]


def fuzz_lines(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    pieces = _vocabulary()
    glues = [" ", " ", " ", "", "-", ", ", ". ", "\t", "\u00a0", "'s ", ": ", "/"]
    lines = []
    for _ in range(n):
        parts = [rng.choice(pieces) for _ in range(rng.randint(0, 12))]
        line = "".join(part + rng.choice(glues) for part in parts)
        lines.append(line.title() if rng.random() < 0.15 else line.upper() if rng.random() < 0.15 else line)
    return lines


def _texts() -> list[str]:
    vectors = json.loads((REPO / "test" / "vectors" / "counts.json").read_text("utf-8"))
    texts = [case["text"] for section in ("find_count", "replace_count", "count_variants", "parse_query")
             for case in vectors[section]]
    texts += fuzz_lines(seed=11, n=20000)
    if COUNTBENCH.exists():
        texts += [entry["text"] for entry in json.loads(COUNTBENCH.read_text("utf-8"))]
    if LAION.exists():
        with LAION.open(encoding="utf-8") as lines:
            texts += [json.loads(line)["text"] for line in lines]
    return texts


TEXTS = _texts()


def test_scan_finds_what_the_specification_pattern_finds():
    for text in TEXTS:
        want = [(m.start(), m.end(), m.group("hyphen") is not None, m.group("words") or "")
                for m in SPEC_RE.finditer(text)]
        got = [(num.start, num.end, num.hyphen, num.words) for num in counts._numerals(text)]
        assert got == want, text
        for num in counts._numerals(text):
            assert num.lower == num.words.lower()


@pytest.mark.parametrize("text", ["", "a", "two", " two", "İtwo cats", "ſix cats", "\u212a two", "TWO-THIRDS"])
def test_scan_edges(text):
    want = [(m.start(), m.end()) for m in SPEC_RE.finditer(text)]
    assert [(num.start, num.end) for num in counts._numerals(text)] == want


def test_no_rule_fires_on_a_quiet_context():
    quiet = 0
    for text in TEXTS:
        for num in counts._numerals(text):
            ctx = counts._context(text, num)
            if counts._quiet(num, ctx):
                quiet += 1
                fired = [rule.__name__ for rule in counts.CONTEXT_RULES if rule(num, ctx)]
                assert not fired, (text, num, fired)
    assert quiet > 1000  # the shortcut is taken, so the check means something
