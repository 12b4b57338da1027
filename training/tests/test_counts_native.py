"""The compiled count core (mypyc, countclip/counting/build.py) against the pure-Python source.

1. Equivalence, when `countclip.counting.core` is the compiled build: every public function gives
   what `core.py`, imported from source as another module, gives, on fixed captions, the
   shared vectors, CountBench and the LAION sample (from ../shared when there), and mutated
   captions. Skipped without a current build.
2. Choice of module, always (in subprocesses, on a copy of the package): a current build is
   used; an edited core.py or lexicon.py, a changed or unloadable build, or an
   extension module lying next to the source falls back to the source with a warning; no
   build, or COUNTCLIP_PURE_PYTHON=1, imports the source quietly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys

import pytest

from countclip.counting import _native, lexicon
from countclip.counting import core as counts

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "training" / "countclip" / "counting"
SHARED = REPO.parent / "shared"
COUNTBENCH = SHARED / "countbench" / "CountBench.json"
LAION = SHARED / "captions" / "laion-captions.jsonl"
VECTORS = REPO / "test" / "vectors" / "counts.json"

compiled = _native.implementation(counts) == "mypyc"
needs_build = pytest.mark.skipif(not compiled, reason=f"compiled count core not in use ({_native.status()}); "
                                 "build it with `python -m countclip.counting.build mypyc`")


def pure_module():
    """core.py imported from source, whatever `countclip.counting.core` is."""
    name = "countclip_counts_pure_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PACKAGE_DIR / "core.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        spec.loader.exec_module(module)
    return sys.modules[name]


# ----------------------------------------------------------------------------- inputs

FIXED = [
    "", " ", "three cats on a sofa", "Two dogs and 2 cats", "two cats and three dogs", "a pair of jeans",
    "a pair of red shoes", "One Direction", "one of the two boys", "the one", "5 kg of apples", "two or three birds",
    "10 Best Places", "The 15 Most Common Mistakes", "the 1990s", "in 2014 two men", "half a dozen eggs",
    "A DOZEN ROSES", "TWO CATS", "1 cat", "fifty cats", "twenty-one pilots", "twenty one cats", "two-year-old girl",
    "4 chairs", "team 4 icon", "iPhone 6 case", "Ocean's Eleven", "Tea for Two", "$5 off", "6\" heels", "5% off",
    "Liam, 12, Stella, eight, and Beau, two", "three to a row", "two and a half men", "three out of ten dentists",
    "up to 4 people", "Two Piece Suit", "one bedroom apartments", "two light bulbs", "three lovely, young dogs",
    "two of the cats", "one glass", "seven\u00a0dwarfs", "two\tcats", "two\ncats", "\ud800 three cats",
    "ТРИ cats two", "é two cats", "two cats\u2028", "x" * 5000 + " two cats", "2 x 3 boxes", "one’s two cats",
    "Three Little Pigs", "three little pigs", "seven deadly sins", "8 MEN", "a couple of friends", "2 2 2",
]
PIECES = [
    "two", "Two", "TWO", "three", "seven", "ten", "eleven", "twenty", "one", "One", "fifty", "hundred", "dozen",
    "a dozen", "a pair of", "a couple of", "half a dozen", "2", "3", "7", "10", "12", "20", "21", "02", "1999",
    "2014", "1,000", "3.5", "5:30", "6-4", "-", "–", "‐", ",", ".", ":", ";", "(", ")", "'", "’", '"', "'s", "$",
    "#", "%", "°", "+", "x", "×", "\u00a0", "\t", "\n", " ", "  ", "é", "ß", "İ", "ﬁ", "\ud800", "😀", "٣",
    "²",
    " of the ", " or ", " to ", " and ", " out of ", " years old", " cats", " Cats", " CATS", " men", " people",
    " piece", " kg", " am", " May", " best", " times", " light bulbs", " glasses", " aged ", " top ", " the ",
    " Apollo ", " iPhone ", " one ", " at ",
]


def mutated(captions: list[str], n: int, seed: int) -> list[str]:
    """Captions with numerals, punctuation, odd code points and case flips spliced in."""
    rng = random.Random(seed)
    words = sorted(lexicon.STOP_WORDS | lexicon.UNIT_WORDS | lexicon.MODIFIER_NOUNS
                   | lexicon.RANK_WORDS | lexicon.ADJECTIVES)
    out = []
    for _ in range(n):
        text = rng.choice(captions)
        for _ in range(rng.randint(1, 5)):
            op, pos = rng.random(), rng.randint(0, len(text))
            if op < 0.55:
                text = text[:pos] + rng.choice(PIECES) + text[pos:]
            elif op < 0.7:
                text = text[:pos] + text[pos + rng.randint(1, 6):]
            elif op < 0.85:
                end = pos + rng.randint(1, 12)
                text = text[:pos] + text[pos:end].swapcase() + text[end:]
            else:
                text = " ".join(rng.choice(PIECES + words).strip() for _ in range(rng.randint(1, 14)))
        out.append(text)
    return out


def shared_captions() -> list[str]:
    texts = []
    if COUNTBENCH.is_file():
        texts += [entry["text"] for entry in json.loads(COUNTBENCH.read_text("utf-8"))]
    if LAION.is_file():
        texts += [json.loads(line)["text"] for line in LAION.read_text("utf-8").splitlines() if line.strip()]
    return texts


def vector_texts() -> list[str]:
    vectors = json.loads(VECTORS.read_text("utf-8"))
    return [case["text"] for key in ("find_count", "replace_count", "count_variants", "parse_query", "errors")
            for case in vectors[key] if isinstance(case.get("text"), str)]


# ----------------------------------------------------------------------------- comparison


def outcome(fn, *args):
    """A function's result in comparable form, or its exception's type and message."""
    try:
        value = fn(*args)
    except Exception as error:  # noqa: BLE001
        return ("raised", type(error).__name__, str(error))
    if type(value).__name__ == "CountMatch":
        return ("CountMatch", repr(value), (value.count, value.start, value.end, value.noun))
    return ("value", value)


def results(module, text: str, full: bool) -> list:
    """What every public function says about `text` (with `full`, every rewrite too)."""
    out = [outcome(module.find_count, text), outcome(module.explain, text), outcome(module.parse_query, text),
           outcome(module.make_counterfactual, text, random.Random(len(text)))]
    if not full:
        return out
    numerals = module.explain(text)
    for numeral in numerals:
        for n in (1, 2, 7):
            out.append(outcome(module.replace_count, text, (numeral["start"], numeral["end"]), n))
    for number in sorted({numeral["value"] for numeral in numerals if numeral["value"]} | {4}):
        out.append(outcome(module.count_variants, text, number))
    match = module.find_count(text)
    if match is not None and match.noun:
        out += [outcome(module.singularize, match.noun), outcome(module.pluralize, match.noun)]
    return out


def assert_same(texts: list[str], full: bool = True) -> None:
    pure = pure_module()
    differ = [text for text in texts if results(counts, text, full) != results(pure, text, full)]
    assert not differ, f"{len(differ)} of {len(texts)} inputs differ, first: {differ[0]!r}: " \
                       f"{results(counts, differ[0], full)} vs {results(pure, differ[0], full)}"


# ----------------------------------------------------------------------------- 1. equivalence


@needs_build
def test_reference_is_the_source():
    assert counts.__file__.endswith(tuple(_native.importlib.machinery.EXTENSION_SUFFIXES))
    assert pure_module().__file__ == str(PACKAGE_DIR / "core.py")


@needs_build
def test_fixed_and_vector_captions():
    assert_same(FIXED + vector_texts())


@needs_build
def test_shared_captions():
    texts = shared_captions()
    if not texts:
        pytest.skip(f"{SHARED} absent")
    with_numeral = [text for text in texts if counts.explain(text)]
    assert_same(with_numeral, full=True)
    assert_same([text for text in texts if not counts.explain(text)], full=False)


@needs_build
def test_mutated_captions():
    base = (shared_captions() or []) + FIXED
    assert_same(mutated(base, 4000, seed=0))


@needs_build
def test_argument_errors():
    pure = pure_module()
    calls = [
        ("number_word", (True,)), ("number_word", (3.0,)), ("number_word", ("3",)), ("number_word", (None,)),
        ("number_word", (-1,)), ("number_word", (21,)), ("number_word", (20,)),
        ("count_variants", ("three cats", True)), ("count_variants", ("three cats", 3.0)),
        ("count_variants", ("three cats", "3")), ("count_variants", ("three cats", 0)),
        ("count_variants", ("three cats", 3)),
        ("replace_count", ("three cats", [0, 5], 2)), ("replace_count", ("three cats", (0.0, 5), 2)),
        ("replace_count", ("three cats", (True, 5), 2)), ("replace_count", ("three cats", (0, 5), True)),
        ("replace_count", ("three cats", (0, 5), 2.0)), ("replace_count", ("three cats", "ab", 2)),
        ("replace_count", ("three cats", (0, 50), 2)), ("replace_count", ("three cats", (-1, 5), 2)),
    ]
    for name, args in calls:
        assert outcome(getattr(counts, name), *args) == outcome(getattr(pure, name), *args), (name, args)

    class FirstChoice:  # not a random.Random, but what make_counterfactual uses of one
        def choice(self, options):
            return options[0]

    for rng in (lambda: random.Random(1), FirstChoice):
        got, want = outcome(counts.make_counterfactual, "3 cats", rng()), outcome(pure.make_counterfactual, "3 cats", rng())
        assert got == want
    # Known differences, on inputs outside the annotated contract: the compiled module raises
    # TypeError for a text that is not a str (the source: AttributeError or TypeError), words
    # unpacking errors of a span that is not a pair differently, and raises TypeError when the
    # rng's choice() returns no int (a numpy Generator: np.int64; the source passes it on).
    import numpy as np

    for fn, args in [("find_count", (None,)), ("explain", (b"two cats",)), ("replace_count", ("two", (0, 3, 1), 2))]:
        for module in (counts, pure):
            assert outcome(getattr(module, fn), *args)[0] == "raised"
    assert outcome(counts.make_counterfactual, "3 cats", np.random.default_rng(1))[:2] == ("raised", "TypeError")


@needs_build
def test_public_tables_are_the_same():
    pure = pure_module()
    names = [name for name in dir(pure) if not name.startswith("__")]
    assert sorted(names) == sorted(name for name in dir(counts) if not name.startswith("__"))
    for name in names:
        value, got = getattr(pure, name), getattr(counts, name)
        if name in ("_NUMERAL_INFO", "_STRIPPED"):
            continue  # memos: they hold what each module has been asked so far
        if name == "CONTEXT_RULES":
            assert [rule.__name__ for rule in got] == [rule.__name__ for rule in value]
        elif isinstance(value, (frozenset, set, dict, list, tuple, str, int)) or hasattr(value, "pattern"):
            assert got == value, name


# ----------------------------------------------------------------------------- 2. which module is imported

PROBE = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import countclip.counting.core as counts
    from countclip.counting import _native
match = counts.find_count("three cats on a sofa")
print(json.dumps({"implementation": _native.implementation(counts), "match": [match.count, match.noun],
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]}))
"""


