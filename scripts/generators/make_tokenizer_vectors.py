#!/usr/bin/env python3
"""Tokenizer parity vectors for the TypeScript CLIP tokenizer (server/model/tokenizer.ts).

The reference is what `countclip.model` tokenizes with: `transformers.CLIPTokenizer` built from
CLIP's BPE files shipped in `countclip/assets/clip-bpe`, called with truncation at the model's
context length (bos + up to context_length - 2 tokens + eos).

    # regenerate the committed edge-case vectors
    training/.venv/bin/python scripts/generators/make_tokenizer_vectors.py --out test/vectors/tokenizer.json

    # encode texts on demand (used by test/model-tokenizer.test.ts for CountBench / LAION captions):
    # stdin: JSON {"texts": [...], "context_length": 77}; stdout: JSON {"ids": [[...], ...]}
    training/.venv/bin/python scripts/generators/make_tokenizer_vectors.py --encode
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# Each case: (text, context lengths to encode it at). 77 is CLIP's, 32 the tiny/small models'.
BOTH = (77, 32)
CASES: list[tuple[str, tuple[int, ...]]] = [
    # empty and whitespace only
    ("", BOTH), (" ", BOTH), ("\t\n \r\n", BOTH),
    # casing and whitespace runs
    ("a", BOTH), ("three cats", BOTH), ("Three Cats", BOTH), ("A PHOTO OF THREE CATS", BOTH),
    ("  leading and trailing  ", BOTH), ("Three  cats\t\tand\n\ntwo dogs", BOTH), ("tab\tseparated\tvalues", BOTH),
    ("line\r\nbreaks\rand\nmore", BOTH),
    # unicode whitespace (Oniguruma's \s vs JavaScript's: U+0085 and U+FEFF differ), zero-width
    ("a\u00a0b nbsp", BOTH), ("em\u2003space and\u3000ideographic", BOTH), ("a\u0085b next line", BOTH),
    ("a\ufeffb byte order mark", BOTH), ("zero\u200bwidth\u200cnon\u200djoiner", BOTH), ("line\u2028sep\u2029para", BOTH),
    ("\u1680ogham\u202fnarrow\u205fmath", BOTH), ("vertical\u000btab\u000cform feed", BOTH),
    # control characters
    ("a\u0000b", BOTH), ("bell\u0007 and del\u007f", BOTH),
    # accents, composition, special case mappings
    ("café", BOTH), ("Café CAFÉ", BOTH), ("cafe\u0301 decomposed", BOTH), ("naïve résumé Ångström", BOTH),
    ("Straße STRASSE ß ẞ", BOTH), ("İstanbul ISTANBUL ı", BOTH), ("ΣΊΣΥΦΟΣ σίσυφος", BOTH), ("ǅungla ǈ ǋ", BOTH),
    ("ﬁne ﬂour", BOTH), ("Ω ohm Å angstrom K kelvin", BOTH),
    # scripts with combining marks (marks are neither \p{L} nor \p{N})
    ("तीन बिल्लियाँ", BOTH), ("แมวสามตัว", BOTH), ("ثلاث قطط", BOTH), ("שלושה חתולים", BOTH), ("三只猫在沙发上", BOTH),
    ("猫が3匹います", BOTH), ("고양이 세 마리", BOTH), ("три кошки", BOTH), ("Τρεις γάτες", BOTH), ("ትግርኛ", BOTH),
    # emoji: sequences, modifiers, flags, keycaps
    ("🐱🐱🐱", BOTH), ("three 🐱 cats", BOTH), ("👨‍👩‍👧‍👦 family", BOTH), ("🇺🇸🇫🇷 flags", BOTH), ("3️⃣ cats", BOTH),
    ("👍🏽 thumbs", BOTH), ("❤️ love ♥", BOTH), ("🏳️‍🌈", BOTH),
    # digits and numbers (\p{N} one at a time)
    ("12345", BOTH), ("3.14159", BOTH), ("1,000,000 people", BOTH), ("2nd 3rd 21st", BOTH), ("10 cats", BOTH),
    ("٣ قطط ٤٥", BOTH), ("½ ¾ ² ³", BOTH), ("Ⅻ ⅷ roman", BOTH), ("①②③", BOTH), ("१२३", BOTH), ("COVID-19 iPhone12 3D 4K x2", BOTH),
    # apostrophes and contractions
    ("it's", BOTH), ("IT'S", BOTH), ("don't we're they've I'm you'll he'd", BOTH), ("cats' toys", BOTH), ("'s", BOTH),
    ("''s", BOTH), ("rock'n'roll o'clock", BOTH), ("it’s curly", BOTH), ("'tis 'twas", BOTH), ("'LL 'D 'RE", BOTH),
    ("dog's'", BOTH), ("!'s", BOTH),
    # punctuation and symbols
    ("hello, world!", BOTH), ("...", BOTH), ("a--b—c–d", BOTH), ("(3) cats [2] {1}", BOTH), ("#hashtag @user", BOTH),
    ("email@example.com", BOTH), ("https://example.com/a?b=c&d=e#f", BOTH), ("C++ & C#", BOTH), ("$5.99 €3 ¥100 £2", BOTH),
    ("100% a_b a-b", BOTH), ("<b>bold</b> &amp;", BOTH), ("«quotes» “double” ‘single’", BOTH), ("a/b\\c|d", BOTH),
    ("~`^*+=", BOTH), ("?!?!", BOTH), ("™ © ®", BOTH),
    # special tokens typed as text
    ("<|startoftext|>", BOTH), ("a <|endoftext|> b", BOTH), ("<|ENDOFTEXT|>", BOTH), ("<|endoftext|><|endoftext|>", BOTH),
    ("<|endoftext", BOTH), ("<|startoftext|>hi", BOTH), ("x<|endoftext|>y", BOTH),
    # counting captions like the service sees
    ("a photo of five balloons", BOTH), ("Two dogs and THREE cats’ toys 🐶🐶", BOTH), ("seven seven seven", BOTH),
    ("A set of 6 vintage glass bottles — blue, green & amber (c. 1920)", BOTH),
    # long: truncation keeps bos ... eos within the context length
    ("cat " * 100, BOTH), ("a" * 300, BOTH), ("supercalifragilisticexpialidocious" * 10, BOTH),
    (" ".join(str(i) for i in range(200)), BOTH), ("🐱" * 120, BOTH), ("three cats " * 37 + "end", BOTH),
    ("word " * 75, (77,)), ("word " * 76, (77,)), ("word " * 30, (32,)), ("word " * 31, (32,)),
]


def load_reference():
    """CLIPTokenizer exactly as countclip.model.hf_clip.create_hf_clip builds it."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import CLIPTokenizer

    from countclip.model.base import clip_bpe_dir

    return CLIPTokenizer.from_pretrained(clip_bpe_dir())


