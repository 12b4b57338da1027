"""The eligible rows of `countclip mine`: their schema, their sampling order and the caps.

Shared by the selection in worker processes (select.py: Arrow and numpy, no polars) and the
merge in the driver (sample.py: polars); it imports neither, so neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# The eligible rows a task collects (an Arrow table: no polars in worker processes, see sample.py).
ROWS_SCHEMA = pa.schema([("url", pa.large_string()), ("caption", pa.large_string()), ("count", pa.int32()),
                         ("noun", pa.large_string()), ("source_file", pa.large_string()), ("row", pa.int64()),
                         ("key", pa.uint64()), ("noun_key", pa.large_string())])
KEY_ORDER = ["key", "source_file", "row"]  # sampling order: smallest keys first, ties by position


@dataclass(frozen=True)
class Caps:
    per_count: int | None = None
    per_noun: int | None = None


def over_cap(counts: np.ndarray, cap: int) -> bool:
    """Whether some count has more than `cap` rows (else a count cap prunes nothing)."""
    return len(counts) > 0 and int(np.bincount(counts).max()) > cap


def repeated(keys: np.ndarray) -> bool:
    ordered = np.sort(keys)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def first_per_count(counts: np.ndarray, keys: np.ndarray, k: int | None) -> np.ndarray | None:
    """Positions of each count's first k rows in sampling order (all without k), ordered by
    (count, key): a sort of two numeric columns. None when two rows of a count share a key
    (then KEY_ORDER's other columns decide)."""
    order = np.lexsort((keys, counts))
    counts, keys = counts[order], keys[order]
    if np.any((keys[1:] == keys[:-1]) & (counts[1:] == counts[:-1])):
        return None
    return order if k is None else order[ranks_within(counts) < k]


def ranks_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
