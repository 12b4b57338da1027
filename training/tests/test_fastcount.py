"""The count core's C port (countclip/counting/_fastcount.c, used by `countclip mine`) against find_count.

1. Parity, when the C module is built: (value, noun) equal to `find_count`'s on the shared
   vectors, CountBench and the LAION sample (from ../shared when there), generated hard
   cases, mutated real captions, and fuzzed captions made of every lexicon word, digits,
   punctuation, odd whitespace and non-ASCII letters.
2. When it is used: only while core.py is the file it ports and the build is of the
   current _fastcount.c; otherwise miners fall back to the Python core, with a warning.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from countclip.counting import core as counts
from countclip.counting import fastcount, lexicon
from countclip.counting.core import find_count

from test_mine_prove import STRAY, hard_captions, mutated

REPO = Path(__file__).resolve().parents[2]
COUNTING = REPO / "training" / "countclip" / "counting"
SHARED = REPO.parent / "shared"
COUNTBENCH = SHARED / "countbench" / "CountBench.json"
LAION = SHARED / "captions" / "laion-captions.jsonl"
VECTORS = REPO / "test" / "vectors" / "counts.json"

counter, why_not = fastcount.load()
needs_build = pytest.mark.skipif(counter is None, reason=f"C count core not in use ({why_not}); make native")


def expected(texts: list[str]) -> list[tuple[int, str | None]]:
    out = []
    for text in texts:
        match = find_count(text)
        out.append((match.count, match.noun) if match else (0, None))
    return out


def assert_same(texts: list[str]) -> None:
    values, nouns = counter.count_many(texts)
    got = [(int(v), n) for v, n in zip(values, nouns)]
    want = expected(texts)
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not bad, f"{len(bad)} of {len(texts)} differ (caption, find_count, C): {bad[:5]}"


def test_the_port_mirrors_this_counts_py():
    """Edit a rule in core.py: port it to _fastcount.c, then set MIRRORED_COUNTS_SHA256."""
    digest = hashlib.sha256((COUNTING / "core.py").read_bytes()).hexdigest()
    assert fastcount.MIRRORED_COUNTS_SHA256 == digest


def test_built_wherever_there_is_a_compiler():
    """`make setup` builds it; a silent build failure would make mining 5x slower."""
    if shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is None:
        pytest.skip("no C compiler")
    assert counter is not None, why_not


@needs_build
def test_vectors_and_fixed_captions():
    vectors = json.loads(VECTORS.read_text("utf-8"))["find_count"]
    texts = [v["text"] if isinstance(v, dict) else v[0] for v in vectors]
    texts += ["", " ", "two", "Two cats", "TWO CATS", "a pair of jeans", "half a dozen eggs", "fifty cats",
              "2014 cats", "2 dogs and 3 cats", "two cats and two dogs", "One Direction", "x" * 500 + " two cats",
              "two\u00a0cats", "two\tcats", "two\x1ccats", "ſix cats", "twenty-one cats", "the one", "3 cats’",
              "Bob's 3 cats", "cats, 2, dogs", "Liam, 12", "two " * 40 + "cats"]
    assert_same(texts)


@needs_build
def test_countbench_and_real_laion_captions():
    texts = []
    if COUNTBENCH.is_file():
        texts += [entry["text"] for entry in json.loads(COUNTBENCH.read_text("utf-8"))]
    if LAION.is_file():
        texts += [json.loads(line)["text"] for line in LAION.read_text("utf-8").splitlines() if line.strip()]
    if not texts:
        pytest.skip("../shared not found")
    assert_same(texts)


@needs_build
def test_generated_hard_cases():
    assert_same(hard_captions(30_000, seed=5))


@needs_build
def test_mutated_real_captions():
    if not LAION.is_file():
        pytest.skip("../shared not found")
    real = [json.loads(line)["text"] for line in LAION.read_text("utf-8").splitlines() if line.strip()]
    texts = mutated(real, 10_000, seed=3, stray=STRAY + ["‐", "_", "\x1c", "\u2028"], edits=4)
    assert_same(texts)


def lexicon_words() -> list[str]:
    """Every word of the count core's tables (not its memo dicts, which earlier tests fill)."""
    words: set[str] = set()
    for name, table in lexicon.lexicon_tables().items():
        if name in ("word_chars", "prefix_symbols"):
            continue
        if isinstance(table, dict):
            words |= set(table) | {v for v in table.values() if isinstance(v, str)}
        elif isinstance(table, list):
            words |= {w if isinstance(w, str) else w[0] for w in table}
    return sorted(w for w in words if w)