def package_copy(tmp_path: pathlib.Path, with_build: bool) -> pathlib.Path:
    """A minimal countclip package (its root and the count core with its loader) under tmp_path."""
    package = tmp_path / "countclip" / "counting"
    package.mkdir(parents=True)
    shutil.copy2(PACKAGE_DIR.parent / "__init__.py", package.parent / "__init__.py")
    for name in ("__init__.py", "_native.py", "core.py", "lexicon.py"):
        shutil.copy2(PACKAGE_DIR / name, package / name)
    if with_build:
        shutil.copytree(PACKAGE_DIR / _native.BUILD_DIR, package / _native.BUILD_DIR)
    return package


def fake_build(package: pathlib.Path) -> None:
    """A build whose stamp matches the sources but whose extension file is no extension."""
    build = package / _native.BUILD_DIR
    build.mkdir()
    so = build / f"core{_native.extension_suffix()}"
    so.write_bytes(b"not an ELF file")
    stamp = {"format": _native.STAMP_FORMAT, "ok": True, "python": "test", "suffix": _native.extension_suffix(),
             "sources": {name: hashlib.sha256((package / name).read_bytes()).hexdigest() for name in _native.SOURCES},
             "modules": {"core": {"file": so.name, "sha256": hashlib.sha256(so.read_bytes()).hexdigest()}}}
    (build / _native.STAMP).write_text(json.dumps(stamp))