def encode(tokenizer, texts: list[str], context_length: int) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, truncation=True, max_length=context_length)["input_ids"]]


def make_vectors(tokenizer) -> dict:
    import transformers

    cases = []
    for text, lengths in CASES:
        for length in lengths:
            cases.append({"text": text, "context_length": length, "ids": encode(tokenizer, [text], length)[0]})
    return {
        "description": "CLIPTokenizer (transformers, tokenizers backend) on countclip/assets/clip-bpe; "
                       "truncation=True, max_length=context_length. Regenerate with scripts/generators/make_tokenizer_vectors.py.",
        "transformers": transformers.__version__,
        "cases": cases,
    }


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write the edge-case vectors JSON here")
    mode.add_argument("--encode", action="store_true", help="encode {texts, context_length} from stdin as JSON")
    args = parser.parse_args(argv)
    tokenizer = load_reference()
    if args.encode:
        request = json.load(sys.stdin)
        ids = encode(tokenizer, list(request["texts"]), int(request["context_length"]))
        json.dump({"ids": ids}, sys.stdout)
        return 0
    vectors = make_vectors(tokenizer)
    # One case per line: readable diffs when the reference tokenizer changes.
    count = len(vectors["cases"])
    cases = ",\n  ".join(json.dumps(case, ensure_ascii=False) for case in vectors.pop("cases"))
    head = json.dumps(vectors, ensure_ascii=False, indent=1)[:-2]
    write_atomic(args.out, f'{head},\n "cases": [\n  {cases}\n ]\n}}\n')
    print(f"wrote {count} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
