#!/usr/bin/env python
"""Benchmark `countclip mine` against a naive pandas + per-row count-core baseline, same run.

    training/.venv/bin/python scripts/bench_mine.py --rows 5000000 --workers 2

1. Generates a parquet of `--rows` captions (columns URL, TEXT). Captions are drawn from the
   real LAION sample in ../shared/captions (so the share of numbers, ages, sizes and counts is
   LAION's); each gets a random suffix word so captions are (almost all) distinct and the
   memo in the miner cannot make the work vanish. Without ../shared a synthetic template set
   is used (and said so).
2. Baseline: pandas.read_parquet + `find_count` on every row in a Python loop + pandas
   groupby sampling: what one writes without thinking about scale.
3. `countclip mine` (pre-filter + process pool), end to end including its output files.
Checks both select the same eligible captions per count, then prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SHARED_CAPTIONS = REPO.parent / "shared" / "captions" / "laion-captions.jsonl"


def templates() -> tuple[list[str], str]:
    if SHARED_CAPTIONS.is_file():
        lines = SHARED_CAPTIONS.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["text"] for line in lines if line.strip()], str(SHARED_CAPTIONS)
    rng = np.random.default_rng(0)
    nouns = ["dogs", "cats", "chairs", "apples", "people", "cars", "birds", "cups"]
    numbers = ["two", "three", "4", "five", "10", "2014", "3 years old", "5 kg", "1"]
    plain = ["a photo of a beach", "red dress for women", "logo design", "vintage poster", "home decor"]
    out = [f"{numbers[rng.integers(len(numbers))]} {nouns[rng.integers(len(nouns))]} on a table" for _ in range(300)]
    return out + plain * 140, "synthetic templates (../shared absent)"


def generate(path: Path, rows: int, seed: int, distinct: float) -> str:
    """`distinct`: share of rows given a random suffix word (made distinct); the rest repeat templates."""
    caps, origin = templates()
    rng = np.random.default_rng(seed)
    words = sorted({w for c in caps for w in c.lower().split() if w.isalpha() and len(w) > 3})
    base = pa.array(caps).take(pa.array(rng.integers(0, len(caps), rows)))
    suffix = pa.array(words).take(pa.array(rng.integers(0, len(words), rows)))
    suffixed = pc.binary_join_element_wise(base, suffix, " ")
    text = pc.if_else(pa.array(rng.random(rows) < distinct), suffixed, base)
    urls = pc.binary_join_element_wise("https://img.example.com/", pa.array(np.arange(rows).astype(str)), ".jpg", "")
    pq.write_table(pa.table({"URL": urls, "TEXT": text}), path, row_group_size=131_072)
    return origin


def baseline(path: Path, cap: int, seed: int) -> tuple[dict[int, int], float]:
    import pandas as pd

    from countclip.counts import find_count

    started = time.perf_counter()
    df = pd.read_parquet(path, columns=["URL", "TEXT"])
    rows = []
    for i, (url, text) in enumerate(zip(df["URL"], df["TEXT"])):
        if isinstance(text, str):
            match = find_count(text)
            if match is not None and 2 <= match.count <= 10 and match.noun:
                rows.append((url, text, match.count, match.noun, i))
    selected = pd.DataFrame(rows, columns=["url", "caption", "count", "noun", "row"])
    sampled = selected.groupby("count", group_keys=False).apply(lambda g: g.sample(min(len(g), cap), random_state=seed))
    elapsed = time.perf_counter() - started
    assert len(sampled) <= 9 * cap
    return {int(k): int(v) for k, v in selected["count"].value_counts().items()}, elapsed


def run_mine(path: Path, out: Path, cap: int, workers: int) -> tuple[dict, float]:
    from countclip.mining import mine

    started = time.perf_counter()
    code = mine.main([str(path), "--out", str(out), "--cap-per-count", str(cap), "--workers", str(workers)])
    elapsed = time.perf_counter() - started
    if code != 0:
        sys.exit(f"countclip mine failed with exit code {code}")
    return json.loads((out / mine.STATS_NAME).read_text()), elapsed


def core_fingerprint() -> str:
    """The count core's source hash: it must not change between the two timed paths."""
    import hashlib

    import countclip.counts

    return hashlib.sha256(Path(countclip.counts.__file__).read_bytes()).hexdigest()[:12]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap", type=int, default=50_000, help="--cap-per-count for both paths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distinct", type=float, default=1.0,
                        help="share of captions made distinct by a random suffix word (1.0: no repeats to memoise)")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp:
        data = Path(tmp) / "captions.parquet"
        t0 = time.perf_counter()
        origin = generate(data, args.rows, args.seed, args.distinct)
        print(f"generated {args.rows:,} captions from {origin} in {time.perf_counter() - t0:.1f}s "
              f"({data.stat().st_size / 2**20:.0f} MiB parquet); {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} (other processes share these cores: compare the two paths, same run)")
        core_before = core_fingerprint()
        stats, mine_s = run_mine(data, Path(tmp) / "mined", args.cap, args.workers)
        seconds = stats["worker_seconds"]
        print(f"\ncountclip mine ({args.workers} workers): {mine_s:.2f}s end to end, "
              f"{args.rows / mine_s:,.0f} captions/s; pre-filter passed "
              f"{stats['prefilter_candidates'] / args.rows:.1%} to the count core, which took "
              f"{seconds['count_core_s']:.1f}s of {seconds['worker_s']:.1f}s worker time "
              f"({seconds['count_core_s'] / max(1, stats['prefilter_candidates']) * 1e6:.0f} us per candidate)")
        rest = seconds["worker_s"] - seconds["count_core_s"]
        print(f"  everything but the count core (read, validate, pre-filter, keys, sampling): {rest:.1f}s of worker "
              f"time, i.e. {args.rows * args.workers / rest:,.0f} captions/s on {args.workers} workers if the core were free")
        if args.skip_baseline:
            return 0
        eligible, base_s = baseline(data, args.cap, args.seed)
        print(f"baseline (pandas + per-row find_count, 1 process): {base_s:.2f}s, {args.rows / base_s:,.0f} captions/s")
        if core_fingerprint() != core_before:
            print("the count core's source changed during the run: the comparison is void, run again")
            return 1
        mined = {int(k): v for k, v in stats["eligible_per_count"].items() if v}
        same = mined == eligible
        print(f"speed-up: {base_s / mine_s:.1f}x; eligible captions per count identical: {same}; "
              f"load average now {os.getloadavg()[0]:.1f}")
        if not same:
            print(f"  mine:     {mined}\n  baseline: {eligible}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
