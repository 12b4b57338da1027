"""Decoded samples kept in memory, for runs that pass over a small dataset many times.

A JPEG decode costs far more than the step wants to spend on it when the images are tiny and
the model is small (the synthetic world: 48 px crops, each seen 4-8 times by the default-model
recipe). The cache holds the uint8 crop, caption and metadata of each decoded sample, keyed by
(stream, source unit, sample key), until its byte budget is spent; it then stops adding (no
eviction: the hits stay predictable and the order of batches never depends on it).

Decoding is deterministic, so a cached sample is the same sample: batches are identical with
the cache on or off. Skipped samples are not cached (they are decoded again, and so counted
again, every epoch, as without the cache).
"""

from __future__ import annotations

import dataclasses

from countclip.data.decode import Decoded, Skipped
from countclip.data.sources import RawSample

CacheKey = tuple[str, int, str]


class DecodeCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.used = 0
        self.hits = 0
        self.items: dict[CacheKey, Decoded] = {}

    def _key(self, stream: str, raw: RawSample) -> CacheKey | None:
        return None if raw.unit is None else (stream, raw.unit, raw.key)

    def get(self, stream: str, raw: RawSample) -> Decoded | None:
        """The cached sample, placed at `raw`'s stream position, or None."""
        key = self._key(stream, raw)
        found = self.items.get(key) if key is not None else None
        if found is None:
            return None
        self.hits += 1
        # The consumer pops the bad-metadata flag off meta when it counts it: hand out a copy.
        return dataclasses.replace(found, meta=dict(found.meta), position=raw.position)

    def put(self, stream: str, raw: RawSample, item: Decoded | Skipped) -> None:
        key = self._key(stream, raw)
        if key is None or not isinstance(item, Decoded) or key in self.items:
            return
        size = item.pixels.nbytes + len(item.caption) + 64
        if self.used + size > self.budget:
            return
        self.items[key] = dataclasses.replace(item, meta=dict(item.meta), position=None)
        self.used += size
