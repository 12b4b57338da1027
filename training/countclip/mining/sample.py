"""Bottom-k sampling of eligible rows (rows.py; see select.py): dedupe, noun cap, count cap, in polars.

The driver of `countclip mine` merges the tasks' rows here. Tasks prune their own rows with
`select.prune_rows`, which takes the common case (count cap only, no repeated key) in numpy
and hands the rest to `prune` below: this module is imported only where it is needed, so a
worker process does not pay polars' import (a quarter of a second) to mine plain counts.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from countclip.mining.rows import KEY_ORDER, ROWS_SCHEMA, Caps, first_per_count, over_cap, ranks_within, repeated

SCHEMA = {"url": pl.String, "caption": pl.String, "count": pl.Int32, "noun": pl.String,
          "source_file": pl.String, "row": pl.Int64, "key": pl.UInt64, "noun_key": pl.String}


class Merged:
    """The tasks' rows as they come in, pruned whenever they pass `limit` rows, then balanced."""

    def __init__(self, caps: Caps, limit: int):
        self.caps, self.limit = caps, limit
        self.frames: list[pl.DataFrame] = []
        self.duplicates = 0

    def add(self, rows: pa.Table, duplicates: int) -> None:
        self.frames.append(to_frame(rows))
        self.duplicates += duplicates
        if sum(frame.height for frame in self.frames) > self.limit:
            frame, dropped = prune(pl.concat(self.frames), self.caps)
            # Without caps little is pruned: grow the limit so merging stays linear overall.
            self.frames, self.limit = [frame], max(self.limit, 2 * frame.height)
            self.duplicates += dropped

    def balanced(self) -> tuple[pl.DataFrame, int]:
        """The sample (see balance) and the number of duplicates dropped in all."""
        frame, dropped = balance(pl.concat(self.frames) if self.frames else empty_frame(), self.caps)
        return frame, self.duplicates + dropped


def to_frame(rows: pa.Table) -> pl.DataFrame:
    return pl.from_arrow(rows, schema=SCHEMA)  # type: ignore[return-value]


def to_rows(frame: pl.DataFrame) -> pa.Table:
    return frame.to_arrow().cast(ROWS_SCHEMA)


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def deduplicate(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop repeated (url, caption) pairs, keeping the first in sampling order (KEY_ORDER).

    Repeats share a key, so only rows whose key repeats are compared (and sorted); the result's
    row order is not defined."""
    if not repeated(frame["key"].to_numpy()):  # the common case: nothing to do
        return frame, 0
    repeats = frame["key"].is_duplicated()
    kept = frame.filter(repeats).sort(KEY_ORDER).unique(subset=["key", "url", "caption"], keep="first",
                                                           maintain_order=True)
    unique = pl.concat([frame.filter(~repeats), kept])
    return unique, frame.height - unique.height


def prune(frame: pl.DataFrame, caps: Caps) -> tuple[pl.DataFrame, int]:
    """Rows that can still be sampled, after dedupe; safe to apply to any subset of the data.

    A row outside its noun's smallest `per_noun` keys in a subset is outside them globally too,
    so the noun cap can always prune. The count cap only prunes when there is no noun cap,
    because the noun cap (applied first) may remove rows ahead of it globally. The result's
    row order is not defined.
    """
    frame, duplicates = deduplicate(frame)
    if caps.per_noun is not None:
        frame = _head_per_group(frame.sort(KEY_ORDER), "noun_key", caps.per_noun)
    elif caps.per_count is not None:
        if over_cap(frame["count"].to_numpy(), caps.per_count):  # else nothing to prune
            frame = frame.rechunk()[_first_per_count(frame, caps.per_count)]
    return frame, duplicates


def balance(frame: pl.DataFrame, caps: Caps) -> tuple[pl.DataFrame, int]:
    """The final sample: dedupe, per-noun cap, then per-count cap; sorted by (count, key)."""
    frame, duplicates = deduplicate(frame)
    if caps.per_noun is not None:
        frame = _head_per_group(frame.sort(KEY_ORDER), "noun_key", caps.per_noun)
    # One gather of the rows kept, in the output's order (rechunked first: a gather across the
    # tasks' many chunks costs five times as much).
    return frame.rechunk()[_first_per_count(frame, caps.per_count)], duplicates


def _first_per_count(frame: pl.DataFrame, k: int | None) -> np.ndarray:
    """Positions of each count's first k rows in sampling order (all without k), ordered by
    (count, KEY_ORDER)."""
    order = first_per_count(frame["count"].to_numpy(), frame["key"].to_numpy(), k)
    if order is None:  # equal keys after dedupe (a 64-bit collision of two rows): KEY_ORDER decides
        ranked = frame.select("count", *KEY_ORDER).with_row_index("_position").sort(["count", *KEY_ORDER])
        order = ranked["_position"].to_numpy().astype(np.int64)
        if k is not None:
            order = order[ranks_within(ranked["count"].to_numpy()) < k]
    return order


def _head_per_group(frame: pl.DataFrame, column: str, k: int) -> pl.DataFrame:
    """First k rows of each group in the frame's (key) order."""
    return frame.filter(pl.int_range(pl.len()).over(column) < k)
