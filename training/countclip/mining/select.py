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

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from countclip.mining.prefilter import Prefilter, clean_captions
from countclip.mining.prove import AbstentionProver

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

SCHEMA = {"url": pl.String, "caption": pl.String, "count": pl.Int32, "noun": pl.String,
          "source_file": pl.String, "row": pl.Int64, "key": pl.UInt64, "noun_key": pl.String}


@dataclass(frozen=True)
class Caps:
    per_count: int | None = None
    per_noun: int | None = None


class CountReader:
    """`read(caption) -> (count, noun, reason)`; memoised, since web captions repeat a lot.

    With `explain_abstentions`, a caption the core declines is run through the core's
    `explain` to report *why* ("abstained:year", "abstained:measure", ...). It roughly
    doubles the core's cost on those captions, hence optional.
    """

    def __init__(self, explain_abstentions: bool = False, max_cache: int = 1 << 18):
        from countclip import counts

        self._find_count = counts.find_count
        self._singular = getattr(counts, "singularize", lambda noun: noun)
        self._explain = getattr(counts, "explain", None) if explain_abstentions else None
        self._cache: dict[str, tuple[int | None, str | None, str]] = {}
        self._noun_keys: dict[str, str] = {}
        self._max_cache = max_cache

    def read(self, caption: str) -> tuple[int | None, str | None, str]:
        return self.read_many([caption])[0]

    def read_many(self, captions: list[str]) -> list[tuple[int | None, str | None, str]]:
        cache, read, out = self._cache, self._read, []
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

    def _abstention_reason(self, caption: str) -> str:
        if self._explain is None:
            return ABSTAINED
        return f"{ABSTAINED}:{abstention_reason(self._explain(caption))}"


def abstention_reason(numerals: list[dict]) -> str:
    """One reason from the core's per-numeral decisions (`counts.explain`) for a declined caption."""
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
        self.rows: dict[str, list] = {name: [] for name in SCHEMA}
        self._hasher = hashlib.blake2b(digest_size=8, key=_seed_bytes(self.seed))

    def add(self, captions, urls, first_row: int) -> None:
        stats = self.stats
        stats["rows_read"] += len(captions)
        captions, n_null, n_invalid = clean_captions(captions)
        stats[NULL_CAPTION] += n_null
        stats[INVALID_UTF8] += n_invalid
        indices = self.prefilter.candidate_indices(captions)
        stats["prefilter_candidates"] += len(indices)
        stats[NO_NUMBER] += len(captions) - n_null - n_invalid - len(indices)
        if len(indices) == 0:
            return
        candidates = captions.take(indices)
        if self.prover is not None:
            unsure = pc.invert(self.prover.proven(candidates))
            n_proven = len(candidates) - (pc.sum(unsure).as_py() or 0)
            if n_proven:
                stats[ABSTAINED] += n_proven
                stats["proven_abstentions"] += n_proven
                indices, candidates = indices.filter(unsure), candidates.filter(unsure)
        texts = candidates.to_pylist()
        started = time.process_time()
        reads = self.reader.read_many(texts)  # the hot loop: one (memoised) core call each
        self.core_seconds += time.process_time() - started
        chosen = [i for i, read in enumerate(reads) if read[2] == SELECTED]
        if len(chosen) < len(reads):
            stats.update(read[2] for read in reads if read[2] != SELECTED)
        if chosen:
            taken = pa.array(chosen, pa.int64())
            self._keep_all(indices.take(taken).to_pylist(), first_row, [texts[i] for i in chosen],
                           self._urls(urls, indices.take(taken)), [reads[i] for i in chosen])

    def _urls(self, urls, indices) -> list[str | None]:
        if urls is None:
            return [None] * len(indices)
        cleaned, _, _ = clean_captions(urls.take(indices), what="url")
        return cleaned.to_pylist()

    def _keep_all(self, offsets: list[int], first_row: int, captions: list[str], urls: list[str | None],
                  reads: list[tuple[int | None, str | None, str]]) -> None:
        rows, stats, noun_key = self.rows, self.stats, self.reader.noun_key
        copy, from_bytes, source = self._hasher.copy, int.from_bytes, self.source
        for offset, caption, url, (count, noun, _) in zip(offsets, captions, urls, reads):
            if self.require_noun and not noun:
                stats[NO_NOUN] += 1
                continue
            if self.require_url and not url:
                stats[NO_URL] += 1
                continue
            row = first_row + offset
            stats[f"eligible_count_{count}"] += 1
            # row_key(), inlined: a keyed hash state copied per row instead of re-keyed.
            hasher = copy()
            hasher.update(f"{url if url is not None else f'{source}#{row}'}\x00{caption}".encode())
            rows["url"].append(url)
            rows["caption"].append(caption)
            rows["count"].append(count)
            rows["noun"].append(noun)
            rows["source_file"].append(source)
            rows["row"].append(row)
            rows["key"].append(from_bytes(hasher.digest(), "little"))
            rows["noun_key"].append(noun_key(noun))

    def take_frame(self) -> pl.DataFrame:
        frame = pl.DataFrame(self.rows, schema=SCHEMA)
        self.rows = {name: [] for name in SCHEMA}
        return frame


def deduplicate(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop repeated (url, caption) pairs, keeping the first in sampling order."""
    ordered = frame.sort(["key", "source_file", "row"])
    unique = ordered.unique(subset=["key", "url", "caption"], keep="first", maintain_order=True)
    return unique, frame.height - unique.height


def prune(frame: pl.DataFrame, caps: Caps) -> tuple[pl.DataFrame, int]:
    """Rows that can still be sampled, after dedupe; safe to apply to any subset of the data.

    A row outside its noun's smallest `per_noun` keys in a subset is outside them globally too,
    so the noun cap can always prune. The count cap only prunes when there is no noun cap,
    because the noun cap (applied first) may remove rows ahead of it globally.
    """
    frame, duplicates = deduplicate(frame)
    if caps.per_noun is not None:
        frame = _head_per_group(frame, "noun_key", caps.per_noun)
    elif caps.per_count is not None:
        frame = _head_per_group(frame, "count", caps.per_count)
    return frame, duplicates


def balance(frame: pl.DataFrame, caps: Caps) -> tuple[pl.DataFrame, int]:
    """The final sample: dedupe, per-noun cap, then per-count cap; sorted by (count, key)."""
    frame, duplicates = deduplicate(frame)
    if caps.per_noun is not None:
        frame = _head_per_group(frame, "noun_key", caps.per_noun)
    if caps.per_count is not None:
        frame = _head_per_group(frame, "count", caps.per_count)
    return frame.sort(["count", "key", "source_file", "row"]), duplicates


def _head_per_group(frame: pl.DataFrame, column: str, k: int) -> pl.DataFrame:
    """First k rows of each group in the frame's (key) order."""
    return frame.filter(pl.int_range(pl.len()).over(column) < k)
