"""`countclip mine`: balanced counting captions from web-scale caption metadata.

    countclip mine laion/part-*.parquet --out mined/ --cap-per-count 100000 --workers 16

Reads parquet metadata (columns `URL`, `TEXT` by default) or WebDataset shards, keeps captions
whose count is 2..10 (per `countclip.counting`), samples at most `--cap-per-count` per count
(seeded, deterministic) and optionally `--cap-per-noun`, and writes into `--out`:

    counting.parquet   url, caption, count, noun, source_file, row  (img2dataset input)
    stats.json         rows read, eligible and selected per count, exclusions per reason
    histogram.png      eligible vs selected captions per count
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shlex
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from countclip.mining import select
from countclip.mining.outputs import atomic_write, write_count_histogram, write_json
from countclip.mining.prefilter import Prefilter
from countclip.mining.prove import AbstentionProver
from countclip.mining.rows import ROWS_SCHEMA, Caps
from countclip.mining.select import CountReader
from countclip.mining.shards import resolve_paths
from countclip.mining.sources import (PARQUET_SUFFIXES, TAR_SUFFIXES, Columns, InputError, Task, UnreadableInput,
                                     iter_batches, plan_tasks)

if TYPE_CHECKING:  # polars is imported by the driver only, when it merges results (see _merged)
    import polars as pl

    from countclip.mining.sample import Merged

OUTPUT_NAME, STATS_NAME, HISTOGRAM_NAME = "counting.parquet", "stats.json", "histogram.png"
OUTPUT_COLUMNS = ["url", "caption", "count", "noun", "source_file", "row"]
PRUNE_EVERY_ROWS = 200_000  # eligible rows buffered before a bottom-k prune


@dataclass(frozen=True)
class MineConfig:
    columns: Columns = Columns()
    caps: Caps = Caps()
    seed: int = 0
    batch_size: int = 65_536
    require_noun: bool = True
    skip_bad_inputs: bool = False
    explain_abstentions: bool = False
    prove_abstentions: bool = True  # decide provable abstentions in bulk (prove.py); same output
    c_core: bool = True  # the count core's C port when built (fastcount.py); same output


@dataclass
class TaskResult:
    rows: pa.Table  # ROWS_SCHEMA
    stats: Counter = field(default_factory=Counter)
    duplicates: int = 0
    failure: dict | None = None
    timing: dict = field(default_factory=dict)  # CPU seconds: worker_cpu_s, count_core_cpu_s
    core: str = ""  # the count core's implementation: "c" or "python (why)"


# ----------------------------------------------------------------------------- worker side

_WORKER: dict[str, object] = {}


def _worker_tools(config: MineConfig) -> tuple[Prefilter, CountReader, AbstentionProver | None]:
    """One pre-filter, count reader and prover per process, shared by its tasks."""
    settings = (config.explain_abstentions, config.c_core)
    if _WORKER.get("settings") != settings:
        _WORKER.update(prefilter=Prefilter(), reader=CountReader(config.explain_abstentions, use_c=config.c_core),
                       settings=settings)
    reader: CountReader = _WORKER["reader"]  # type: ignore[assignment]
    # The prover knows only that the core declines, not why: off when reasons are asked for.
    # Against the C core it costs more RE2 work than the core calls it saves: off then too.
    prove = config.prove_abstentions and not config.explain_abstentions and reader.implementation != "c"
    if prove and "prover" not in _WORKER:
        _WORKER["prover"] = AbstentionProver()
    prover: AbstentionProver | None = _WORKER["prover"] if prove else None  # type: ignore[assignment]
    if prover is not None and not prover.enabled:
        prover = None
    return _WORKER["prefilter"], reader, prover  # type: ignore[return-value]


def run_task(task: Task, config: MineConfig) -> TaskResult:
    """Mine one task; with `skip_bad_inputs`, unreadable input becomes a recorded failure."""
    try:
        return _run_task(task, config)
    except UnreadableInput as error:
        if not config.skip_bad_inputs:
            raise
        return TaskResult(ROWS_SCHEMA.empty_table(), Counter({"failed_tasks": 1}),
                          failure={"path": task.path, "row_groups": list(task.row_groups), "error": str(error)})


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC inside a task: it allocates millions of short-lived objects and no cycles,
    and the collector's passes over every live object cost a tenth of the task's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run_task(task: Task, config: MineConfig) -> TaskResult:
    with _gc_paused():
        return _mine_task(task, config)


def _mine_task(task: Task, config: MineConfig) -> TaskResult:
    started = time.process_time()  # CPU time: meaningful even when other processes share the cores
    prefilter, reader, prover = _worker_tools(config)
    selector = select.BatchSelector(task.path, config.seed, require_url=task.kind == "parquet",
                                    require_noun=config.require_noun, prefilter=prefilter, reader=reader,
                                    prover=prover)
    problems: Counter = Counter()
    parts, duplicates = [], 0
    for batch in iter_batches(task, config.columns, config.batch_size, problems):
        selector.add(batch.captions, batch.urls, batch.first_row)
        if selector.n_rows >= PRUNE_EVERY_ROWS:
            rows, dups = select.prune_rows(selector.take_rows(), config.caps)
            parts.append(rows)
            duplicates += dups
    parts.append(selector.take_rows())
    rows, dups = select.prune_rows(pa.concat_tables(parts), config.caps)
    stats = selector.stats + Counter({f"problem:{k}": v for k, v in problems.items()})
    timing = {"worker_cpu_s": time.process_time() - started, "count_core_cpu_s": selector.core_seconds}
    return TaskResult(rows, stats, duplicates + dups, timing=timing, core=reader.implementation)


# ----------------------------------------------------------------------------- driver side

@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Processes are the unit of parallelism; libraries' own thread pools would oversubscribe."""
    names = ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "ARROW_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _results(tasks: list[Task], config: MineConfig, workers: int) -> Iterator[TaskResult]:
    """Task results in task order. The driver mines too: `workers` processes with workers - 1
    children to start (each child is a fresh interpreter that imports everything: ~1 CPU-s)."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield run_task(task, config)
        return
    n_children = min(workers, len(tasks)) - 1
    # spawn, not fork: the parent has arrow/polars thread pools that must not be forked.
    with _single_threaded_children():  # children read these when they start
        pool = ProcessPoolExecutor(n_children, mp_context=get_context("spawn"))
        try:
            yield from _shared_with_driver(tasks, config, pool, n_children)
        except BaseException:
            # On an error (or when the consumer stops), stop at once rather than finishing every
            # queued task first.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        # Every result is in: the children exit (a quarter of a second, tearing down their
        # interpreters) while the driver balances and writes the outputs.
        pool.shutdown(wait=False)


def _shared_with_driver(tasks: list[Task], config: MineConfig, pool: ProcessPoolExecutor,
                        n_children: int) -> Iterator[TaskResult]:
    """Children take the next task whenever they are free; so does the driver, between them.

    Each child holds one task in reserve while plenty remain, so that it never waits for the
    driver to finish its own task before it gets the next (that idled a child a third of the
    time); near the end only one each, so the driver is not left waiting on a backlog."""
    queue = deque(enumerate(tasks))
    running: dict[Future, int] = {}
    finished: dict[int, TaskResult] = {}
    next_index = 0
    while queue or running:
        in_flight = 2 * n_children if len(queue) > 2 * n_children else n_children
        while queue and len(running) < in_flight:
            index, task = queue.popleft()
            running[pool.submit(run_task, task, config)] = index
        if queue:
            index, task = queue.popleft()
            finished[index] = run_task(task, config)
        else:
            wait(running, return_when=FIRST_COMPLETED)
        for future in [f for f in running if f.done()]:
            finished[running.pop(future)] = future.result()  # a child's error is raised here
        while next_index in finished:
            yield finished.pop(next_index)
            next_index += 1


def mine(paths: list[Path], config: MineConfig, workers: int, rows_per_task: int = 262_144) -> tuple[pl.DataFrame, dict]:
    """Select and balance; returns (output frame, stats). Raises InputError on bad input."""
    started = time.perf_counter()
    # Twice as many single-row-group tasks at the end as processes that share them.
    tasks, failures = plan_tasks(paths, config.columns, rows_per_task, config.skip_bad_inputs,
                                 split_last=2 * workers if workers > 1 else 0)
    stats: Counter = Counter()
    timing: Counter = Counter()
    merged: Merged | None = None
    cores: set[str] = set()
    for result in _results(tasks, config, workers):
        merged = merged or _merged(config.caps)
        merged.add(result.rows, result.duplicates)
        stats += result.stats
        cores.add(result.core)
        timing.update(result.timing)
        if result.failure:
            failures.append(result.failure)
    frame, duplicates = (merged or _merged(config.caps)).balanced()
    elapsed = time.perf_counter() - started
    report = _stats_report(stats, frame, duplicates, failures, len(paths), len(tasks), elapsed)
    report["worker_cpu_seconds"] = {k: round(v, 3) for k, v in sorted(timing.items())}
    report["count_core"] = sorted(core for core in cores if core)
    return frame, report


def _merged(caps: Caps) -> Merged:
    """polars is imported here, when the first result is in: the worker processes are started
    by then (it takes a quarter of a second to import, and workers never need it)."""
    from countclip.mining.sample import Merged

    return Merged(caps, limit=4 * PRUNE_EVERY_ROWS)


def _stats_report(stats: Counter, frame: pl.DataFrame, duplicates: int, failures: list[dict],
                  n_inputs: int, n_tasks: int, elapsed: float) -> dict:
    counts = range(select.MIN_COUNT, select.MAX_COUNT + 1)
    eligible = {c: stats.get(f"eligible_count_{c}", 0) for c in counts}
    selected = dict(zip(*frame.group_by("count").len().sort("count").to_dict(as_series=False).values()))
    excluded_keys = sorted(k for k in stats if k not in ("rows_read", "prefilter_candidates", "failed_tasks",
                                                         "proven_abstentions")
                           and not k.startswith(("eligible_count_", "problem:")))
    nouns = frame.group_by("noun_key").len().sort(["len", "noun_key"], descending=[True, False]).head(25)
    return {
        "inputs": n_inputs,
        "tasks": n_tasks,
        "rows_read": stats.get("rows_read", 0),
        "prefilter_candidates": stats.get("prefilter_candidates", 0),
        # of those, abstentions proven in bulk (prove.py), counted in excluded.abstained
        "proven_abstentions": stats.get("proven_abstentions", 0),
        "eligible_total": sum(eligible.values()),
        "eligible_per_count": {str(c): eligible[c] for c in counts},
        "selected_total": frame.height,
        "selected_per_count": {str(c): int(selected.get(c, 0)) for c in counts},
        "excluded": {k: stats[k] for k in excluded_keys},
        "duplicates_dropped": duplicates,
        "input_problems": {k.removeprefix("problem:"): v for k, v in sorted(stats.items()) if k.startswith("problem:")},
        "failed_inputs": failures,
        "top_nouns": dict(zip(nouns["noun_key"].to_list(), nouns["len"].to_list())),
        "elapsed_s": round(elapsed, 3),
        "captions_per_s": round(stats.get("rows_read", 0) / elapsed) if elapsed > 0 else None,
    }


def write_outputs(out_dir: Path, frame: pl.DataFrame, stats: dict) -> dict[str, Path]:
    output = frame.select(OUTPUT_COLUMNS)
    # The parquet (written by polars, which releases the GIL, straight from its own strings:
    # a third faster than converting to Arrow first) is written while the histogram is drawn;
    # stats.json comes last: its presence means the run finished.
    with ThreadPoolExecutor(1) as writer:
        parquet = writer.submit(atomic_write, out_dir / OUTPUT_NAME,
                                lambda tmp: output.write_parquet(tmp, compression="zstd"))
        histogram = write_count_histogram(
            out_dir / HISTOGRAM_NAME,
            {"eligible": {int(k): v for k, v in stats["eligible_per_count"].items()},
             "selected": {int(k): v for k, v in stats["selected_per_count"].items()}},
            title=f"counting captions: {stats['selected_total']:,} selected of {stats['rows_read']:,} read")
        paths = {"parquet": parquet.result(), "histogram": histogram}
    paths["stats"] = write_json(out_dir / STATS_NAME, stats)
    return paths


def img2dataset_command(parquet: Path, out_dir: Path) -> str:
    extra = '["count","noun","source_file","row"]'
    return " ".join([
        "img2dataset", "--url_list", shlex.quote(str(parquet)), "--input_format", "parquet",
        "--url_col", "url", "--caption_col", "caption", "--save_additional_columns", shlex.quote(extra),
        "--output_format", "webdataset", "--output_folder", shlex.quote(str(out_dir / "shards")),
        "--image_size", "384", "--resize_mode", "keep_ratio", "--encode_format", "jpg",
        "--processes_count", "16", "--thread_count", "64",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countclip mine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="parquet files / WebDataset .tar shards, directories, globs "
                        "or brace patterns (shard-{00000..00009}.tar)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--url-col", default="URL", help="URL column of parquet inputs (default: URL)")
    parser.add_argument("--caption-col", default="TEXT", help="caption column of parquet inputs (default: TEXT)")
    parser.add_argument("--cap-per-count", type=int, default=None, help="keep at most N captions per count")
    parser.add_argument("--cap-per-noun", type=int, default=None, help="keep at most N captions per noun")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument("--batch-size", type=int, default=65_536, help="rows per streamed batch")
    parser.add_argument("--rows-per-task", type=int, default=262_144, help="rows per unit of parallel work")
    parser.add_argument("--allow-missing-noun", action="store_true",
                        help="keep counts whose noun was not found (verify cannot check them)")
    parser.add_argument("--explain-abstentions", action="store_true",
                        help="break 'abstained' down by the count core's reason (slower)")
    parser.add_argument("--no-proofs", dest="prove_abstentions", action="store_false",
                        help="send every pre-filtered caption to the count core instead of deciding "
                        "provable abstentions in bulk (same output, slower; for checking)")
    parser.add_argument("--python-core", dest="c_core", action="store_false",
                        help="use the Python count core even where its C port is built (same output, "
                        "about 20x slower per caption; for checking)")
    parser.add_argument("--skip-bad-inputs", action="store_true",
                        help="record unreadable files in stats.json and go on, instead of stopping")
    return parser


def config_from_args(args: argparse.Namespace) -> MineConfig:
    for name in ("cap_per_count", "cap_per_noun"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1")
    return MineConfig(Columns(args.url_col, args.caption_col), Caps(args.cap_per_count, args.cap_per_noun),
                      args.seed, args.batch_size, not args.allow_missing_noun, args.skip_bad_inputs,
                      args.explain_abstentions, args.prove_abstentions, args.c_core)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        paths = resolve_paths(args.inputs, PARQUET_SUFFIXES + TAR_SUFFIXES)
        frame, stats = mine(paths, config, args.workers, args.rows_per_task)
    except (InputError, FileNotFoundError) as error:
        print(f"countclip mine: error: {error}", file=sys.stderr)
        return 2
    stats["command"] = "countclip mine " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    stats["config"] = {"seed": config.seed, "cap_per_count": config.caps.per_count,
                       "cap_per_noun": config.caps.per_noun, "require_noun": config.require_noun}
    paths_out = write_outputs(args.out, frame, stats)
    print(f"read {stats['rows_read']:,} captions in {stats['elapsed_s']}s ({stats['captions_per_s'] or 0:,}/s); "
          f"selected {stats['selected_total']:,} of {stats['eligible_total']:,} eligible")
    print("per count: " + ", ".join(f"{c}: {n:,}" for c, n in stats["selected_per_count"].items()))
    if stats["failed_inputs"]:
        print(f"warning: {len(stats['failed_inputs'])} input part(s) skipped, see {paths_out['stats']}", file=sys.stderr)
    print(f"wrote {paths_out['parquet']}, {paths_out['stats']}, {paths_out['histogram']}")
    print("download the images with:\n  " + img2dataset_command(paths_out["parquet"], args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
