"""Vectorised proofs that the count core finds no count: decide abstentions without calling it.

The pre-filter (`prefilter.py`) passes on about a quarter of web captions, and more than half
of those the count core (`countclip.counts.find_count`) then declines: "2.5 kg", "size 8",
"image 3", "$5", "3-pack", "Galaxy Note 5 Case" ... This module proves, for many of them,
in RE2 over a whole Arrow batch, that `find_count` returns None, so they are counted as
`abstained` (exactly what the core would say) without a Python call each.

How. `find_count` returns a count only if some numeral with a value (1..20, "a couple of",
"a pair of", "(half) a dozen") is *counted*, i.e. no exclusion rule fires for it. Numerals
beyond the lexicon ("fifty", "2014") can only make it return None. So it suffices that every
valued numeral is provably excluded. One RE2 rewrite replaces each numeral that a rule
below provably excludes with "#", keeping its context (capture groups); if no valued
numeral is left (`VALUED`, a superset of the core's valued numerals, ASCII word
boundaries), the caption is a proven abstention. Each rule mirrors one of the core's:

  joined digits      2.5, 1/2, 7-8-16, 3:30          every run of a digit group joined by .,:/-–
  money/number sign  $5, # 2, No# 4                  the token before ends in a prefix symbol
  rank, approx, age  size 8, Part 2, about 5, aged 3 the word before (stripped, lower-cased)
  date               May 5                           a month before digits
  compound           3-pack, two-way                 a hyphen joins the next word
  unit symbol/quote  5%, 20°, 6", 5'                 the character after
  next word          5 kg, two years, 10 Best        the first word after (units, durations, ...)
  bare digits        "image 3", "8 (GS)"             digits with no word after them
  digits, no plural  "Note 5 Case", "4 pad sprung"   digits 2..20 before words none of which is plural

The last two hold only when no digit follows an "introducer" word ("set of 4", "the 3") and
no irregular plural ("feet", "sheep", "-men") occurs anywhere in the caption: a caption-level
guard (a superset pattern) switches those two rules off for it. Patterns use explicit
ASCII case classes, never RE2's case folding (which maps "k" to the Kelvin sign).

Everything is derived from the core's lexicon tables at start-up; if a table is missing,
the prover is off (every caption goes to the core). `training/tests/test_mine_prove.py`
checks "proven => find_count is None" on every real LAION caption and on generated hard
cases, and `test_mine.py` that `countclip mine` writes the same output with the prover on
and off.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PLACEHOLDER = "0"


def _char_class(chars: str, negate: bool = False) -> str:
    def one(ch: str) -> str:
        if ch in "\\]^-[()":
            return "\\" + ch
        if ord(ch) < 0x21 or ch.isspace():
            return f"\\x{{{ord(ch):x}}}"
        return ch
    return "[" + ("^" if negate else "") + "".join(one(ch) for ch in dict.fromkeys(chars)) + "]"


def _ascii_ci(word: str) -> str:
    """`kg` -> `[Kk][Gg]`: ASCII case only (RE2's (?i) also matches U+212A for k, U+017F for s)."""
    return "".join(f"[{ch.upper()}{ch}]" if "a" <= ch <= "z" else re.escape(ch) for ch in word)


def _compose(rules) -> tuple[str, str]:
    """One RE2 pattern of (before)numeral(after) alternatives and its rewrite: every context
    group kept, the numeral replaced. Rules with the same numeral share one group per side.
    Only one alternative matches, so the other groups are empty: the rewrite is
    before-groups, PLACEHOLDER, after-groups (`\\1\\2#\\3\\4`)."""
    merged: dict[tuple[str, str], list[str]] = {}
    bare: list[str] = []
    for pre, numeral, post in rules:
        if pre is not None and post is not None:
            raise ValueError("a rule has context on one side only")
        if pre is None and post is None:
            bare.append(numeral)
        else:
            merged.setdefault(("before" if pre is not None else "after", numeral), []).append(pre or post)
    alternatives, before, after = list(bare), [], []
    for group, ((side, numeral), contexts) in enumerate(merged.items(), start=1):
        context = "(" + "|".join(f"(?:{c})" for c in contexts) + ")"
        if side == "before":
            before.append(group)
            alternatives.append(context + numeral)
        else:
            after.append(group)
            alternatives.append(numeral + context)
    if len(merged) > 9:
        raise ValueError("RE2 rewrites reference at most 9 groups")
    pattern = "|".join(alternatives)
    if len(re.findall(r"(?<!\\)\((?!\?)", pattern)) != len(merged):
        raise ValueError("a rule has a capturing group of its own")
    return pattern, "".join(f"\\{i}" for i in before) + PLACEHOLDER + "".join(f"\\{i}" for i in after)


def _alternation(words) -> str:
    words = sorted(set(words), key=lambda w: (-len(w), w))
    return "(?:" + "|".join(_ascii_ci(w) for w in words) + ")"


# What str.split() splits on (the core's tokens), and the blanks of the core's after-numeral regex.
PY_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_WS = _char_class(PY_WHITESPACE)
_BLANK = "[ \\t\\x{a0}]"
# One token of the core's AFTER_RE words: [A-Za-z]++(?:['’.][A-Za-z]++)*+ | [0-9]++
_TOKEN_WORD = re.compile(r"[a-z]+(?:['’.][a-z]+)*")
# After a word token, the chunk (whitespace token) it ends is over: the token cannot go on
# (no letter, no ['’.] + letter) and no "-" joins another token to it.
_CHUNK_END = r"(?:$|[^A-Za-z'’.\-]|['’.](?:$|[^A-Za-z])|-(?:$|[^A-Za-z0-9]))"


class AbstentionProver:
    """`proven(captions)` -> BooleanArray: True where `find_count` certainly returns None."""

    def __init__(self, rules: tuple[str, ...] | None = None) -> None:
        self.enabled = False
        try:
            from countclip import counts

            self._build(counts)
            self.use(DEFAULT_RULES if rules is None else rules)
            self.enabled = True
        except (ImportError, AttributeError, TypeError, ValueError, KeyError):
            self.enabled = False  # the core changed shape: every caption goes to the core

    def _build(self, counts) -> None:
        valued_words = [w for w, v in counts.WORD_VALUES.items() if isinstance(v, int) and 1 <= v <= 20]
        idiom_words = [max(p.split(), key=len) for p in counts.IDIOM_VALUES]
        if not valued_words or any(not w.isascii() or not w.isalpha() for w in valued_words + idiom_words):
            raise ValueError("unexpected lexicon")
        # A valued numeral of the core sits between non-word characters (its WORD_CHARS include
        # all ASCII word characters), so RE2's ASCII \b holds on both sides: these are supersets.
        self.valued_words = rf"\b{_alternation(valued_words + idiom_words)}\b"
        self.valued_digits = r"\b(?:[1-9]|1[0-9]|20)\b"
        digits = r"\b[0-9]+\b"  # any digit run a rule may exclude (one without a value is harmless)
        digits_1_20, digits_2_20 = self.valued_digits, r"\b(?:[2-9]|1[0-9]|20)\b"

        # Contexts may be narrower than the core's (a proof then applies less often, never
        # wrongly): blanks for whitespace, ASCII punctuation, at most two of each.
        punct = _char_class("".join(ch for ch in counts.PUNCT if ch.isascii())) + "{0,2}"
        space = "[ \\t]{0,2}"
        left = "(?:^|[ \\t])"
        printable = [chr(c) for c in range(0x21, 0x7F)]
        sentence_goes_on = _char_class("".join(ch for ch in printable if ch not in counts.SENTENCE_END))
        # (no digits in it: a placeholder there might stand for a longer digit group)
        name_chars = _char_class("".join(ch for ch in printable if not ch.isdigit()))
        name_end = _char_class("".join(ch for ch in printable if ch not in counts.PUNCT and not ch.isdigit()))

        def token_words(vocabulary) -> list[str]:  # words that can be one whole token after a numeral
            return [w for w in vocabulary if _TOKEN_WORD.fullmatch(w)]

        def left_word(vocabulary) -> str:  # the token before, stripped of PUNCT, lower-cased
            return _alternation([w for w in vocabulary if w.isascii() and w and w.strip(counts.PUNCT) == w])

        after_words = _alternation(token_words(set(counts.NEXT_WORD_REASONS) | set(counts.MONTH_WORDS)
                                               | set(counts.SUPERLATIVE_WORDS)))
        after_symbols = _char_class("".join(counts.AFTER_SYMBOLS) + "'’\"")

        # A word token that does not end in s/S, and a group of up to 8 of them (AFTER_RE's
        # words): none is plural unless irregular or ending in -men (both guarded).
        token_ns = r"(?:(?:[A-Za-z]+['’.])*[A-Za-z]*[A-RT-Za-rt-z]|[0-9]+)"
        group_end = (r"(?:$|[^A-Za-z0-9'’. \t\x{a0}\-]|['’.](?:$|[^A-Za-z])|-(?:$|[^A-Za-z0-9])"
                     r"|[ \t\x{a0}]+(?:$|[^A-Za-z0-9 \t\x{a0}]))")
        token_end = r"(?:$|[^A-Za-z0-9'’.]|['’.](?:$|[^A-Za-z]))"
        separator = f"(?:{_BLANK}+|-)"
        no_plural_group = (f"{_BLANK}+{token_ns}(?:(?:{separator}{token_ns}){{0,6}}{group_end}"
                           f"|(?:{separator}{token_ns}){{7}}{token_end})")

        # name: (context before, numeral, context after, guards). The contexts become capture
        # groups, kept by the rewrite; only the numeral becomes PLACEHOLDER.
        self.rules = {
            # _joined: every run of a digit group joined by .,:/-– (2.5, 1/2, 7-8-16, 3:30)
            "joined digits": (None, f"[0-9]+(?:{_char_class(counts.JOINERS)}[0-9]+)+", None, ()),
            # _symbols: the token before ends in a money or number sign ($5, # 2, No# 4)
            "sign before": (f"{_char_class(counts.PREFIX_SYMBOLS)}{space}", digits, None, ()),
            # _prev_word, _range ("up to"): size 8, Part 2, about 5, aged 3, x 4, May 5
            "word before": (f"{left}{punct}{left_word(set(counts.PREV_WORD_REASONS) | set(counts.MONTH_WORDS))}"
                            f"{punct}{space}", digits, None, ()),
            # _compound: a hyphen joins the next word (3-pack, 2-Tool)
            "hyphen after": (None, digits, f"[-‐–][A-Za-z0-9]", ()),
            # _symbols: unit symbols and quotes right after (5%, 20°, 6", 5')
            "symbol after": (None, digits, after_symbols, ()),
            # _next_word: the first word after (5 kg, 3 years, 5 May, 10 Best)
            "word after": (None, digits, f"{_BLANK}+{after_words}{_CHUNK_END}", ()),
            # _needs_noun: digits with no word after them ("image 3", "8 (GS)")
            "bare digits": (None, digits_1_20, f"{_BLANK}*(?:$|[^A-Za-z0-9 \\t\\x{{a0}}])", ("introducer",)),
            # _needs_noun, _proper_name_before: a capitalised token inside a sentence ("Note 5")
            "name before": (f"{sentence_goes_on}[ \\t]{{1,2}}[A-Z](?:{name_chars}{{0,15}}{name_end})?[ \\t]{{1,2}}",
                            digits, None, ("introducer",)),
            # _needs_noun: digits 2..20 before words none of which is plural ("5 pad sprung")
            "no plural after": (None, digits_2_20, no_plural_group, ("introducer", "plural")),
        }
        punct_all = _char_class(counts.PUNCT)
        intro = _alternation(w for w in counts.INTRODUCER_WORDS if w.isascii())
        irregular = _alternation(w for w in counts.IRREGULAR_PLURALS if w.isascii())
        # Guards (superset patterns, no anchors): a digit after an introducer word ("set of 4"
        # is counted without a noun), a plural the no-plural rule cannot see (irregular, -men).
        self.guards = {"introducer": f"{intro}{punct_all}*{_WS}*[0-9]",
                       "plural": f"{irregular}\\b|[Mm][Ee][Nn]\\b"}

    def use(self, names) -> None:
        """The rewrite passes, one per named rule, in this order."""
        self.passes = [_compose([self.rules[name][:3]]) for name in names]
        guards = sorted({g for name in names for g in self.rules[name][3]})
        self.guard = "|".join(self.guards[g] for g in guards)

    def proven(self, captions: pa.Array) -> pa.BooleanArray:
        """True where find_count(caption) is certainly None; False when unsure, and for nulls.

        Only captions whose valued numerals are all digits are tried: a number word is nearly
        always a count, and rules for words would cost more than the core calls they save.
        Each pass rewrites the captions that still hold a valued digit run; a caption none is
        left in is proven, unless a guard pattern matches it (then the core decides).
        """
        if not self.enabled or len(captions) == 0:
            return pa.array([False] * len(captions), pa.bool_())
        tried = pc.fill_null(pc.invert(pc.match_substring_regex(captions, self.valued_words)), False)
        positions = pc.indices_nonzero(tried)  # rows of `captions` still unsure
        text = captions.take(positions)
        left = pc.match_substring_regex(text, self.valued_digits)
        for pattern, replacement in self.passes:
            if not pc.all(left).as_py():
                positions, text = positions.filter(left), text.filter(left)
            if len(text) == 0:
                break
            text = pc.replace_substring_regex(text, pattern, replacement)
            left = pc.match_substring_regex(text, self.valued_digits)
        unsure = positions.filter(left) if len(text) else positions
        proven = pc.invert(_mask(len(captions), unsure))
        proven = pc.and_(proven, tried)
        if self.guard and pc.any(proven).as_py():  # guards read the caption as written
            candidates = pc.indices_nonzero(proven)
            guarded = candidates.filter(pc.match_substring_regex(captions.take(candidates), self.guard))
            if len(guarded):
                proven = pc.and_(proven, pc.invert(_mask(len(captions), guarded)))
        return proven


def _mask(length: int, positions: pa.Array) -> pa.BooleanArray:
    """A boolean array of `length`, True at `positions`."""
    values = np.zeros(length, dtype=bool)
    values[positions.to_numpy(zero_copy_only=False)] = True
    return pa.array(values)


DEFAULT_RULES = ("bare digits", "name before", "joined digits")