FUZZ_EXTRA = ["cats", "Cats", "dog", "apples", "Apple", "iPhone", "Galaxy", "Note", "The", "up", "out", "of", "at",
              "1", "2", "3", "4", "5", "10", "12", "20", "21", "2014", "1999", "0", "07", "100", "x", "X", "A",
              "Bob's", "Liam,", "U.S.", "t-shirts", "two-year-old", "twenty-one", "cat’s", "café", "Ünïcode", "ΑΒΓ",
              "Москва", "日本", "ǅ", "ﬁ", "İ", "ß", "²", "٣", "Ⅻ", "ſix", "\u212aids"]
FUZZ_SEPARATORS = [" ", " ", " ", "  ", "\t", "\u00a0", "\n", "\x1c", "\x85", "\u2028", "\u3000", "\u2009", "-", "–",
                   "‐", ", ", ". ", ": ", "/", "'", "’", '"', "(", ")", "$", "#", "%", "+", "°", "″", "_", ";", "|",
                   "!", "—", "…", "«", "»", ""]


def fuzzed(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = lexicon_words() + FUZZ_EXTRA
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            word, case = rng.choice(pool), rng.random()
            parts += [word.upper() if case < 0.1 else word.capitalize() if case < 0.3 else word,
                      rng.choice(FUZZ_SEPARATORS)]
        text = "".join(parts)
        texts.append(text.rstrip() if rng.random() < 0.5 else rng.choice(FUZZ_SEPARATORS) + text)
    return texts


@needs_build
def test_fuzzed_captions():
    texts = fuzzed(60_000, seed=1)
    values, _ = counter.count_many(texts)
    assert (values > 0).sum() > 2000  # the soup does reach the counting paths
    assert_same(texts)


@needs_build
def test_bad_input():
    with pytest.raises(TypeError, match="item 1 is bytes"):
        counter.count_many(["two cats", b"two cats"])
    with pytest.raises(TypeError):
        counter.count_many(3)
    values, nouns = counter.count_many([])
    assert len(values) == 0 and nouns == []


def test_word_chars_parse():
    assert fastcount.word_ranges("0-9A-Z_\u00aa") == [(48, 57), (65, 90), (95, 95), (0xAA, 0xAA)]
    ranges = fastcount.word_ranges(counts.WORD_CHARS)
    assert (ord("a"), ord("z")) in ranges and (0x1E00, 0x1FFF) in ranges


def load_in_copy(tmp_path: Path, edit) -> str:
    """`fastcount.load()`'s verdict in a fresh interpreter on a copy of the package after `edit`."""
    package = tmp_path / "countclip"
    shutil.copytree(REPO / "training" / "countclip", package, ignore=shutil.ignore_patterns("__pycache__"))
    edit(package)
    code = ("import warnings, countclip.counting.fastcount as f\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    c, why = f.load()\n"
            "print('c' if c else why, '|', ' '.join(str(w.message)[:40] for w in caught))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@needs_build
def test_used_only_while_current(tmp_path):
    assert load_in_copy(tmp_path / "same", lambda p: None).startswith("c |")

    def edit_rule(package: Path) -> None:
        path = package / "counting" / "core.py"
        path.write_text(path.read_text("utf-8") + "\n# a changed rule\n", "utf-8")

    verdict = load_in_copy(tmp_path / "rule", edit_rule)
    assert verdict.startswith("core.py changed since the port |") and "core.py changed" in verdict

    def edit_source(package: Path) -> None:
        path = package / "counting" / "_fastcount.c"
        path.write_text(path.read_text("utf-8") + "\n/* edited */\n", "utf-8")

    assert load_in_copy(tmp_path / "source", edit_source).startswith("stale build |")



def test_without_a_build_or_when_told_not_to(monkeypatch):
    def missing(name: str):
        raise ImportError(name)

    monkeypatch.setattr(fastcount.importlib, "import_module", missing)
    assert fastcount._load() == (None, "not built (make native)")
    monkeypatch.setenv(fastcount.PURE_ENV, "1")
    assert fastcount._load() == (None, "COUNTCLIP_PURE_PYTHON is set")


@needs_build
def test_arrow_arrays_read_in_place():
    """count_arrow on Arrow arrays (nulls, slices, large offsets) gives count_many's answers."""
    import pyarrow as pa

    texts = hard_captions(5000, seed=9) + fuzzed(5000, seed=4)
    with_nulls = [None if i % 7 == 0 else t for i, t in enumerate(texts)]
    want_values, want_nouns = counter.count_many([t or "" for t in with_nulls])
    for array in (pa.array(with_nulls, pa.string()), pa.array(with_nulls, pa.large_string())):
        for start, stop in ((0, len(texts)), (13, 4000)):
            values, nouns = counter.count_arrow(array.slice(start, stop - start))
            assert values.tolist() == want_values[start:stop].tolist()
            assert nouns == [None if t is None else n for t, n in zip(with_nulls[start:stop], want_nouns[start:stop])]
    with pytest.raises(TypeError, match="string array"):
        counter.count_arrow(pa.array([1, 2]))


@needs_build
def test_python_strings_to_arrow():
    """Nouns become Arrow columns in C (utf8_strings) and in Python (select.string_array): both
    are pa.array's large_string array, nulls and non-ASCII included."""
    import pyarrow as pa

    from countclip.mining.select import string_array

    strings = ["dogs", None, "", "caf\u00e9s", "\U0001f436 pups", None] + fuzzed(500, seed=2)
    for make in (counter.string_array, string_array):
        for items in (strings, [], ["a"], [None]):
            array = make(items)
            array.validate(full=True)
            assert array.equals(pa.array(items, pa.large_string()))
    with pytest.raises(TypeError):
        counter.string_array([b"bytes"])


@needs_build
def test_sampling_keys_are_keyed_blake2b():
    """The C keys are hashlib's: a run's sample does not depend on whether the C core is built."""
    import pyarrow as pa

    rng = random.Random(2)
    alphabet = "ab c\u00e9\u20ac\U0001F600\n"
    ids = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(2000)]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))) for _ in range(2000)]
    for key in (b"", (0).to_bytes(16, "little", signed=True), (-3).to_bytes(16, "little", signed=True), b"k" * 64):
        want = [int.from_bytes(hashlib.blake2b(a.encode() + b"\0" + t.encode(), digest_size=8, key=key).digest(),
                               "little") for a, t in zip(ids, texts)]
        got = counter.sampling_keys(key, pa.array(ids), pa.array(texts, pa.large_string()))
        assert got.tolist() == want
    assert counter.sampling_keys(b"x", pa.array(ids).slice(3, 10), pa.array(texts).slice(3, 10)).tolist() == [
        int.from_bytes(hashlib.blake2b(a.encode() + b"\0" + t.encode(), digest_size=8, key=b"x").digest(), "little")
        for a, t in zip(ids[3:13], texts[3:13])]
    with pytest.raises(ValueError, match="null"):
        counter.sampling_keys(b"x", pa.array(["a", None]), pa.array(["b", "c"]))


