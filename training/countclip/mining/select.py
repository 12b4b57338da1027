"""Which captions to keep: the count core on pre-filtered candidates, then seeded balancing.

Balancing is *bottom-k sampling*: every eligible row gets a 64-bit key, a keyed hash of
(seed, url, caption), and each count keeps its `cap` rows with the smallest keys. That is a
uniform sample without replacement that does not depend on file order, on how files were
split into tasks or on the number of processes, and it lets every task drop rows that can
never make the cut before sending results back (bounded memory at any scale).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from countclip.mining.prefilter import Prefilter, clean_captions
from countclip.mining.prove import AbstentionProver
from countclip.mining.rows import ROWS_SCHEMA, Caps, first_per_count, over_cap, repeated

MIN_COUNT, MAX_COUNT = 2, 10

# Exclusion reasons reported in stats.json (besides the core's own, when it gives them).
NULL_CAPTION = "null_caption"
INVALID_UTF8 = "invalid_utf8"
NO_NUMBER = "no_number"  # pre-filter: no number word or digit that could mean 2..10
ABSTAINED = "abstained"  # the count core declined (an age, a time, a unit, a rank, ...)
OUT_OF_RANGE = "out_of_range"  # a count outside 2..10
NO_NOUN = "no_noun"  # a count with no counted noun: nothing to ask the detector for
NO_URL = "no_url"  # nothing img2dataset could download
SELECTED = "selected"  # a count 2..10


class CountReader:
    """The count core per caption: `read_batch(captions) -> BatchReads`, `read(caption)`.

    Uses the count core's C port (`countclip.counting.fastcount`, same answers, about 20x faster) when
    it is built and current, else `countclip.counting.core.find_count`, memoised (web captions
    repeat). With `explain_abstentions`, a caption the core declines is run through the
    core's `explain` to report *why* ("abstained:year", "abstained:measure", ...): Python
    only, and it roughly doubles the core's cost on those captions, hence optional.
    """

    def __init__(self, explain_abstentions: bool = False, max_cache: int = 1 << 18, use_c: bool = True):
        from countclip.counting import core, fastcount

        self._find_count = core.find_count
        self._singular = getattr(core, "singularize", lambda noun: noun)
        self._explain = getattr(core, "explain", None) if explain_abstentions else None
        if not use_c:
            self.fast, why = None, "asked for"
        elif self._explain is not None:
            self.fast, why = None, "reasons asked for"  # the C port answers only (count, noun)
        else:
            self.fast, why = fastcount.load()
        self.implementation = "c" if self.fast is not None else f"python ({why})"
        self._cache: dict[str, tuple[int | None, str | None, str]] = {}
        self._noun_keys: dict[str, str] = {}
        self._max_cache = max_cache

    def string_array(self, strings: list[str | None]) -> pa.Array:
        """Python strings (nouns) as an Arrow large_string array (in C when built)."""
        return self.fast.string_array(strings) if self.fast is not None else string_array(strings)

    def read(self, caption: str) -> tuple[int | None, str | None, str]:
        return self.read_many([caption])[0]

    def filter_and_read(self, captions: pa.Array, prefilter: Prefilter) -> tuple[int, np.ndarray, BatchReads] | None:
        """Pre-filter and core in one pass of the C core over the batch, or None without it:
        (number of candidates, their positions, their reads)."""
        words = prefilter.plain_words()
        if self.fast is None or words is None:
            return None
        positions, values, nouns = self.fast.filter_and_count(captions, words)
        return len(positions), positions, BatchReads(values, nouns, None)

    def read_batch(self, captions: pa.Array) -> BatchReads:
        """Every caption's count (0: none), noun and, for those not selected, why (an Arrow
        string array without nulls; the C core reads it in place)."""
        if self.fast is not None:
            values, nouns = self.fast.count_arrow(captions)
            return BatchReads(values, nouns, None)
        reads = self.read_many(captions.to_pylist())
        values = np.fromiter((read[0] or 0 for read in reads), dtype=np.int64, count=len(reads))
        return BatchReads(values, [read[1] for read in reads], [read[2] for read in reads])

    def read_many(self, captions: list[str]) -> list[tuple[int | None, str | None, str]]:
        cache, read = self._cache, self._read
        out: list[tuple[int | None, str | None, str]] = []
        get, append = cache.get, out.append
        for caption in captions:
            hit = get(caption)
            if hit is None:
                hit = read(caption)
                if len(cache) >= self._max_cache:
                    cache.clear()  # cheap bound; a hot caption is back after one miss
                cache[caption] = hit
            append(hit)
        return out

    def _read(self, caption: str) -> tuple[int | None, str | None, str]:
        match = self._find_count(caption)
        if match is None:
            return None, None, self._abstention_reason(caption)
        if not MIN_COUNT <= match.count <= MAX_COUNT:
            return match.count, match.noun, OUT_OF_RANGE
        return match.count, match.noun, SELECTED

    def noun_key(self, noun: str | None) -> str | None:
        """What the per-noun cap groups by: "Dogs", "dogs" and "dog" are one kind of object."""
        if not noun:
            return None
        key = self._noun_keys.get(noun)
        if key is None:
            key = self._singular(noun.lower())
            if len(self._noun_keys) < self._max_cache:
                self._noun_keys[noun] = key
        return key

    def noun_keys(self, nouns: list[str | None]) -> list[str | None]:
        """noun_key of each noun: one dict look-up each (a Python call only for a noun not seen before)."""
        keys = list(map(self._noun_keys.get, nouns))
        if None in keys:
            keys = [key if key is not None else self.noun_key(noun) for noun, key in zip(nouns, keys)]
        return keys

    def _abstention_reason(self, caption: str) -> str:
        if self._explain is None:
            return ABSTAINED
        return f"{ABSTAINED}:{abstention_reason(self._explain(caption))}"


@dataclass
class BatchReads:
    """The count core on a batch: `values[i]` the count (0: none), `nouns[i]` its noun, and
    `reasons[i]` (None when derived from the values: abstained, out of range, selected)."""

    values: np.ndarray
    nouns: list[str | None]
    reasons: list[str] | None

    def selected(self) -> np.ndarray:
        return (self.values >= MIN_COUNT) & (self.values <= MAX_COUNT)

    def exclusions(self) -> Counter:
        if self.reasons is not None:
            return Counter(reason for reason in self.reasons if reason != SELECTED)
        none = int(np.count_nonzero(self.values == 0))
        out_of_range = len(self.values) - none - int(np.count_nonzero(self.selected()))
        return Counter({ABSTAINED: none, OUT_OF_RANGE: out_of_range})


def abstention_reason(numerals: list[dict]) -> str:
    """One reason from the core's per-numeral decisions (`core.explain`) for a declined caption."""
    counted = [n for n in numerals if n.get("reason") is None]
    if len({n.get("value") for n in counted}) > 1:
        return "counts disagree"
    if counted:
        return "count beyond the lexicon"
    in_range = [n for n in numerals if isinstance(n.get("value"), int) and MIN_COUNT <= n["value"] <= MAX_COUNT]
    chosen = (in_range or numerals or [{"reason": "no numeral"}])[0]
    return str(chosen.get("reason") or "unknown")


