"""`find_count`'s (value, noun) in C, for mining: the same answers, about 20x faster.

`_fastcount.c` ports the decision `countclip.counting.core.find_count` makes (which
numerals count, what they count, whether they agree) and takes every vocabulary from the
count core at `load()`, so the tables have one source. It is built by `make native`
(`python -m countclip.counting.build c`: gcc and the Python headers) and is optional: without
a build, or when the build is stale, miners use the Python core, with the same results.

The rules are code in two places, so `load()` uses the C module only when

- `core.py` is the file the port mirrors (`MIRRORED_COUNTS_SHA256`): an edited rule must
  be ported, then this hash updated (`tests/test_fastcount.py` fails until both are done);
- the compiled module was built from the current `_fastcount.c` (its SHA-256 is compiled in);
- COUNTCLIP_PURE_PYTHON is unset, empty or "0".

`tests/test_fastcount.py` checks parity with `find_count` on the real LAION and CountBench
captions, the shared test vectors and fuzzed captions.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import os
import re
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE = PACKAGE_DIR / "_fastcount.c"
# SHA-256 of the core.py whose rules _fastcount.c ports. Update it only after porting.
MIRRORED_COUNTS_SHA256 = "e6647a8b8e5658db1e41ba4754daa49339603a70f194e28b87fe3b56daee1494"
PURE_ENV = "COUNTCLIP_PURE_PYTHON"
C_MODULE = "countclip.counting._fastcount"  # built from SOURCE by build.py


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FastCounter:
    """find_count's value per caption (0: None) as int8, and its noun (None without a count or
    a noun): `count_many` (a list of str), `count_arrow` (an Arrow string array), and
    `filter_and_count` (the mining pre-filter first); plus `sampling_keys`."""

    def __init__(self, module: ModuleType):
        self._module = module
        self._prefilter_words: list[str] | None = None

    def sampling_keys(self, key: bytes, identities: pa.Array, captions: pa.Array) -> np.ndarray:
        """blake2b(identity + b"\\0" + caption, digest_size=8, key=key) per row, as uint64 read
        little-endian (`countclip.mining.select.row_key`), from two Arrow string arrays
        (identities without nulls) read in place."""
        keys = self._module.sampling_keys(key, arrow_parts(identities), arrow_parts(captions))
        return np.frombuffer(keys, dtype="<u8")

    def filter_and_count(self, captions: pa.Array, prefilter_words: list[str]) -> tuple[np.ndarray, np.ndarray,
                                                                                       list[str | None]]:
        """One pass over an Arrow string array: the captions that pass the mining pre-filter (the
        RE2 pattern `\\b(?:word|...|0*(?:[2-9]|10))\\b`, case-insensitive, of
        `countclip.mining.prefilter`, decided as RE2 decides it), and `count_arrow` on those.
        Returns (their positions, int8 values, nouns)."""
        if prefilter_words != self._prefilter_words:
            self._module.configure_prefilter(list(prefilter_words))
            self._prefilter_words = list(prefilter_words)
        positions, values, nouns = self._module.filter_count_utf8(arrow_parts(captions))
        return np.frombuffer(positions, dtype=np.int64), np.frombuffer(values, dtype=np.int8), nouns

    def count_arrow(self, captions: pa.Array) -> tuple[np.ndarray, list[str | None]]:
        """`count_many` on an Arrow string array, read in place (no Python str per caption)."""
        values, nouns = self._module.count_utf8(arrow_parts(captions))
        return np.frombuffer(values, dtype=np.int8), nouns

    def string_array(self, strings: list[str | None]) -> pa.Array:
        """Python strings (or None) as an Arrow large_string array."""
        offsets, data, validity = self._module.utf8_strings(strings)
        buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(data)]
        return pa.Array.from_buffers(pa.large_string(), len(strings), buffers)

    def count_many(self, captions: list[str]) -> tuple[np.ndarray, list[str | None]]:
        values, nouns = self._module.count_many(captions)
        return np.frombuffer(values, dtype=np.int8), nouns


def arrow_parts(strings: pa.Array) -> tuple:
    """An Arrow string array as the C module reads it: (data, offsets, wide offsets, offset,
    length, validity), the buffers themselves, not copies."""
    if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
        raise TypeError(f"expected an Arrow string array, got {strings.type}")
    validity, offsets, data = strings.buffers()
    return (data if data is not None else b"", offsets, pa.types.is_large_string(strings.type), strings.offset,
            len(strings), validity)


_LOADED: dict[str, object] = {}


def load() -> tuple[FastCounter | None, str]:
    """(the C counter, "c") or (None, why not). Memoised per process."""
    if "result" not in _LOADED:
        _LOADED["result"] = _load()
    return _LOADED["result"]  # type: ignore[return-value]


def _load() -> tuple[FastCounter | None, str]:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return None, f"{PURE_ENV} is set"
    try:
        module = importlib.import_module(C_MODULE)
    except ImportError:
        return None, "not built (make native)"
    if getattr(module, "SOURCE_SHA256", None) != sha256(SOURCE):
        warnings.warn(f"{C_MODULE} was built from another _fastcount.c; using the Python count core "
                      "(rebuild: make native)", RuntimeWarning, stacklevel=3)
        return None, "stale build"
    counts_file = PACKAGE_DIR / "core.py"
    if sha256(counts_file) != MIRRORED_COUNTS_SHA256:
        warnings.warn("countclip/counting/core.py changed since _fastcount.c ported it; using the Python count core "
                      "(port the change, then update fastcount.MIRRORED_COUNTS_SHA256)", RuntimeWarning, stacklevel=3)
        return None, "core.py changed since the port"
    try:
        configure(module)
    except (KeyError, TypeError, ValueError, OverflowError) as error:  # a lexicon of a new shape
        warnings.warn(f"{C_MODULE} cannot take the count core's lexicon ({error}); using the Python "
                      "count core", RuntimeWarning, stacklevel=3)
        return None, f"lexicon not accepted: {error}"
    return FastCounter(module), "c"


def configure(module: ModuleType) -> None:
    """Hand the count core's vocabularies to the C module (names as in core.py)."""
    from countclip.counting import core as counts

    lexicon_numerals = frozenset(counts.WORD_VALUES) | frozenset(counts.BIG_WORDS)
    sets = {
        "lexicon_numerals": lexicon_numerals,
        "noun_phrase_enders": counts.NOUN_PHRASE_ENDERS,
        "next_word_reasons": frozenset(counts.NEXT_WORD_REASONS),
        "prev_word_reasons": frozenset(counts.PREV_WORD_REASONS),
        "month_words": counts.MONTH_WORDS,
        "superlative_words": counts.SUPERLATIVE_WORDS,
        "one_not_count_next": counts.ONE_NOT_COUNT_NEXT,
        "connector_words": counts.CONNECTOR_WORDS,
        "tens_words": counts.TENS_WORDS,
        "one_pronoun_prefix": counts.ONE_PRONOUN_PREFIX,
        "introducer_words": counts.INTRODUCER_WORDS,
        "partitive_determiners": counts.PARTITIVE_DETERMINERS,
        "modifier_nouns": counts.MODIFIER_NOUNS,
        "adjectives": counts.ADJECTIVES,
        "ing_ed_nouns": counts.ING_ED_NOUNS,
        "noun_adjectives": counts.NOUN_ADJECTIVES,
        "pair_nouns": counts.PAIR_NOUNS,
        "not_plural": counts.NOT_PLURAL,
        "irregular_plurals": frozenset(counts.IRREGULAR_PLURALS),
        "next_triggers": counts._NEXT_TRIGGERS,
        "prev_triggers": counts._PREV_TRIGGERS,
        "range_starts": counts._RANGE_STARTS,
        "range_ends": counts._RANGE_ENDS,
        "abstract_nouns": counts.ABSTRACT_NOUNS,
        "event_words": counts.EVENT_WORDS,
        "pack_words": counts.PACK_WORDS,
        "participle_stops": counts.PARTICIPLE_STOPS,
        "purpose_words": counts.PURPOSE_WORDS,
        "author_words": counts.AUTHOR_WORDS,
        "listicle_next_words": counts.LISTICLE_NEXT_WORDS,
        "picture_words": counts.PICTURE_WORDS,
        "variant_nouns": counts.VARIANT_NOUNS,
        "set_words": counts.SET_WORDS,
        "title_prepositions": counts.TITLE_PREPOSITIONS,
        "capacity_nouns": counts.CAPACITY_NOUNS,
        "glued_pack_words": frozenset(counts.GLUED_PACK_WORDS),
        "sequence_adjectives": counts.SEQUENCE_ADJECTIVES,
        "per_pack_words": counts.PER_PACK_WORDS,
        "build_plurals": counts.BUILD_PLURALS,
        "finite_words": counts.FINITE_WORDS,
        "presenting_words": counts.PRESENTING_WORDS,
        "person_singulars": counts.PERSON_SINGULARS,
        "determiners": counts.DETERMINERS,
    }
    phrases: list[tuple[str, int | None, bool]] = [(phrase, value, " " in phrase) for phrase, value in counts.IDIOMS]
    phrases += [(word, value, False) for word, value in counts.WORD_VALUES.items()]
    phrases += [(word, None, False) for word in counts.BIG_WORDS]
    chars = {
        "punct": counts.PUNCT, "sentence_end": counts.SENTENCE_END, "joiners": counts.JOINERS,
        "prefix_symbols": counts.PREFIX_SYMBOLS, "after_symbols": "".join(sorted(counts.AFTER_SYMBOLS)),
        "after_triggers": "".join(sorted(counts._AFTER_TRIGGERS)),
        "before_triggers": "".join(sorted(counts._BEFORE_TRIGGERS)),
        "prev_end_triggers": "".join(sorted(counts._PREV_END_TRIGGERS)),
        "prev_word_separators": counts.PREV_WORD_SEPARATORS, "set_separators": counts.SET_SEPARATORS,
    }
    module.configure(sets=sets, phrases=phrases, chars=chars, word_ranges=word_ranges(counts.WORD_CHARS),
                     adjective_suffixes=list(counts.ADJECTIVE_SUFFIXES), left_window=counts.LEFT_WINDOW,
                     set_noun_tokens=counts.SET_NOUN_TOKENS, story_start=counts.STORY_START,
                     story_words=counts.STORY_WORDS, long_caption=counts.LONG_CAPTION,
                     glued_pack_words=list(counts.GLUED_PACK_WORDS), prose_caption=counts.PROSE_CAPTION)


def word_ranges(word_chars: str) -> list[tuple[int, int]]:
    """WORD_CHARS (a regex class body: `0-9A-Z_\\u00aa...`) as inclusive code-point ranges."""
    ranges = [(ord(lo), ord(hi or lo)) for lo, hi in re.findall(r"(.)(?:-(.))?", word_chars, flags=re.S)]
    # Check against the class itself on every code point below U+2000 and the range ends: one
    # regex scan over them all (every process loads this; a call per code point took 0.1 s).
    ends = {c for r in ranges for c in (r[0] - 1, r[0], r[1], r[1] + 1)}
    probe = sorted(c for c in set(range(0x2000)) | ends if 0 <= c <= sys.maxunicode)
    matched = {match.start() for match in re.finditer(f"[{word_chars}]", "".join(map(chr, probe)))}
    inside = {i for lo, hi in ranges for i in range(bisect.bisect_left(probe, lo), bisect.bisect_right(probe, hi))}
    if matched != inside:
        raise ValueError(f"WORD_CHARS parsed wrongly at U+{probe[min(matched ^ inside)]:04X}")
    return ranges
