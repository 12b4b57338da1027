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
Checks both select the same eligible captions per count, then prints wall and CPU figures:
the machine may be shared, so CPU seconds (this process plus its workers) say what the work
costs, and the wall-clock speed on free cores is derived from them. Both paths run on a
snapshot of the `countclip` package, so edits made meanwhile cannot skew the comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class Timing:
    wall_s: float
    cpu_s: float  # this process and its finished children: what the work cost, whatever else ran


@contextlib.contextmanager
def timed() -> Iterator[list[Timing]]:
    """Wall and CPU time of the block (children's CPU counts once they are reaped)."""
    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    out: list[Timing] = []
    wall, used = time.perf_counter(), cpu()
    yield out
    out.append(Timing(time.perf_counter() - wall, cpu() - used))


def baseline(path: Path, cap: int, seed: int) -> dict[int, int]:
    """Naive mining: pandas, the count core on every row in a Python loop, pandas sampling."""
    import pandas as pd

    from countclip.counts import find_count

    df = pd.read_parquet(path, columns=["URL", "TEXT"])
    rows = []
    for i, (url, text) in enumerate(zip(df["URL"], df["TEXT"])):
        if isinstance(text, str):
            match = find_count(text)
            if match is not None and 2 <= match.count <= 10 and match.noun:
                rows.append((url, text, match.count, match.noun, i))
    selected = pd.DataFrame(rows, columns=["url", "caption", "count", "noun", "row"])
    sampled = selected.groupby("count", group_keys=False).apply(lambda g: g.sample(min(len(g), cap), random_state=seed))
    assert len(sampled) <= 9 * cap
    return {int(k): int(v) for k, v in selected["count"].value_counts().items()}


def run_mine(path: Path, out: Path, cap: int, workers: int) -> dict:
    from countclip.mining import mine

    code = mine.main([str(path), "--out", str(out), "--cap-per-count", str(cap), "--workers", str(workers)])
    if code != 0:
        sys.exit(f"countclip mine failed with exit code {code}")
    return json.loads((out / mine.STATS_NAME).read_text())


def freeze_package(tmp: Path) -> str:
    """Run both paths on a snapshot of `countclip`: the count core is edited while we measure."""
    snapshot = tmp / "snapshot"
    shutil.copytree(REPO / "training" / "countclip", snapshot / "countclip",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(snapshot))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snapshot), os.environ.get("PYTHONPATH")]))
    source = (snapshot / "countclip" / "counts.py").read_bytes()
    return hashlib.sha256(source).hexdigest()[:12]


def report(args: argparse.Namespace, stats: dict, mined: Timing, base: Timing | None, same: bool | None) -> None:
    rows, cpu = args.rows, stats["worker_cpu_seconds"]
    print(f"\ncountclip mine, {args.workers} worker processes: {mined.wall_s:.1f}s wall ({rows / mined.wall_s:,.0f} captions/s), "
          f"{mined.cpu_s:.1f} CPU-s in all")
    print(f"  pre-filter passed {stats['prefilter_candidates'] / rows:.1%} of captions to the count core; the core used "
          f"{cpu['count_core_cpu_s']:.1f} of the workers' {cpu['worker_cpu_s']:.1f} CPU-s "
          f"({cpu['count_core_cpu_s'] / max(1, stats['prefilter_candidates']) * 1e6:.0f} us per candidate)")
    rest = cpu["worker_cpu_s"] - cpu["count_core_cpu_s"]
    print(f"  everything else (read, validate, pre-filter, keys, sampling): {rest:.1f} CPU-s = "
          f"{rows * args.workers / rest:,.0f} captions/s on {args.workers} free cores without the core's share")
    # Pessimistic: everything outside the workers' tasks (start-up, merge, output) counted as serial.
    free_s = (mined.cpu_s - cpu["worker_cpu_s"]) + cpu["worker_cpu_s"] / args.workers
    print(f"  on {args.workers} free cores the whole run would take about {free_s:.1f}s = {rows / free_s:,.0f} captions/s")
    if base is None:
        return
    print(f"baseline, pandas + per-row find_count, 1 process: {base.wall_s:.1f}s wall "
          f"({rows / base.wall_s:,.0f} captions/s), {base.cpu_s:.1f} CPU-s")
    print(f"speed-up: {base.wall_s / mined.wall_s:.1f}x wall (this machine, now); {base.cpu_s / mined.cpu_s:.1f}x less CPU; "
          f"about {base.cpu_s / free_s:.1f}x on {args.workers} free cores (the baseline uses one)")
    print(f"eligible captions per count identical in both paths: {same}")


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
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp_name:
        tmp = Path(tmp_name)
        core = freeze_package(tmp)
        data = tmp / "captions.parquet"
        started = time.perf_counter()
        origin = generate(data, args.rows, args.seed, args.distinct)
        print(f"generated {args.rows:,} captions ({args.distinct:.0%} made distinct) from {origin} in "
              f"{time.perf_counter() - started:.1f}s ({data.stat().st_size / 2**20:.0f} MiB parquet); count core "
              f"snapshot {core}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        with timed() as mined:
            stats = run_mine(data, tmp / "mined", args.cap, args.workers)
        base, same = None, None
        if not args.skip_baseline:
            with timed() as base_timing:
                eligible = baseline(data, args.cap, args.seed)
            base = base_timing[0]
            same = {int(k): v for k, v in stats["eligible_per_count"].items() if v} == eligible
        report(args, stats, mined[0], base, same)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0 if same is not False else 1


if __name__ == "__main__":
    sys.exit(main())
