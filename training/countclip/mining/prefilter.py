"""Vectorised pre-filter: drop, in bulk, captions that cannot hold a count of 2..10.

The Python count core (`countclip.counting.core.find_count`) is exact but costs microseconds per
caption; web-scale metadata has billions of rows. This filter runs one RE2 regular
expression over a whole Arrow batch (C++, no Python per row) and passes on only the
captions that mention a number word or a standalone number 2..10 in digits (alone, or with a
pack word glued to it: "10pcs").

Beside the count core's C port, the same pattern is decided in C, in one pass with the core
(`Prefilter.plain_words`, `countclip.counting.fastcount.FastCounter.filter_and_count`), with the same
answers (tested against RE2 in `tests/test_fastcount.py`).

It is a *superset* filter by construction: it never decides that a number is an age, a
time or a unit (that stays in the count core, in one place); it only removes captions
with no way of expressing 2..10 at all. `training/tests/test_mine_prefilter.py` checks
the superset property against the count core on the real LAION captions.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

MIN_COUNT, MAX_COUNT = 2, 10

# Used only if the count core stops publishing its lexicon: every English way of saying
# 2..10 we know of, matched loosely. The core's own tables (below) are preferred.
_FALLBACK_WORDS = (
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "pair", "pairs", "couple", "couples", "twin", "twins", "both", "double", "triple", "trio", "duo",
    "quartet", "quintet", "sextet", "octet", "dozen", "half",
)

# A standalone run of ASCII digits worth 2..10. The core only reads ASCII digits that no
# letter, digit or underscore touches, and its "word characters" include all of RE2's ASCII
# \b word characters (and more), so an ASCII \b on each side can only match *more*.
_DIGITS = r"0*(?:[2-9]|10)"


def _digits() -> str:
    """_DIGITS, and a pack word the core reads glued to them ("10pcs", `GLUED_PACK_WORDS`)."""
    try:
        from countclip.counting import core
    except ImportError:
        return _DIGITS
    glued = getattr(core, "GLUED_PACK_WORDS", ())
    if not glued or not all(isinstance(w, str) and w.isascii() and w.isalpha() and w.islower() for w in glued):
        return _DIGITS
    return f"{_DIGITS}(?:{'|'.join(sorted(glued, key=len, reverse=True))})?"


def _core_words() -> tuple[str, ...]:
    """Words of the count core's lexicon that can produce a count in 2..10.

    Single numerals come from `WORD_VALUES`; for an idiom ("a couple of", "half a dozen") its
    longest word is enough, as no idiom can match without that word, whole, inside it.
    Returns () if the core does not publish these tables.
    """
    try:
        from countclip.counting import core
    except ImportError:
        return ()
    values = getattr(core, "WORD_VALUES", None)
    idioms = getattr(core, "IDIOM_VALUES", None)
    if not isinstance(values, dict) or not isinstance(idioms, dict):
        return ()
    words = [w for w, v in values.items() if isinstance(v, int) and MIN_COUNT <= v <= MAX_COUNT]
    words += [max(phrase.split(), key=len) for phrase, v in idioms.items()
              if isinstance(v, int) and MIN_COUNT <= v <= MAX_COUNT]
    return tuple(words)


def candidate_words(extra_words: tuple[str, ...] = ()) -> list[str]:
    """The words the pattern matches, lowercase, longest first (the alternation's order)."""
    words = _core_words() or _FALLBACK_WORDS
    return sorted({w.lower() for w in (*words, *extra_words) if w.strip()}, key=lambda w: (-len(w), w))


def candidate_pattern(extra_words: tuple[str, ...] = ()) -> str:
    """The RE2 pattern (applied case-insensitively) that marks a caption as a candidate."""
    return _pattern(candidate_words(extra_words))


def _pattern(words: list[str]) -> str:
    alternation = "|".join(_escape(w) for w in words)
    # RE2's \b is ASCII-only: an accented letter next to "two" counts as a boundary here but
    # not in the core, so this side is the looser one, as a superset filter must be.
    return rf"\b(?:{alternation}|{_digits()})\b"


def _escape(word: str) -> str:
    return "".join(ch if ch.isalnum() else "[ \t]+" if ch == " " else "\\" + ch for ch in word)


class Prefilter:
    """`mask(captions)` -> BooleanArray of the captions worth a count-core call."""

    def __init__(self, extra_words: tuple[str, ...] = ()):
        words = candidate_words(extra_words)
        self.pattern = _pattern(words)
        # What the C pre-filter (`countclip.counting._fastcount`) decides exactly as RE2 does: words of
        # lowercase ASCII letters only (which _escape leaves as they are).
        plain = all(w.isascii() and w.isalpha() and w.islower() for w in words)
        self._plain_words = words if plain else None

    def plain_words(self) -> list[str] | None:
        """The pattern's words when the C pre-filter can decide it, else None (RE2 then runs)."""
        return self._plain_words

    def mask(self, captions: pa.Array) -> pa.BooleanArray:
        """True where the caption may hold a count 2..10. Null captions are False."""
        matched = pc.match_substring_regex(captions, self.pattern, ignore_case=True)
        return pc.fill_null(matched, False)

    def candidate_indices(self, captions: pa.Array) -> pa.Array:
        # indices_nonzero skips nulls: no fill_null, whose Python scalar would make pyarrow
        # import pandas (a third of a second in every worker process).
        return pc.indices_nonzero(pc.match_substring_regex(captions, self.pattern, ignore_case=True))


def clean_captions(values: pa.Array, what: str = "caption") -> tuple[pa.Array, int, int]:
    """Captions as a valid UTF-8 string array; returns (captions, n_null, n_invalid_utf8).

    Parquet string columns can hold bytes that are not UTF-8 (writers do not all validate),
    and binary columns hold raw bytes. Invalid captions become nulls and are counted, so a
    bad row is skipped and reported, never decoded into mojibake.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n_null_in = values.null_count
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        try:
            values.validate(full=True)
            return values, n_null_in, 0
        except pa.ArrowInvalid:
            values = values.cast(pa.large_binary() if pa.types.is_large_string(values.type) else pa.binary())
    if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
        raise TypeError(f"{what} column has type {values.type}, expected a string or binary column")
    try:
        return values.cast(pa.string()), n_null_in, 0
    except pa.ArrowInvalid:
        return _decode_rowwise(values, n_null_in)


def _decode_rowwise(values: pa.Array, n_null_in: int) -> tuple[pa.Array, int, int]:
    # Slow path, only for the rare batch that holds invalid bytes.
    decoded: list[str | None] = []
    invalid = 0
    for raw in values.to_pylist():
        if raw is None:
            decoded.append(None)
            continue
        try:
            decoded.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            decoded.append(None)
            invalid += 1
    return pa.array(decoded, type=pa.string()), n_null_in, invalid
