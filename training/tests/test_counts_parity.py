"""Python and TypeScript count cores agree; CountBench accuracy targets hold.

The TypeScript side runs as one `node --import tsx server/counts/cli.ts` subprocess per
command over all lines. Real captions come from `<repo>/../shared` and are never copied into
the repository; tests that need them (or node) skip with a message when they are absent.
"""

from __future__ import annotations

import io
import json
import pathlib
import random
import re
import shutil
import subprocess

import pytest

from countclip.counting import cli as counts_cli
from countclip.counting import core as counts

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
COUNTBENCH = SHARED / "countbench" / "CountBench.json"
LAION = SHARED / "captions" / "laion-captions.jsonl"
NODE = shutil.which("node")
HAVE_TS = NODE is not None and (REPO / "node_modules" / "tsx").is_dir()
needs_ts = pytest.mark.skipif(not HAVE_TS, reason="node or node_modules/tsx absent (run `make setup-node`)")
needs_countbench = pytest.mark.skipif(not COUNTBENCH.exists(), reason=f"{COUNTBENCH} absent")
needs_laion = pytest.mark.skipif(not LAION.exists(), reason=f"{LAION} absent")


def ts_cli(command: str, data: bytes) -> tuple[int, bytes]:
    proc = subprocess.run([NODE, "--import", "tsx", "server/counts/cli.ts", command], input=data, cwd=REPO,
                          capture_output=True, timeout=600)
    return proc.returncode, proc.stdout


def py_cli(command: str, data: bytes) -> tuple[int, bytes]:
    out = io.BytesIO()
    code = counts_cli.run(command, io.BytesIO(data), out, io.StringIO())
    return code, out.getvalue()


def assert_same_output(command: str, data: bytes) -> list[str]:
    (py_code, py_out), (ts_code, ts_out) = py_cli(command, data), ts_cli(command, data)
    # split on "\n" only: JSON output keeps U+2028, U+0085 ... raw, which splitlines() would cut
    py_lines, ts_lines = py_out.decode().split("\n")[:-1], ts_out.decode().split("\n")[:-1]
    assert len(py_lines) == len(ts_lines)
    diffs = [(p, t) for p, t in zip(py_lines, ts_lines) if json.loads(p) != json.loads(t)]
    assert not diffs, f"{len(diffs)} lines differ, first: {diffs[0]}"
    assert py_out == ts_out  # byte for byte, too
    assert py_code == ts_code
    return py_lines


def caption_lines(texts: list[str]) -> bytes:
    return "".join(t.replace("\r", " ").replace("\n", " ") + "\n" for t in texts).encode("utf-8", "surrogatepass")


