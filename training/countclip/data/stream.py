"""A deterministic, resumable, rank-aware stream of raw samples over a source.

Order: each epoch shuffles the units with a seed derived from (seed, stream name, epoch), and
each unit's entries with (seed, name, epoch, unit). With at least as many units as ranks,
rank r reads units r, r+W, ... of that order; otherwise every rank reads every unit and keeps
entries r, r+W, ... . The position after a sample, `{"epoch", "unit", "item"}`, is all a
checkpoint needs to restart the stream exactly there.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from countclip.data.sources import RawSample, Source


class EmptyStreamError(RuntimeError):
    """An epoch in which this rank got no samples at all."""


class RawStream:
    def __init__(self, source: Source, name: str, seed: int, rank: int = 0, world_size: int = 1,
                 state: dict[str, int] | None = None, shuffle: bool = True, epochs: int | None = None) -> None:
        self.source = source
        self.name = name
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epochs = epochs
        self.start = dict(state) if state else {"epoch": 0, "unit": 0, "item": 0}
        self.split_units = len(source.units) >= world_size

    def _units(self, epoch: int) -> list[int]:
        order = list(range(len(self.source.units)))
        if self.shuffle:
            random.Random(f"{self.seed}:{self.name}:{epoch}").shuffle(order)
        return order[self.rank::self.world_size] if self.split_units else order

    def _entries(self, epoch: int, unit: int) -> list:
        entries = self.source.index(unit)
        if self.shuffle:
            random.Random(f"{self.seed}:{self.name}:{epoch}:{unit}").shuffle(entries)
        return entries if self.split_units else entries[self.rank::self.world_size]

    def __iter__(self) -> Iterator[RawSample]:
        epoch, first_unit, first_item = self.start["epoch"], self.start["unit"], self.start["item"]
        while self.epochs is None or epoch < self.epochs:
            produced = first_item > 0 or first_unit > 0
            units = self._units(epoch)
            for cursor in range(first_unit, len(units)):
                entries = self._entries(epoch, units[cursor])
                for item in range(first_item, len(entries)):
                    sample = self.source.read(units[cursor], entries[item])
                    sample.position = {"epoch": epoch, "unit": cursor, "item": item + 1}
                    sample.unit = units[cursor]
                    produced = True
                    yield sample
                first_item = 0
            if not produced:
                raise EmptyStreamError(f"stream {self.name!r} has no samples for rank {self.rank}")
            epoch, first_unit = epoch + 1, 0
