#!/usr/bin/env python3
"""Benchmark: find_count throughput on CountBench captions, one core (not a test).

    training/.venv/bin/python scripts/benchmarks/bench_counts.py [--countbench ../shared/countbench/CountBench.json]

Every CountBench caption holds a count, so no caption takes a fast path. Prints the best of
`--repeats` timed passes over all captions, in captions per second of process CPU time;
`implementation`: "mypyc" when the compiled build (countclip/counting/build.py) was loaded,
"python" otherwise (COUNTCLIP_PURE_PYTHON=1 forces it); and `reference_us`: the best time of
a fixed pure-Python loop (`sum(range(1000))`, about 8 us on an idle modern core), so figures
from a loaded or shared machine can be judged.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import timeit

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

from countclip.counting import core as counts  # noqa: E402
from countclip.counting._native import implementation  # noqa: E402

find_count = counts.find_count


def best_rate(captions: list[str], passes: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(passes):
            for text in captions:
                find_count(text)
        best = max(best, passes * len(captions) / (time.process_time() - t0))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--countbench", default=str(ROOT.parent / "shared/countbench/CountBench.json"))
    parser.add_argument("--passes", type=int, default=20, help="passes over the captions per timing")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    captions = [entry["text"] for entry in json.loads(pathlib.Path(args.countbench).read_text("utf-8"))]
    reference_us = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6
    rate = best_rate(captions, args.passes, args.repeats)
    found = sum(find_count(text) is not None for text in captions)
    print(json.dumps({"implementation": implementation(counts), "captions": len(captions), "with_count_found": found,
                      "captions_per_s": round(rate), "reference_us": round(reference_us, 2),
                      "python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