def row_key(seed: int, url: str | None, source: str, row: int, caption: str) -> int:
    """Sampling key. Identical (url, caption) pairs share a key, so duplicates are found too;
    rows without a URL are keyed by their position so they are never merged."""
    identity = url if url is not None else f"{source}#{row}"
    digest = hashlib.blake2b(f"{identity}\x00{caption}".encode(), digest_size=8, key=_seed_bytes(seed)).digest()
    return int.from_bytes(digest, "little")


@functools.lru_cache(maxsize=8)
def _seed_bytes(seed: int) -> bytes:
    return seed.to_bytes(16, "little", signed=True)


@dataclass
class BatchSelector:
    """Applies pre-filter, prover and count core to batches of one source, collecting eligible rows.

    `prover` (optional) decides in bulk, exactly, captions the core would decline (counted as
    `abstained`, as the core would); every other candidate goes to the core. The selection is
    the same with and without it.
    """

    source: str
    seed: int
    require_url: bool
    require_noun: bool
    prefilter: Prefilter
    reader: CountReader
    prover: AbstentionProver | None = None

    def __post_init__(self) -> None:
        self.core_seconds = 0.0  # CPU time inside the count core, for the benchmark's breakdown
        self.stats: Counter = Counter()
        self._tables: list[pa.Table] = []
        self.n_rows = 0  # rows in _tables
        self._hasher = hashlib.blake2b(digest_size=8, key=_seed_bytes(self.seed))

    def add(self, captions, urls, first_row: int) -> None:
        stats = self.stats
        stats["rows_read"] += len(captions)
        captions, n_null, n_invalid = clean_captions(captions)
        stats[NULL_CAPTION] += n_null
        stats[INVALID_UTF8] += n_invalid
        started = time.process_time()
        scanned = self.reader.filter_and_read(captions, self.prefilter)  # C: pre-filter and core in one pass
        if scanned is None:
            scanned = self._prefilter_then_read(captions)
        else:
            self.core_seconds += time.process_time() - started
        n_candidates, positions, reads = scanned
        stats["prefilter_candidates"] += n_candidates
        stats[NO_NUMBER] += len(captions) - n_null - n_invalid - n_candidates
        stats.update(reads.exclusions())
        chosen = np.flatnonzero(reads.selected())
        if len(chosen):
            nouns = list(map(reads.nouns.__getitem__, chosen.tolist()))
            self._keep(positions[chosen], reads.values[chosen], nouns, captions, urls, first_row)

    def _prefilter_then_read(self, captions: pa.Array) -> tuple[int, np.ndarray, BatchReads]:
        """RE2 pre-filter, the prover, then the count core on the captions left."""
        indices = self.prefilter.candidate_indices(captions)
        n_candidates = len(indices)
        if n_candidates and self.prover is not None:
            unsure = pc.invert(self.prover.proven(captions.take(indices)))
            n_proven = n_candidates - (pc.sum(unsure).as_py() or 0)
            if n_proven:
                self.stats[ABSTAINED] += n_proven
                self.stats["proven_abstentions"] += n_proven
                indices = indices.filter(unsure)
        candidates = captions.take(indices)
        started = time.process_time()
        reads = self.reader.read_batch(candidates)  # the hot loop: one core call per candidate
        self.core_seconds += time.process_time() - started
        return n_candidates, integers(indices), reads

    def _keep(self, positions: np.ndarray, values: np.ndarray, nouns: list[str | None], captions: pa.Array,
              urls: pa.Array | None, first_row: int) -> None:
        """The selected captions at `positions` of the batch that have a noun and URL as required."""
        stats = self.stats
        keep = np.ones(len(positions), dtype=bool)
        if self.require_noun:
            keep &= np.fromiter(map(bool, nouns), dtype=bool, count=len(nouns))
            stats[NO_NOUN] += int(len(keep) - np.count_nonzero(keep))
        url_array = (clean_captions(urls.take(index_array(positions)), what="url")[0] if urls is not None
                     else pa.nulls(len(positions), pa.string()))
        if self.require_url:
            has_url = non_empty(url_array)
            stats[NO_URL] += int(np.count_nonzero(keep & ~has_url))
            keep &= has_url
        if not keep.all():
            kept = np.flatnonzero(keep)
            positions, values, nouns = positions[kept], values[kept], list(map(nouns.__getitem__, kept.tolist()))
            url_array = url_array.take(index_array(kept))
        if not len(positions):
            return
        counts = values.astype(np.int32)
        stats.update({f"eligible_count_{c}": int(n) for c, n in zip(*np.unique(counts, return_counts=True))})
        rows = positions.astype(np.int64) + first_row
        kept_captions = captions.take(index_array(positions))
        strings = self.reader.string_array
        self._tables.append(pa.Table.from_arrays([
            url_array.cast(pa.large_string()), kept_captions.cast(pa.large_string()), number_array(counts),
            strings(nouns), repeated_string(self.source, len(positions)), number_array(rows),
            number_array(self._keys(url_array, kept_captions, rows)), strings(self.reader.noun_keys(nouns)),
        ], schema=ROWS_SCHEMA))
        self.n_rows += len(positions)

    def _keys(self, urls: pa.Array, captions: pa.Array, rows: np.ndarray) -> np.ndarray:
        """row_key() of every row (in C when the count core's C port is in use)."""
        identities = urls
        if urls.null_count:  # rows without a URL (WebDataset input) are keyed by their position
            fallback = pa.array([f"{self.source}#{row}" for row in rows.tolist()], pa.string())
            identities = pc.if_else(pc.is_null(urls), fallback, urls)
        if self.reader.fast is not None:
            return self.reader.fast.sampling_keys(_seed_bytes(self.seed), identities, captions)
        copy, from_bytes = self._hasher.copy, int.from_bytes

        def key(identity: bytes, caption: bytes) -> int:
            hasher = copy()  # a keyed state copied per row instead of re-keyed
            hasher.update(b"\x00".join((identity, caption)))
            return from_bytes(hasher.digest(), "little")

        return np.fromiter(map(key, identities.cast(pa.binary()).to_pylist(), captions.cast(pa.binary()).to_pylist()),
                           dtype=np.uint64, count=len(identities))

    def take_rows(self) -> pa.Table:
        rows = pa.concat_tables(self._tables) if self._tables else ROWS_SCHEMA.empty_table()
        self._tables, self.n_rows = [], 0
        return rows