def probe(tmp_path: pathlib.Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", _native.PURE_ENV)}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                          env={**environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["match"] == [3, "cats"]
    return result


def test_no_build_imports_the_source_quietly(tmp_path):
    package_copy(tmp_path, with_build=False)
    assert probe(tmp_path) == {"implementation": "python", "match": [3, "cats"], "warnings": []}


def test_a_build_that_does_not_load_falls_back_to_the_source(tmp_path):
    fake_build(package_copy(tmp_path, with_build=False))
    result = probe(tmp_path)
    assert result["implementation"] == "python"
    assert len(result["warnings"]) == 1 and "failed to load" in result["warnings"][0]


def test_a_changed_artefact_is_not_loaded(tmp_path):
    package = package_copy(tmp_path, with_build=False)
    fake_build(package)
    (package / _native.BUILD_DIR / f"core{_native.extension_suffix()}").write_bytes(b"changed")
    result = probe(tmp_path)
    assert result["implementation"] == "python"
    assert len(result["warnings"]) == 1 and "changed since the build" in result["warnings"][0]


@pytest.mark.parametrize("module", ["core", "lexicon"])
def test_an_extension_next_to_the_source_is_ignored(tmp_path, module):
    """`mypyc countclip/counting/core.py` run by hand leaves core.<abi>.so next to core.py, which
    the normal import system prefers to the source, checked or not."""
    package = package_copy(tmp_path, with_build=False)
    (package / f"{module}{_native.extension_suffix()}").write_bytes(b"not an ELF file")
    result = probe(tmp_path)
    assert result["implementation"] == "python"
    assert len(result["warnings"]) == 1 and f"ignoring {package / module}" in result["warnings"][0]


@needs_build
def test_a_current_build_is_used(tmp_path):
    package_copy(tmp_path, with_build=True)
    assert probe(tmp_path) == {"implementation": "mypyc", "match": [3, "cats"], "warnings": []}
    assert probe(tmp_path, **{_native.PURE_ENV: "1"}) == {"implementation": "python", "match": [3, "cats"],
                                                          "warnings": []}


@needs_build
@pytest.mark.parametrize("edited", _native.SOURCES)
def test_an_edited_source_is_never_shadowed(tmp_path, edited):
    package = package_copy(tmp_path, with_build=True)
    with open(package / edited, "a", encoding="utf-8") as source:
        source.write("\n# edited after the build\n")
    result = probe(tmp_path)
    assert result["implementation"] == "python"
    assert len(result["warnings"]) == 1 and f"stale: {edited} changed" in result["warnings"][0]
