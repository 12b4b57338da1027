"""Inputs of `countclip mine`: parquet metadata (LAION / DataComp style) or WebDataset shards.

Work is split into `Task`s (a parquet file's range of row groups, or one tar shard) so that
parallel processes share big files too, and each task is read as a stream of `Batch`es
(bounded memory whatever the file size). Rows are numbered per source file from 0, so
(source file, row) points back at the exact input row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from countclip.mining.shards import ShardError, iter_samples

PARQUET_SUFFIXES = (".parquet", ".pq")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class InputError(ValueError):
    """Input that cannot be mined as asked (missing column, unreadable file)."""


class UnreadableInput(InputError):
    """A file (or part of one) that cannot be read: damaged, truncated, not parquet."""


@dataclass(frozen=True)
class Columns:
    url: str = "URL"
    caption: str = "TEXT"


@dataclass(frozen=True)
class Task:
    path: str
    kind: str  # "parquet" | "webdataset"
    row_groups: tuple[int, ...] = ()
    first_row: int = 0  # row number (within the file) of the task's first row
    num_rows: int = 0  # known for parquet; 0 for shards (not known before reading)
    group_rows: tuple[int, ...] = ()  # rows in each of row_groups (parquet)

    def split(self) -> list[Task]:
        """One task per row group (the same rows, numbered the same)."""
        if len(self.row_groups) <= 1 or len(self.group_rows) != len(self.row_groups):
            return [self]  # one group, or sizes unknown
        tasks, first = [], self.first_row
        for group, rows in zip(self.row_groups, self.group_rows):
            tasks.append(Task(self.path, self.kind, (group,), first, rows, (rows,)))
            first += rows
        return tasks


@dataclass
class Batch:
    captions: pa.Array  # string or binary; may hold nulls
    urls: pa.Array | None  # None when the source has no URLs (shards without json urls)
    first_row: int  # rows are first_row, first_row + 1, ...


def source_kind(path: Path) -> str:
    if path.name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if path.name.endswith(TAR_SUFFIXES):
        return "webdataset"
    raise InputError(f"{path}: unknown input type (expected {', '.join(PARQUET_SUFFIXES + TAR_SUFFIXES)})")


def plan_tasks(paths: list[Path], columns: Columns, rows_per_task: int,
               skip_unreadable: bool = False, split_last: int = 0) -> tuple[list[Task], list[dict]]:
    """(tasks, failures) for all inputs; parquet schemas are checked here, before any work.

    An unreadable parquet file is an error, or with `skip_unreadable` a recorded failure.
    A missing column is always an error: it means the wrong column was asked for.
    The last `split_last` tasks are split into one task per row group: parallel processes
    then run out of work at nearly the same time, instead of one waiting while another
    finishes a whole task.
    """
    tasks: list[Task] = []
    failures: list[dict] = []
    for path in paths:
        if source_kind(path) == "webdataset":
            tasks.append(Task(str(path), "webdataset"))
            continue
        try:
            tasks.extend(_parquet_tasks(path, columns, rows_per_task))
        except UnreadableInput as error:
            if not skip_unreadable:
                raise
            failures.append({"path": str(path), "error": str(error)})
    if split_last > 0:
        tasks = tasks[:-split_last] + [part for task in tasks[-split_last:] for part in task.split()]
    return tasks, failures


def _parquet_tasks(path: Path, columns: Columns, rows_per_task: int) -> list[Task]:
    metadata = open_parquet(path).metadata
    schema = metadata.schema.to_arrow_schema()
    check_columns(path, schema.names, [columns.caption, columns.url])
    for name in (columns.caption, columns.url):
        kind = schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
                or pa.types.is_large_binary(kind)):
            raise InputError(f"{path}: column {name!r} has type {kind}; expected text (string or binary)")
    tasks, groups, sizes, first = [], [], [], 0
    for index in range(metadata.num_row_groups):
        groups.append(index)
        sizes.append(metadata.row_group(index).num_rows)
        rows = sum(sizes)
        if rows >= rows_per_task or index == metadata.num_row_groups - 1:
            tasks.append(Task(str(path), "parquet", tuple(groups), first, rows, tuple(sizes)))
            first, groups, sizes = first + rows, [], []
    return tasks


def open_parquet(path: str | Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise UnreadableInput(f"{path}: not a readable parquet file ({error})") from error


def check_columns(path: str | Path, found: list[str], wanted: list[str]) -> None:
    for column in wanted:
        if column not in found:
            raise InputError(f"{path}: column {column!r} not found; columns in this file: {', '.join(found)}"
                             " (choose others with --url-col / --caption-col)")


def iter_batches(task: Task, columns: Columns, batch_size: int, problems: Counter) -> Iterator[Batch]:
    if task.kind == "parquet":
        yield from _parquet_batches(task, columns, batch_size)
    else:
        yield from _shard_batches(task, batch_size, problems)


def _parquet_batches(task: Task, columns: Columns, batch_size: int) -> Iterator[Batch]:
    reader = open_parquet(task.path)
    row = task.first_row
    try:
        for record_batch in reader.iter_batches(batch_size=batch_size, row_groups=list(task.row_groups),
                                                columns=[columns.caption, columns.url], use_threads=False):
            yield Batch(record_batch.column(columns.caption), record_batch.column(columns.url), row)
            row += record_batch.num_rows
    except (pa.ArrowException, OSError) as error:
        raise UnreadableInput(f"{task.path}: cannot read rows from {row} on ({error})") from error


def _shard_batches(task: Task, batch_size: int, problems: Counter) -> Iterator[Batch]:
    """Captions from `{key}.txt`, URLs from `{key}.json`'s "url" (img2dataset writes it)."""
    captions: list[bytes | None] = []
    urls: list[str | None] = []
    row = 0
    try:
        for sample in iter_samples(task.path, problems):
            captions.append(sample.files.get("txt"))
            urls.append(_url_of(sample.files.get("json"), problems))
            if len(captions) == batch_size:
                yield _shard_batch(captions, urls, row)
                row += len(captions)
                captions, urls = [], []
    except ShardError as error:
        raise UnreadableInput(str(error)) from error
    if captions:
        yield _shard_batch(captions, urls, row)


def _shard_batch(captions: list[bytes | None], urls: list[str | None], row: int) -> Batch:
    url_array = pa.array(urls, type=pa.string()) if any(u is not None for u in urls) else None
    return Batch(pa.array(captions, type=pa.binary()), url_array, row)


def _url_of(raw: bytes | None, problems: Counter) -> str | None:
    if raw is None:
        return None
    try:
        url = json.loads(raw).get("url")
    except (ValueError, AttributeError):
        problems["unreadable_json_member"] += 1
        return None
    return url if isinstance(url, str) else None