def non_empty(strings: pa.Array) -> np.ndarray:
    """Which strings are neither null nor empty, as numpy bools (from the offsets: no Python
    scalar, see number_array)."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32 if pa.types.is_string(strings.type) else np.int64)
    lengths = np.diff(offsets[strings.offset:strings.offset + len(strings) + 1])
    return (lengths > 0) & valid(strings)


def valid(values: pa.Array) -> np.ndarray:
    """Which values are not null, as numpy bools, from the validity bitmap."""
    if values.null_count == 0:
        return np.ones(len(values), dtype=bool)
    bits = np.unpackbits(np.frombuffer(values.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[values.offset:values.offset + len(values)].astype(bool)


def integers(values: pa.Array) -> np.ndarray:
    """An Arrow integer array without nulls as a numpy view (see number_array: no to_numpy)."""
    assert values.null_count == 0 and pa.types.is_integer(values.type)
    data = np.frombuffer(values.buffers()[1], dtype=values.type.to_pandas_dtype())
    return data[values.offset:values.offset + len(values)]


def number_array(values: np.ndarray) -> pa.Array:
    """A numpy number array as an Arrow array, without a copy. Not `pa.array`: its first call
    in a process imports pandas (a third of a second, in every worker)."""
    data = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), len(data), [None, pa.py_buffer(data)])


def index_array(positions: np.ndarray) -> pa.Array:
    """Positions as an Arrow int64 array, for `take`."""
    return number_array(positions.astype(np.int64, copy=False))


def string_array(strings: list[str | None]) -> pa.Array:
    """Python strings (or None) as an Arrow large_string array (see number_array: no pa.array)."""
    encoded = [b"" if text is None else text.encode() for text in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    validity = None
    if any(text is None for text in strings):
        present = np.fromiter((text is not None for text in strings), dtype=bool, count=len(strings))
        validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    return pa.Array.from_buffers(pa.large_string(), len(encoded),
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def repeated_string(text: str, n: int) -> pa.Array:
    data = text.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


def column_numbers(rows: pa.Table, name: str) -> np.ndarray:
    """A numeric column without nulls as numpy (one copy when it has several chunks)."""
    column = rows.column(name)
    return integers(column.chunk(0) if column.num_chunks == 1 else column.combine_chunks())


# ----------------------------------------------------------------------------- sampling

def prune_rows(rows: pa.Table, caps: Caps) -> tuple[pa.Table, int]:
    """sample.prune for a task's rows: rows that can still be sampled, after dedupe; returns
    (rows, duplicates dropped). The common case (no noun cap, no repeated key) in numpy; the
    rest by sample.prune, in polars."""
    keys = column_numbers(rows, "key")
    if caps.per_noun is not None or repeated(keys):
        return _prune_in_polars(rows, caps)
    counts = column_numbers(rows, "count")
    if caps.per_count is None or not over_cap(counts, caps.per_count):
        return rows, 0  # nothing to prune
    order = first_per_count(counts, keys, caps.per_count)
    if order is None:  # equal keys of different rows: the tie-break needs every KEY_ORDER column
        return _prune_in_polars(rows, caps)
    return rows.take(index_array(order)), 0


def _prune_in_polars(rows: pa.Table, caps: Caps) -> tuple[pa.Table, int]:
    from countclip.mining import sample  # imports polars: only for these rarer cases

    frame, duplicates = sample.prune(sample.to_frame(rows), caps)
    return sample.to_rows(frame), duplicates
