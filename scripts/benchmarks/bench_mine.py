#!/usr/bin/env python
"""Benchmark `countclip mine` against a naive pandas + per-row count-core baseline, same run.

    training/.venv/bin/python scripts/benchmarks/bench_mine.py --rows 5000000 --workers 2

1. Generates a parquet of `--rows` captions (columns URL, TEXT), each drawn at random from the
   real LAION sample in ../shared/captions (22,263 captions), so the shares that decide the
   miner's speed are that sample's. Measured on it (2026-11-27): 36.8 % of captions hold an
   ASCII digit, 30.4 % a numeral of the count core, 23.0 % pass the pre-filter, 9.9 % have a
   count of 2..10 (8.8 % with a noun), and no caption occurs twice. So every generated caption
   is made distinct (`--distinct 1.0`): a unique consonant tag after a line break, which leaves
   the count core's answer unchanged (checked per template, see `neutral`) and adds 7
   characters (real mean: 65). The run prints the generated file's shares next to the real
   ones. Without ../shared a synthetic template set is used (and said so).
2. Baseline: pandas.read_parquet + `find_count` on every row in a Python loop + pandas
   groupby sampling: what one writes without thinking about scale.
3. `countclip mine` (pre-filter + the count core's C port, `countclip/counting/_fastcount.c`, when
   built + process pool), end to end including its output files. `--also-python-core` runs
   it a second time with the count core in Python (`--python-core`) and checks that both
   write the same rows and stats.
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

REPO = Path(__file__).resolve().parents[2]
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


# Row i's tag: i in base 20 written with consonants (never a number word, never a digit).
TAG_LETTERS = "bcdfghjklmnpqrstvwxz"
TAG_SEPARATOR = "\n"


def tags(rows: int) -> pa.Array:
    width = max(1, int(np.ceil(np.log(max(rows, 2)) / np.log(len(TAG_LETTERS)))))
    digits = (np.arange(rows)[:, None] // len(TAG_LETTERS) ** np.arange(width)[::-1]) % len(TAG_LETTERS)
    letters = np.frombuffer(TAG_LETTERS.encode(), dtype="S1")[digits]
    return pa.array(letters.view(f"S{width}").ravel()).cast(pa.string())


def neutral(caps: list[str]) -> np.ndarray:
    """Templates whose count-core result a tag after TAG_SEPARATOR leaves unchanged.

    After a line break no numeral's following words change (the core reads blanks only), no
    numeral appears (the tag has none), and a numeral at the very end sees "\n" instead of
    nothing next to it, which only its "age in apposition" rule reads: checked here."""
    from countclip.counting.core import find_count

    def result(text: str) -> tuple | None:
        match = find_count(text)
        return None if match is None else (match.count, match.noun)

    return np.array([result(c) == result(c + TAG_SEPARATOR + "bcdfgh") for c in caps])


def generate(path: Path, rows: int, seed: int, distinct: float) -> tuple[str, dict]:
    """Rows draw templates uniformly; `distinct`: share of rows made distinct by a unique tag.

    Tags go after a line break, only on templates where the count core provably gives the
    same answer with one (so every share below is the real sample's, up to sampling), and
    add 7 characters to a caption (real LAION captions: 73 on average)."""
    caps, origin = templates()
    rng = np.random.default_rng(seed)
    ok = neutral(caps)
    pick = rng.integers(0, len(caps), rows)
    base = pa.array(caps).take(pa.array(pick))
    tagged = pc.binary_join_element_wise(base, tags(rows), TAG_SEPARATOR)
    text = pc.if_else(pa.array((rng.random(rows) < distinct) & ok[pick]), tagged, base)
    urls = pc.binary_join_element_wise("https://img.example.com/", pa.array(np.arange(rows).astype(str)), ".jpg", "")
    pq.write_table(pa.table({"URL": urls, "TEXT": text}), path, row_group_size=131_072)
    info = {"templates": len(caps), "templates_not_tagged": int((~ok).sum()),
            "distinct_share": pc.count_distinct(text).as_py() / rows,
            "digit_share": pc.sum(pc.match_substring_regex(text, "[0-9]")).as_py() / rows,
            "mean_length": pc.mean(pc.utf8_length(text)).as_py()}
    return origin, info


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

    from countclip.counting.core import find_count

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


def run_mine(path: Path, out: Path, cap: int, workers: int, *extra: str) -> dict:
    import multiprocessing

    from countclip.mining import mine

    code = mine.main([str(path), "--out", str(out), "--cap-per-count", str(cap), "--workers", str(workers), *extra])
    if code != 0:
        sys.exit(f"countclip mine failed with exit code {code}")
    # As the CLI's process does when it exits: wait for the worker processes (they may still be
    # tearing down), so that the wall time includes them and their CPU time is counted.
    for child in multiprocessing.active_children():
        child.join()
    return json.loads((out / mine.STATS_NAME).read_text())


def _spin(n: int) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i
    return time.perf_counter() - started


def parallel_speedup(n: int = 10_000_000) -> float:
    """How much more CPU-bound work two processes do than one on this machine (2.0 on two free
    physical cores; less where the two CPUs are hyperthreads of one core or are shared)."""
    import multiprocessing

    alone = _spin(n)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        both = pool.map(_spin, [n, n])
    return 2 * alone / max(both)


def real_shares() -> dict | None:
    """The shares of the real sample, measured now with the snapshot's count core."""
    if not SHARED_CAPTIONS.is_file():
        return None
    from countclip.counting.core import find_count
    from countclip.mining.prefilter import Prefilter

    caps, _ = templates()
    matches = [find_count(c) for c in caps]
    in_range = [m for m in matches if m is not None and 2 <= m.count <= 10]
    return {"digit": pc.sum(pc.match_substring_regex(pa.array(caps), "[0-9]")).as_py() / len(caps),
            "prefilter": pc.sum(Prefilter().mask(pa.array(caps))).as_py() / len(caps),
            "eligible": sum(1 for m in in_range if m.noun) / len(caps),
            "distinct": len(set(caps)) / len(caps)}


def print_shares(info: dict, stats: dict, rows: int) -> None:
    real = real_shares()
    got = {"digit": info["digit_share"], "prefilter": stats["prefilter_candidates"] / rows,
           "eligible": stats["eligible_total"] / rows, "distinct": info["distinct_share"]}
    names = {"digit": "hold an ASCII digit", "prefilter": "pass the pre-filter",
             "eligible": "count 2..10 with a noun (eligible)", "distinct": "distinct"}
    print("\nshares of captions            generated   real sample")
    for key, name in names.items():
        print(f"  {name:34s} {got[key]:7.2%}   " + (f"{real[key]:7.2%}" if real else "   n/a"))


def freeze_package(tmp: Path) -> str:
    """Run both paths on a snapshot of `countclip`: the count core is edited while we measure."""
    snapshot = tmp / "snapshot"
    shutil.copytree(REPO / "training" / "countclip", snapshot / "countclip",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(snapshot))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snapshot), os.environ.get("PYTHONPATH")]))
    source = (snapshot / "countclip" / "counting" / "core.py").read_bytes()
    return hashlib.sha256(source).hexdigest()[:12]


