"""`countclip counts parse|variants`: contract and bad input (in-process, plus one real subprocess)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from countclip.counting import cli as counts_cli


def run(command: str, data: bytes) -> tuple[int, list[dict], str]:
    out, err = io.BytesIO(), io.StringIO()
    code = counts_cli.run(command, io.BytesIO(data), out, err)
    lines = out.getvalue().decode("utf-8").split("\n")[:-1]  # not splitlines(): U+2028 stays raw in JSON
    return code, [json.loads(line) for line in lines], err.getvalue()


def test_parse_contract():
    code, rows, _ = run("parse", b"three cats\r\nTwo cucumbers and three tomatoes\n\nSet of 8")
    assert code == 0
    assert rows == [
        {"text": "three cats", "count": 3, "start": 0, "end": 5, "noun": "cats"},
        {"text": "Two cucumbers and three tomatoes", "count": None, "start": None, "end": None, "noun": None},
        {"text": "", "count": None, "start": None, "end": None, "noun": None},
        {"text": "Set of 8", "count": 8, "start": 7, "end": 8, "noun": None},
    ]


def test_parse_survives_bad_bytes_long_lines_emoji_and_rtl():
    long_line = b"a" * 100_000 + b" two dogs"
    data = b"\xff\xfe three cats\n\xed\xa0\x80 five dogs\n" + long_line + "\n😀 six 🐈 cats\nثلاث قطط two cats\n".encode()
    code, rows, _ = run("parse", data)
    assert code == 0 and len(rows) == 5
    assert rows[0]["text"] == "\ufffd\ufffd three cats" and rows[0]["count"] == 3 and rows[0]["start"] == 3
    assert rows[1]["text"] == "\ufffd\ufffd\ufffd five dogs" and rows[1]["start"] == 4
    assert rows[2]["count"] == 2 and rows[2]["start"] == 100_001
    assert rows[3]["count"] == 6 and rows[3]["start"] == 2
    assert rows[4]["count"] == 2 and rows[4]["start"] == 9


def test_parse_empty_input_gives_nothing():
    assert run("parse", b"") == (0, [], "")


def test_variants_contract_keeps_other_fields():
    line = json.dumps({"image_url": "u", "text": "Three pigs - three pigs", "number": 3}).encode()
    code, rows, _ = run("variants", line + b"\n\n")
    assert code == 0 and len(rows) == 1
    assert rows[0]["image_url"] == "u" and rows[0]["number"] == 3
    assert rows[0]["variants"][0] == "Two pigs - two pigs" and rows[0]["variants"][1] == "Three pigs - three pigs"
    assert len(rows[0]["variants"]) == 9


def test_variants_bad_lines_give_errors_and_lose_nothing():
    data = b"\n".join([
        b"not json",
        b"[1, 2]",
        b'{"text": 5, "number": 3}',
        b'{"text": "three cats", "number": "3"}',
        b'{"text": "three cats", "number": true}',
        b'{"text": "three cats", "number": NaN}',
        b'{"text": "three cats", "number": 3.5}',
        b'{"text": "three cats", "number": 4}',
        b'{"text": "three cats", "number": 3.0}',
        b'{"text": "\\ud800 three cats", "number": 3}',
        b'\xff{"text": "three cats", "number": 3}',
    ])
    code, rows, err = run("variants", data)
    assert code == 1 and len(rows) == 11
    errors = [row.get("error") for row in rows]
    assert errors[:8] == [counts_cli.ERR_JSON, counts_cli.ERR_OBJECT, counts_cli.ERR_TEXT, counts_cli.ERR_NUMBER,
                          counts_cli.ERR_NUMBER, counts_cli.ERR_JSON, counts_cli.ERR_NUMBER,
                          "4 (four) does not occur in the caption"]
    assert all(row["variants"] is None for row in rows[:8])
    assert rows[8]["variants"][1] == "three cats" and rows[8]["number"] == 3
    assert rows[9]["variants"][0] == "\ud800 two cats" and rows[10]["error"] == counts_cli.ERR_JSON
    assert "line 1: invalid JSON" in err


def test_variants_refuses_deep_nesting_without_crashing():
    deep = b"[" * 100_000
    nested = b'{"text": "two cats", "number": 2, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    ok = b'{"text": "two cats", "number": 2, "x": "[[[[' + b"[" * 500 + b'"}'  # brackets in a string are text
    code, rows, _ = run("variants", b"\n".join([deep, nested, ok]))
    assert code == 1
    assert [row.get("error") for row in rows] == [counts_cli.ERR_DEPTH, counts_cli.ERR_DEPTH, None]


def test_dumps_matches_json_stringify():
    assert counts_cli.dumps({"a": "\ud800\x01\n\"é😀", "b": None}) == '{"a":"\\ud800\\u0001\\n\\"é😀","b":null}'


def test_command_line_entry_point():
    proc = subprocess.run([sys.executable, "-m", "countclip.cli", "counts", "parse"], input=b"\xc3 two cats\n",
                          capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"text": "\ufffd two cats", "count": 2, "start": 2, "end": 5, "noun": "cats"}
    usage = subprocess.run([sys.executable, "-m", "countclip.cli", "counts", "frobnicate"], capture_output=True, timeout=60)
    assert usage.returncode == 2 and b"invalid choice" in usage.stderr
