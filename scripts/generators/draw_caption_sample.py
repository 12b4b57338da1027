"""Draw a fresh sample of real captions to label by hand (issue 21's held-out sets).

    python scripts/generators/draw_caption_sample.py --seed 2103 --out /tmp/held-out-3.jsonl

From the captions of ../shared/captions/laion-captions.jsonl not already in the labelled file,
in the strata and proportions that `test/vectors/laion-count-labels.md` describes: captions the
naive number-word filter flags, captions it misses that hold a digit or a counting idiom
(`other-numeral`), and the rest; each stratum by `rng.sample` in that order, then all of them
shuffled with the same generator. Each output row holds the caption's SHA-256, its stratum and
its text, so that a labeller can read it; only hashes and labels go into the repository.
The draw runs no count core: a sample is labelled before anything has scored it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTIONS = REPO.parent / "shared" / "captions" / "laion-captions.jsonl"
LABELS = REPO / "test" / "vectors" / "laion-count-labels.jsonl"
NAIVE_RE = re.compile(r"(?i)\b(two|three|four|five|six|seven|eight|nine|ten|[2-9]|10)\b")
OTHER_NUMERAL_RE = re.compile(r"(?i)\d|\b(pair|couple|dozen|one|eleven|twelve|single|twin|trio|duo)\b")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratum(text: str) -> str:
    if NAIVE_RE.search(text):
        return "flagged"
    return "other-numeral" if OTHER_NUMERAL_RE.search(text) else "rest"


def draw(seed: int, sizes: dict[str, int], captions: Path = CAPTIONS, labels: Path = LABELS) -> list[dict]:
    labelled = {json.loads(line)["sha256"] for line in labels.read_text("utf-8").splitlines() if line.strip()}
    pools: dict[str, list[str]] = {name: [] for name in sizes}
    seen: set[str] = set()
    for line in captions.read_text("utf-8").splitlines():
        text = json.loads(line)["text"]
        digest = sha256(text)
        if digest in labelled or digest in seen:
            continue
        seen.add(digest)
        pools[stratum(text)].append(text)
    rng = random.Random(seed)
    rows = [{"sha256": sha256(text), "stratum": name, "text": text}
            for name, size in sizes.items() for text in rng.sample(pools[name], size)]
    rng.shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--flagged", type=int, default=420)
    parser.add_argument("--other-numeral", type=int, default=120)
    parser.add_argument("--rest", type=int, default=60)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = draw(args.seed, {"flagged": args.flagged, "other-numeral": args.other_numeral, "rest": args.rest})
    args.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    print(f"{len(rows)} captions -> {args.out}")


if __name__ == "__main__":
    main()
