"""The training loader: general + counting streams mixed at a fixed ratio, decoded in workers.

Every batch holds `round(batch_size * counting_ratio)` samples from the counting stream and the
rest from the general stream (a fixed split keeps L_count's share of each step constant).
Batches are a pure function of (seed, step, rank, data), so a resumed run sees exactly the
batches an uninterrupted one would have seen: each batch carries the stream positions after
its last sample (`data_state`) and the running skip counts (`skipped`); a checkpoint stores
those of the last batch trained on.

Decoding runs in a process pool (`workers` > 0) with bounded read-ahead, in order, skipping
samples the optional in-memory cache already holds (`decode_cache_mb`, cache.py); collation
(counterfactuals + tokenisation) runs on a background thread that keeps a few batches ready.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from countclip.data.cache import DecodeCache
from countclip.data.collate import Tokenize, collate
from countclip.data.decode import Decoded, SkipStats, decode_chunk
from countclip.data.sources import RawSample, Source
from countclip.data.stream import RawStream
from countclip.model.preprocess import PreprocessConfig

CHUNK = 16  # raw samples per worker task


class StreamExhausted(Exception):
    """A finite stream ran out (training streams never do: they cycle over epochs)."""


@dataclass
class LoaderSpec:
    batch_size: int
    counting_ratio: float
    seed: int
    with_counterfactuals: bool
    pad_multiple: int = 8
    pad_id: int = 0
    context_length: int = 77
    workers: int = 0
    prefetch_batches: int = 2
    decode_cache_mb: int = 0  # keep decoded samples in memory up to this many MB (cache.py)
    pin_memory: bool = False  # page-locked batches: asynchronous host-to-GPU copies


def split_batch(batch_size: int, ratio: float, has_general: bool, has_counting: bool) -> tuple[int, int]:
    """(general, counting) samples per batch."""
    if not has_counting:
        return batch_size, 0
    if not has_general:
        return 0, batch_size
    counting = min(batch_size, max(0, round(batch_size * ratio)))
    return batch_size - counting, counting


class DecodedStream:
    """Decoded samples of one raw stream, in order; skips are counted as the consumer passes them.

    Each pending chunk is (raw samples, cache hits, work): the misses are decoded in the pool (a
    Future) or inline (the list itself), and the hits are merged back in stream order.
    """

    def __init__(self, name: str, raw: RawStream, config: PreprocessConfig, stats: SkipStats,
                 pool: ProcessPoolExecutor | None, read_ahead: int, cache: DecodeCache | None = None) -> None:
        self.name = name
        self.raw = iter(raw)
        self.decode = partial(decode_chunk, config=config)
        self.stats = stats
        self.pool = pool
        self.read_ahead = read_ahead
        self.cache = cache
        self.pending: deque[tuple[list[RawSample], list[Decoded | None], Future | list[RawSample]]] = deque()
        self.ready: deque = deque()
        self.position: dict[str, int] | None = raw.start

    def _submit(self) -> None:
        chunk = [sample for _, sample in zip(range(CHUNK), self.raw)]
        if not chunk:
            return
        hits = [self.cache.get(self.name, raw) if self.cache else None for raw in chunk]
        misses = [raw for raw, hit in zip(chunk, hits) if hit is None]
        work = self.pool.submit(self.decode, misses) if self.pool and misses else misses
        self.pending.append((chunk, hits, work))

    def _finish(self, chunk: list[RawSample], hits: list[Decoded | None], work: Future | list[RawSample]) -> list:
        decoded = iter(work.result() if isinstance(work, Future) else self.decode(work))
        items = []
        for raw, hit in zip(chunk, hits):
            if hit is None:
                hit = next(decoded)
                if self.cache:
                    self.cache.put(self.name, raw, hit)
            items.append(hit)
        return items

    def take(self) -> Decoded:
        while True:
            while not self.ready:
                while len(self.pending) < self.read_ahead:
                    before = len(self.pending)
                    self._submit()
                    if len(self.pending) == before:
                        break
                if not self.pending:
                    raise StreamExhausted
                self.ready.extend(self._finish(*self.pending.popleft()))
            item = self.ready.popleft()
            self.position = item.position
            if isinstance(item, Decoded):
                if item.meta.pop("_bad_metadata", False):
                    self.stats.add("bad_metadata", item.key)
                return item
            self.stats.add(item.reason, item.key)


class MixedLoader:
    """Iterate to get batch dicts forever (the trainer decides when to stop)."""

    def __init__(self, spec: LoaderSpec, preprocess: PreprocessConfig, tokenize: Tokenize,
                 general: Source | None, counting: Source | None, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, state: dict[str, Any] | None = None) -> None:
        if general is None and counting is None:
            raise ValueError("no training data: give --train-data and/or --counting-data")
        self.spec = spec
        self.preprocess = preprocess
        self.tokenize = tokenize
        self.rank = rank
        self.start_step = start_step
        state = state or {}
        self.stats = SkipStats(state.get("skipped"))
        self.n_general, self.n_counting = split_batch(spec.batch_size, spec.counting_ratio,
                                                      general is not None, counting is not None)
        streams = state.get("streams", {})
        self.raw = {name: RawStream(source, name, spec.seed, rank, world_size, streams.get(name))
                    for name, source in (("general", general), ("counting", counting)) if source is not None}
        self.pool: ProcessPoolExecutor | None = None
        self.cache = DecodeCache(spec.decode_cache_mb << 20) if spec.decode_cache_mb > 0 else None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.spec.workers > 0 and self.pool is None:
            self.pool = ProcessPoolExecutor(self.spec.workers, mp_context=multiprocessing.get_context("spawn"))
        read_ahead = max(2, 2 * self.spec.workers)
        streams = {name: DecodedStream(name, raw, self.preprocess, self.stats, self.pool, read_ahead, self.cache)
                   for name, raw in self.raw.items()}
        batches = self._batches(streams)
        if self.spec.prefetch_batches <= 0:
            return batches
        return self._prefetch(batches)

    def _batches(self, streams: dict[str, DecodedStream]) -> Iterator[dict[str, Any]]:
        step = self.start_step
        while True:
            samples: list[Decoded] = []
            flags: list[bool] = []
            for name, n in (("general", self.n_general), ("counting", self.n_counting)):
                for _ in range(n):
                    try:
                        samples.append(streams[name].take())
                    except StreamExhausted:
                        return
                    flags.append(name == "counting")
            rng = random.Random(f"{self.spec.seed}:counterfactual:{step}:{self.rank}")
            batch = collate(samples, flags, self.tokenize, rng, self.spec.with_counterfactuals,
                            self.spec.pad_multiple, self.spec.pad_id, self.spec.context_length)
            if self.spec.pin_memory:
                batch.update({k: v.pin_memory() for k, v in batch.items() if torch.is_tensor(v)})
            batch["data_state"] = {"streams": {name: s.position for name, s in streams.items()},
                                   "skipped": self.stats.snapshot()}
            batch["step"] = step
            step += 1
            yield batch

    def _prefetch(self, batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Run `batches` on a thread, `prefetch_batches` ahead; re-raise its errors here."""
        ready: queue.Queue = queue.Queue(maxsize=self.spec.prefetch_batches)
        done = object()

        def produce() -> None:
            try:
                for batch in batches:
                    while not self._stop.is_set():
                        try:
                            ready.put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if self._stop.is_set():
                        return
                ready.put(done)
            except BaseException as error:  # handed to the consumer, which re-raises it
                ready.put(error)

        self._thread = threading.Thread(target=produce, name="countclip-loader", daemon=True)
        self._thread.start()
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def problems(self) -> list[str]:
        return [problem for raw in self.raw.values() for problem in raw.source.problems]
