"""`countclip counts parse|variants`: the count core over JSON lines, stdin to stdout.

    countclip counts parse     < captions.txt   # one caption a line -> {"text","count","start","end","noun"}
    countclip counts variants  < countbench.jsonl  # {"text","number",...} -> the same object + "variants"
    countclip counts explain   < captions.txt   # one caption a line -> {"text","numerals":[{..., "reason"}]}
    countclip counts eval-captions              # precision/recall on the hand-labelled LAION captions

The TypeScript CLI (`npm run --silent counts -- parse|variants`) has the same contract and
writes the same bytes. Input is decoded as UTF-8 with replacement characters for invalid
bytes, so no input crashes either; every input line gives exactly one output line, except
blank lines in `variants`, which carry nothing. A `variants` line that cannot be processed
gives `"variants": null` and an `"error"`; the exit status is then 1, after all lines.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import BinaryIO, Iterator

from countclip.counting import core

LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")
ERR_JSON = "invalid JSON"
ERR_OBJECT = 'expected a JSON object with "text" and "number"'
ERR_TEXT = '"text" must be a string'
ERR_NUMBER = '"number" must be an integer from 1 to 20'
MAX_DEPTH = 100
ERR_DEPTH = f"JSON nested deeper than {MAX_DEPTH} levels"
# Strings (skipped whole) and brackets: enough to measure nesting without parsing.
JSON_NESTING_RE = re.compile(r'"(?:[^"\\]|\\[\s\S])*"|[\[\]{}]')


ARRAY_INDEX_RE = re.compile(r"0|[1-9][0-9]{0,9}")


def _js_key_order(value: object) -> object:
    """Objects with JavaScript's key order: array-index keys ("2", "10") first, ascending."""
    if isinstance(value, list):
        return [_js_key_order(v) for v in value]
    if not isinstance(value, dict):
        return value
    index = {k for k in value if ARRAY_INDEX_RE.fullmatch(k) and int(k) < 2**32 - 1}
    order = sorted(index, key=int) + [k for k in value if k not in index]
    return {k: _js_key_order(value[k]) for k in order}


def dumps(obj: object) -> str:
    """JSON exactly as JavaScript's JSON.stringify writes it: compact, UTF-8, JavaScript's key
    order, lone surrogates escaped."""
    text = json.dumps(_js_key_order(obj), ensure_ascii=False, separators=(",", ":"))
    return LONE_SURROGATE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """Lines of a byte stream, split on \\n (a trailing \\r dropped), decoded with replacement."""
    for raw in stream:
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        yield raw.decode("utf-8", errors="replace")


def parse_record(text: str) -> dict:
    m = core.find_count(text)
    if m is None:
        return {"text": text, "count": None, "start": None, "end": None, "noun": None}
    return {"text": text, "count": m.count, "start": m.start, "end": m.end, "noun": m.noun}


def explain_record(text: str) -> dict:
    return {"text": text, "numerals": core.explain(text)}


def _reject_constant(name: str) -> None:
    raise ValueError(name)  # NaN and Infinity are not JSON (JSON.parse refuses them too)


def _as_number(value: object) -> int | None:
    """An integer 1..20 from JSON (3 and 3.0 alike, as JavaScript cannot tell them apart)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 1 <= value <= 20 else None


def _too_deep(line: str) -> bool:
    """Deeper than MAX_DEPTH: Python's parser would recurse out of stack (and JavaScript's
    stringify), so both CLIs refuse such lines the same way before parsing."""
    depth = 0
    for m in JSON_NESTING_RE.finditer(line):
        bracket = m.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def variants_record(line: str) -> tuple[dict, str | None]:
    """(output object, error or None) for one JSON line."""
    if _too_deep(line):
        return {"text": None, "number": None, "variants": None, "error": ERR_DEPTH}, ERR_DEPTH
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except ValueError:
        return {"text": None, "number": None, "variants": None, "error": ERR_JSON}, ERR_JSON
    if not isinstance(obj, dict):
        return {"text": None, "number": None, "variants": None, "error": ERR_OBJECT}, ERR_OBJECT
    error = None
    number = _as_number(obj.get("number"))
    if not isinstance(obj.get("text"), str):
        error = ERR_TEXT
    elif number is None:
        error = ERR_NUMBER
    else:
        try:
            obj["number"] = number
            obj["variants"] = core.count_variants(obj["text"], number)
        except ValueError as exc:
            error = str(exc)
    if error:
        obj["variants"] = None
        obj["error"] = error
    return obj, error


def run(command: str, stdin: BinaryIO, stdout: BinaryIO, stderr) -> int:
    failures = 0
    for lineno, line in enumerate(read_lines(stdin), start=1):
        if command == "parse":
            record, error = parse_record(line), None
        elif command == "explain":
            record, error = explain_record(line), None
        elif not line.strip(" \t\r\n"):
            continue  # a blank line carries nothing
        else:
            record, error = variants_record(line)
        if error:
            failures += 1
            print(f"countclip counts variants: line {lineno}: {error}", file=stderr)
        stdout.write((dumps(record) + "\n").encode("utf-8"))
    stdout.flush()
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval-captions"]:  # not a JSON-lines command: its own module and options
        from countclip.counting import eval_captions
        return eval_captions.main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="countclip counts",
        description="Find and rewrite counts in captions: JSON lines from stdin to stdout.",
    )
    parser.add_argument("command", choices=("parse", "variants", "explain"),
                        help="parse: caption lines -> {text,count,start,end,noun}; "
                             "variants: {text,number} lines -> + variants (CountBench, 2..10); "
                             "explain: caption lines -> every numeral with the reason it is not a count")
    args = parser.parse_args(argv)
    try:
        return run(args.command, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
    except BrokenPipeError:  # `| head`: the reader has gone, nothing left to say
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
