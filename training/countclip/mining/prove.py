"""Vectorised proofs that the count core finds no count: abstentions decided without calling it.

The pre-filter (`prefilter.py`) passes on 23 % of LAION captions; the count core
(`countclip.counting.core.find_count`) then declines more than half of them, and nine in ten of
those whose numerals are all digits: "2.5 kg", "image 3", "Galaxy Note 5 Case", "7-8-16".
This module proves, with RE2 over whole Arrow arrays, that `find_count` returns None for
many of them, so they are counted as `abstained` (what the core says) without a core call.

Why it is exact. `find_count` returns a count only if some numeral with a value (1..20 as
a word or digits, "a couple of", "a pair of", "(half) a dozen") is counted, i.e. none of
its exclusion rules fires for it; numerals without a value ("2014", "fifty") can only make
it return None. So it suffices that every valued numeral is provably excluded.

How. Only captions with no valued number word (`valued_words`, a superset pattern) are
tried: number words are nearly always counts, and rules for them cost more than the core
calls they would save. Each rule below is one RE2 rewrite pass that replaces every digit
run it provably excludes with "0" (no value; a digit to every later pattern, so later
passes read the same character classes as in the caption as written), keeping its context
(capture groups). A caption with no valued digit run left (`valued_digits`, a superset
with ASCII word boundaries) is proven, unless a guard pattern matches it. The rules, each
the mirror of a core rule, with patterns that may be narrower than the core's but never
wider:

  bare digits       "image 3", "8 (GS)"          digits 1..20 with no word after (_needs_noun)
  name before       "Galaxy Note 5 Case"         a capitalised token inside a sentence
                                                 before digits (_proper_name_before)
  joined digits     2.5, 1/2, 7-8-16, 3:30       every run of a group joined by .,:/-– (_joined)
  (off by default: sign before, word before, hyphen after, symbol after, word after,
   no plural after; each costs more RE2 work than the core calls it saves)

Guard: "bare digits" and "name before" hold only if no introducer word ("set of 4", "The
3") stands before the digits, which the core counts without a noun; captions where one
does anywhere (a superset pattern) go to the core. So do captions with a pack word after
a digit ("3-pack", "8 pack stock pot", "(10 Pack)", "2 Per Pack", "5/pkg"), which the core
counts. Patterns use explicit ASCII case classes, never RE2's case folding (which maps "k"
to the Kelvin sign).

Everything is built from the core's lexicon tables; if one is missing or the core's digit
values change, the prover is off (every candidate goes to the core). With
`--explain-abstentions` it is off too (the core's reason is wanted). Measured on the real
LAION sample (callgrind, 2026-11-27): the default rules prove 1,557 of the 5,114
candidates (of 2,884 the core declines) for ~10 k instructions per candidate, where a
core call costs ~125 k. `training/tests/test_mine_prove.py` checks "proven => find_count
is None" for every rule, in several orders, on every real LAION caption, on generated hard
cases and on mutated real captions; `test_mine.py` that `countclip mine` writes the same
output and stats with and without proofs (`--no-proofs`).
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
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")  # str.isspace(), tested
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
            from countclip.counting import core

            self._build(core)
            self.use(DEFAULT_RULES if rules is None else rules)
            self.enabled = True
        except (ImportError, AttributeError, TypeError, ValueError, KeyError):
            self.enabled = False  # the core changed shape: every caption goes to the core

    def _build(self, core) -> None:
        valued_words = [w for w, v in core.WORD_VALUES.items() if isinstance(v, int)]
        idiom_words = [max(p.split(), key=len) for p in core.IDIOM_VALUES]
        if not valued_words or any(not w.isascii() or not w.isalpha() for w in valued_words + idiom_words):
            raise ValueError("unexpected lexicon")
        # Digits have a value up to 20 (VALUED_DIGITS); check the core still says so.
        twenty, twenty_one = core.find_count("20 cats"), core.find_count("21 cats")
        if twenty is None or twenty.count != 20 or twenty_one is not None:
            raise ValueError("the core's digit values changed")
        # A valued numeral of the core sits between non-word characters (its WORD_CHARS include
        # all ASCII word characters), so RE2's ASCII \b holds on both sides: these are supersets.
        self.valued_words = rf"\b{_alternation(valued_words + idiom_words)}\b"
        digits_1_20, digits_2_20 = r"\b(?:[1-9]|1[0-9]|20)\b", r"\b(?:[2-9]|1[0-9]|20)\b"
        # A valued digit run may have a pack word glued to it ("10pcs"): no rule rewrites those.
        self.valued_digits = rf"\b(?:[1-9]|1[0-9]|20)(?:{_alternation(core.GLUED_PACK_WORDS)})?\b"
        digits = r"\b[0-9]+\b"  # any digit run a rule may exclude (one without a value is harmless)

        # Contexts may be narrower than the core's (a proof then applies less often, never
        # wrongly): blanks for whitespace, ASCII punctuation, at most two of each.
        punct = _char_class("".join(ch for ch in core.PUNCT if ch.isascii())) + "{0,2}"
        # After the word before: no PREV_WORD_SEPARATORS ("Scene: 3 boys" is counted).
        punct_joined = _char_class("".join(ch for ch in core.PUNCT
                                           if ch.isascii() and ch not in core.PREV_WORD_SEPARATORS)) + "{0,2}"
        space = "[ \\t]{0,2}"
        left = "(?:^|[ \\t])"
        printable = [chr(c) for c in range(0x21, 0x7F)]
        sentence_goes_on = _char_class("".join(ch for ch in printable if ch not in core.SENTENCE_END))
        # (no digits in it: a placeholder there might stand for a longer digit group)
        name_chars = _char_class("".join(ch for ch in printable if not ch.isdigit()))
        name_end = _char_class("".join(ch for ch in printable if ch not in core.PUNCT and not ch.isdigit()))

        def token_words(vocabulary) -> list[str]:  # words that can be one whole token after a numeral
            return [w for w in vocabulary if _TOKEN_WORD.fullmatch(w)]

        def left_word(vocabulary) -> str:  # the token before, stripped of PUNCT, lower-cased
            return _alternation([w for w in vocabulary if w.isascii() and w and w.strip(core.PUNCT) == w])

        after_words = _alternation(token_words(set(core.NEXT_WORD_REASONS) | set(core.MONTH_WORDS)
                                               | set(core.SUPERLATIVE_WORDS)))
        after_symbols = _char_class("".join(core.AFTER_SYMBOLS) + "'’\"")

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
            "joined digits": (None, f"[0-9]+(?:{_char_class(core.JOINERS)}[0-9]+)+", None, ()),
            # _symbols: the token before ends in a money or number sign ($5, # 2, No# 4)
            "sign before": (f"{_char_class(core.PREFIX_SYMBOLS)}{space}", digits, None, ()),
            # _prev_word, _range ("up to"): size 8, Part 2, about 5, aged 3, x 4, May 5
            "word before": (f"{left}{punct}{left_word(set(core.PREV_WORD_REASONS) | set(core.MONTH_WORDS))}"
                            f"{punct_joined}{space}", digits, None, ()),
            # _compound: a hyphen joins the next word (3-pack, 2-Tool)
            "hyphen after": (None, digits, f"[-‐–][A-Za-z0-9]", ("pack",)),
            # _symbols: unit symbols and quotes right after (5%, 20°, 6", 5')
            "symbol after": (None, digits, after_symbols, ()),
            # _next_word: the first word after (5 kg, 3 years, 5 May, 10 Best)
            "word after": (None, digits, f"{_BLANK}+{after_words}{_CHUNK_END}", ()),
            # _needs_noun: digits with no word after them ("image 3", "8 (GS)")
            "bare digits": (None, digits_1_20, f"{_BLANK}*(?:$|[^A-Za-z0-9 \\t\\x{{a0}}])", ("introducer", "pack")),
            # _needs_noun, _proper_name_before: a capitalised token inside a sentence ("Note 5")
            "name before": (f"{sentence_goes_on}[ \\t]{{1,2}}[A-Z](?:{name_chars}{{0,15}}{name_end})?[ \\t]{{1,2}}",
                            digits, None, ("introducer",)),
            # _needs_noun: digits 2..20 before words none of which is plural ("5 pad sprung")
            "no plural after": (None, digits_2_20, no_plural_group, ("introducer", "plural", "pack")),
        }
        punct_all = _char_class(core.PUNCT)
        intro = _alternation(w for w in core.INTRODUCER_WORDS if w.isascii())
        irregular = _alternation(w for w in core.IRREGULAR_PLURALS if w.isascii())
        # Guards (superset patterns, no anchors): a digit after an introducer word ("set of 4"
        # is counted without a noun), a plural the no-plural rule cannot see (irregular, -men),
        # a pack word after a digit ("3-pack", "8 pack stock pot", "2 Per Pack", "5/pkg":
        # counted, noun or not).
        packs = _alternation(w for w in core.PACK_WORDS if w.isascii())
        per_packs = _alternation(w for w in core.PER_PACK_WORDS if w.isascii())
        self.guards = {"introducer": f"{intro}{punct_all}*{_WS}*[0-9]",
                       "plural": f"{irregular}\\b|[Mm][Ee][Nn]\\b",
                       "pack": f"[0-9][-‐–]?{_BLANK}*{packs}|[0-9]{_BLANK}+[Pp][Ee][Rr]{_BLANK}+{per_packs}"
                               f"|[0-9]/{per_packs}"}

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