@needs_build
def test_a_lexicon_it_cannot_take_falls_back(monkeypatch):
    """A lexicon of a new shape (here a numeral with a digit in it) is refused, not misread."""
    monkeypatch.setattr(counts, "BIG_WORDS", (*counts.BIG_WORDS, "4ever"))
    with pytest.warns(RuntimeWarning, match="cannot take"):
        got, why = fastcount._load()
    assert got is None and why.startswith("lexicon not accepted")
    monkeypatch.undo()
    fastcount.configure(importlib.import_module(fastcount.C_MODULE))  # leave the module as it was
    assert_same(["two cats", "fifty cats", "4ever cats"])


# Where RE2's \b (ASCII only) and case folding (k ~ U+212A, s ~ U+017F) are easy to get wrong.
PREFILTER_EDGES = ["ſix", "aſix", "pairſa", "twoſ", "\u212aids", "se\u212aven", "dozens", "a2", "_2", "2_", "02",
                   "0010", "100", "010x", "x 010", "é2", "2é", "TEN", "Ten.", "tén", "ſeven", "ſeven cats",
                   "thouſands", "xx\u212aten", "ab\u017fix", "two" * 9, "1" * 20 + " two", "_two", "two_", "2", "10",
                   "x" * 15 + " two", "x" * 16 + "two", "x" * 14 + " 7", "’two", "two’", "\u212a", "\u017f"]