def report(args: argparse.Namespace, stats: dict, mined: Timing, base: Timing | None, same: bool | None) -> None:
    rows, cpu = args.rows, stats["worker_cpu_seconds"]
    print(f"\ncountclip mine, {args.workers} worker processes: {mined.wall_s:.1f}s wall ({rows / mined.wall_s:,.0f} captions/s), "
          f"{mined.cpu_s:.1f} CPU-s in all")
    candidates, proven = stats["prefilter_candidates"], stats.get("proven_abstentions", 0)
    core_calls = candidates - proven
    core = ", ".join(stats.get("count_core", [])) or "?"
    if core == "c":  # the C core runs the pre-filter on every caption and counts the candidates
        print(f"  pre-filter passed {candidates / rows:.1%} of captions; the C pre-filter and count core, in one "
              f"pass, used {cpu['count_core_cpu_s']:.1f} of the workers' {cpu['worker_cpu_s']:.1f} CPU-s "
              f"({cpu['count_core_cpu_s'] / rows * 1e9:.0f} ns per caption read)")
        what = "read, validate, keys, sampling"
    else:
        proofs = f"bulk proofs decided {proven / max(1, candidates):.1%} of those (abstentions); " if proven else ""
        print(f"  pre-filter passed {candidates / rows:.1%} of captions; {proofs}the count core ({core}) read "
              f"{core_calls / rows:.1%} of captions and used {cpu['count_core_cpu_s']:.1f} of the workers' "
              f"{cpu['worker_cpu_s']:.1f} CPU-s ({cpu['count_core_cpu_s'] / max(1, core_calls) * 1e6:.2f} us per call)")
        what = "read, validate, pre-filter, proofs, keys, sampling"
    rest = cpu["worker_cpu_s"] - cpu["count_core_cpu_s"]
    print(f"  everything else ({what}): {rest:.1f} CPU-s = "
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
                        help="share of captions made distinct by a unique tag (1.0, as in the real sample: "
                        "no repeats to memoise)")
    parser.add_argument("--also-without-proofs", action="store_true",
                        help="also run countclip mine --no-proofs (every candidate to the count core)")
    parser.add_argument("--also-python-core", action="store_true",
                        help="also run countclip mine --python-core (the count core in Python, not its C port)")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp_name:
        tmp = Path(tmp_name)
        core = freeze_package(tmp)
        data = tmp / "captions.parquet"
        started = time.perf_counter()
        origin, info = generate(data, args.rows, args.seed, args.distinct)
        print(f"generated {args.rows:,} captions ({info['distinct_share']:.2%} distinct) from {origin} in "
              f"{time.perf_counter() - started:.1f}s ({data.stat().st_size / 2**20:.0f} MiB parquet); count core "
              f"snapshot {core}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        if args.also_without_proofs:
            with timed() as exact:
                exact_stats = run_mine(data, tmp / "exact", args.cap, args.workers, "--no-proofs")
        if args.also_python_core:
            with timed() as pure:
                pure_stats = run_mine(data, tmp / "pure", args.cap, args.workers, "--python-core")
        with timed() as mined:
            stats = run_mine(data, tmp / "mined", args.cap, args.workers)
        print_shares(info, stats, args.rows)
        if args.also_without_proofs:
            strip = ("elapsed_s", "captions_per_s", "worker_cpu_seconds", "command", "proven_abstentions")
            same_stats = {k: v for k, v in stats.items() if k not in strip} == \
                         {k: v for k, v in exact_stats.items() if k not in strip}
            print(f"\nwithout bulk proofs (--no-proofs): {exact[0].wall_s:.1f}s wall, {exact[0].cpu_s:.1f} CPU-s; "
                  f"core {exact_stats['worker_cpu_seconds']['count_core_cpu_s']:.1f} CPU-s; same stats: {same_stats}")
        if args.also_python_core:
            strip = ("elapsed_s", "captions_per_s", "worker_cpu_seconds", "command", "proven_abstentions", "count_core")
            same_stats = {k: v for k, v in stats.items() if k not in strip} == \
                         {k: v for k, v in pure_stats.items() if k not in strip}
            same_rows = pq.read_table(tmp / "pure" / "counting.parquet").equals(pq.read_table(tmp / "mined" / "counting.parquet"))
            print(f"\nwith the Python count core (--python-core, {', '.join(pure_stats['count_core'])}): "
                  f"{pure[0].wall_s:.1f}s wall, {pure[0].cpu_s:.1f} CPU-s; core "
                  f"{pure_stats['worker_cpu_seconds']['count_core_cpu_s']:.1f} CPU-s; same output: {same_rows}, "
                  f"same stats: {same_stats}")
        base, same = None, None
        if not args.skip_baseline:
            with timed() as base_timing:
                eligible = baseline(data, args.cap, args.seed)
            base = base_timing[0]
            same = {int(k): v for k, v in stats["eligible_per_count"].items() if v} == eligible
        report(args, stats, mined[0], base, same)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}; two processes here do "
              f"{parallel_speedup():.2f}x the CPU-bound work of one (2.00 on two free physical cores)")
    return 0 if same is not False else 1


if __name__ == "__main__":
    sys.exit(main())