def fuzz_lines(seed: int = 7, n: int = 3000) -> bytes:
    """Random lines built from the pieces the rules care about, plus raw invalid bytes."""
    rng = random.Random(seed)
    pieces = (list(counts.WORD_VALUES) + ["Two", "THREE", "a pair of", "a dozen", "half a dozen", "twenty-one",
              "5", "12", "21", "1999", "0", "6-4", "5:30", "$", "#", "%", "x", "-", "–", ",", ".", "'", "’", '"',
              "(", ")", "of", "the", "one of", "top", "years old", "year-old", "o'clock", "pm", "km", "dollars",
              "thirds", "times", "or", "to", "cats", "light bulbs", "children", "puppies", "glasses", "sheep",
              "Apollo", "iPhone", "Ocean's", "May", "about", "at", "set", "😀", "🐈", "👩‍👩‍👧", "ثلاث", "שלושה",
              "三", "é", "e\u0301", "\u00a0", "\t", "\u200b", "\ufeff", "٣", "²", "Ⅻ", "ſix", "\u212aM", "İ"])
    lines = []
    for _ in range(n):
        parts = [rng.choice(pieces) for _ in range(rng.randint(0, 12))]
        glue = [rng.choice([" ", " ", " ", "", "-", ", "]) for _ in parts]
        lines.append("".join(p + g for p, g in zip(parts, glue)).encode("utf-8"))
    for _ in range(n // 3):  # any code point next to a numeral: boundaries come from one fixed table
        a, b = (chr(rng.choice([rng.randrange(0x80, 0x3000), rng.randrange(0x10000, 0x110000)])) for _ in range(2))
        word = rng.choice(["two", "Seven", "12", "a pair of", "one"])
        lines.append(f"{a}{word}{b} cats {a} {word} dogs{b}".encode("utf-8", "surrogatepass"))
    junk = [b"\xff three cats", b"\xed\xa0\x80 two dogs", b"\xc3", b"\xf0\x9f\x98 five cups", b"\x00 six\x00 cats"]
    return b"\n".join(lines + junk) + b"\n"


@needs_ts
def test_lexicon_tables_are_identical():
    script = "import('./server/counts/counts.ts').then(m => process.stdout.write(JSON.stringify(m.lexiconTables())))"
    proc = subprocess.run([NODE, "--import", "tsx", "--input-type=module", "-e", script], cwd=REPO,
                          capture_output=True, timeout=120, check=True)
    assert json.loads(proc.stdout) == json.loads(json.dumps(counts.lexicon_tables()))


@needs_ts
def test_parity_on_vectors_and_fuzz():
    vectors = json.loads((REPO / "test" / "vectors" / "counts.json").read_text("utf-8"))
    data = caption_lines([c["text"] for c in vectors["find_count"]]) + fuzz_lines()
    assert_same_output("parse", data)
    assert_same_output("explain", data)


@needs_ts
def test_parity_on_bad_variants_input():
    lines = [b"not json", b"[1]", b'{"text": 5, "number": 3}', b'{"text": "three cats", "number": 3.0}',
             b'{"text": "three cats", "number": NaN}', b'{"text": "\\ud800 Three cats", "number": 3}',
             b'{"text": "three cats", "number": 4}', b"\xff\xfe", b"", b'{"2": 1, "text": "two cats", "number": 2}',
             b"[" * 100_000, b'{"text": "two cats", "number": 2, "x": ' + b"[" * 101 + b"]" * 101 + b"}",
             b'{"text": "two cats", "number": 2, "x": ' + b"[" * 100 + b"]" * 100 + b"}",
             b'{"text": "two \\"[[[[[[", "number": 2}', b'"unterminated [[[[',
             b'{"text": "two cats", "b": {"z": 1, "7": 2}, "10": 2, "2": 3, "01": 4, "number": 2}']
    assert_same_output("variants", b"\n".join(lines))


@needs_ts
@needs_countbench
@needs_laion
def test_parity_on_all_real_captions():
    texts = [e["text"] for e in json.loads(COUNTBENCH.read_text("utf-8"))]
    texts += [json.loads(line)["text"] for line in LAION.read_text("utf-8").splitlines() if line.strip()]
    assert len(texts) == 540 + 22_263
    lines = assert_same_output("parse", caption_lines(texts))
    assert len(lines) == len(texts)
    assert_same_output("explain", caption_lines(texts[:540]))  # every decision on CountBench, too
    variants = "".join(json.dumps({"text": e["text"], "number": e["number"]}) + "\n"
                       for e in json.loads(COUNTBENCH.read_text("utf-8")))
    assert_same_output("variants", variants.encode())


# ----------------------------------------------------------------------------- CountBench targets


def _entries() -> list[dict]:
    return json.loads(COUNTBENCH.read_text("utf-8"))


@needs_countbench
def test_countbench_find_count_accuracy():
    entries = _entries()
    found = [counts.find_count(e["text"]) for e in entries]
    wrong = [e["text"] for e, m in zip(entries, found) if m is not None and m.count != e["number"]]
    abstained = sum(m is None for m in found)
    assert len(wrong) <= 0.01 * len(entries), wrong
    assert abstained <= 0.10 * len(entries), abstained


def _oracle_variant(text: str, number: int, n: int) -> str:
    """Independent oracle: every standalone occurrence of the number word, any case, becomes n's word
    in the same case; nothing else changes."""
    def cased(m: re.Match) -> str:
        old, new = m.group(), counts.NUMBER_WORDS[n]
        return new.upper() if old.isupper() else new.capitalize() if old[0].isupper() else new
    word = counts.NUMBER_WORDS[number]
    return re.sub(rf"(?<![A-Za-z0-9-]){word}(?![A-Za-z0-9])", cased, text, flags=re.IGNORECASE)


@needs_countbench
def test_countbench_variants_change_exactly_the_annotated_number():
    for e in _entries():
        text, number = e["text"], e["number"]
        variants = counts.count_variants(text, number)
        assert len(variants) == 9 and variants[number - 2] == text
        assert variants == [_oracle_variant(text, number, n) for n in range(2, 11)], text