@needs_build
def test_the_c_prefilter_decides_as_re2():
    """filter_and_count's candidates are exactly the RE2 pre-filter's, its counts find_count's."""
    import numpy as np
    import pyarrow as pa

    from countclip.mining.prefilter import Prefilter

    prefilter = Prefilter()
    words = prefilter.plain_words()
    assert words is not None and "two" in words
    rng = random.Random(8)
    texts = fuzzed(30_000, seed=6) + hard_captions(10_000, seed=6) + PREFILTER_EDGES + [None, ""]
    real = [json.loads(line)["text"] for line in LAION.read_text("utf-8").splitlines()] if LAION.is_file() else []
    for text in (real or texts)[:20_000]:
        at = rng.randint(0, len(text or ""))
        texts.append((text or "")[:at] + rng.choice(PREFILTER_EDGES) + rng.choice(["", " ", "ſ", "\u212a", "_", "é"])
                     + (text or "")[at:])
    texts += ["".join(rng.choice("ab2 _ſ\u212atwoſix0") for _ in range(rng.randint(0, 40))) for _ in range(20_000)]
    array = pa.array(texts, pa.string())
    for part in (array, array.slice(1001, 5000), pa.array(texts, pa.large_string())):
        positions, values, nouns = counter.filter_and_count(part, words)
        assert positions.tolist() == np.flatnonzero(prefilter.mask(part).to_numpy(zero_copy_only=False)).tolist()
        want = expected([part[int(i)].as_py() for i in positions])
        assert [(int(v), n) for v, n in zip(values, nouns)] == want
    positions, values, nouns = counter.filter_and_count(pa.array([], pa.string()), words)
    assert len(positions) == len(values) == len(nouns) == 0


@needs_build
@pytest.mark.parametrize("extra_words", [("ask", "sky", "oks", "kiss"), ("ox", "no"), ("three", "thorn", "teen")])
def test_the_c_prefilter_decides_as_re2_on_other_words(extra_words):
    """Words the three-letter check cannot take (s or k second or third: U+017F and U+212A are
    several bytes; two letters) and words that share their first letters with others."""
    import numpy as np
    import pyarrow as pa

    from countclip.mining.prefilter import Prefilter

    prefilter = Prefilter(extra_words)
    words = prefilter.plain_words()
    assert words is not None and set(extra_words) <= set(words)
    rng = random.Random(9)
    texts = ["".join(rng.choice("aAsSkKiIoOxXyYtThHeErRnN ſK_2é.") for _ in range(rng.randint(0, 30)))
             for _ in range(40_000)] + fuzzed(10_000, seed=9) + [None, ""]
    array = pa.array(texts, pa.string())
    positions, _, _ = counter.filter_and_count(array, words)
    assert positions.tolist() == np.flatnonzero(prefilter.mask(array).to_numpy(zero_copy_only=False)).tolist()
    counter.filter_and_count(array.slice(0, 1), Prefilter().plain_words())  # back to the default words


@needs_build
def test_fast_paths_in_use_on_x86_64():
    """SSE2 is part of x86-64: its paths must be on there (the parity tests above ran through them)."""
    import platform

    features = counter._module.features()
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"{platform.machine()}: scalar paths")
    assert features == {"sse2": True, "ascii_blocks": True}
