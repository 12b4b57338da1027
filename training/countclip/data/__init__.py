"""Training data: WebDataset shards and tables -> decoded samples -> mixed, named batches.

    sources.py   data specs (brace expansion, '::' lists, tables) -> units of raw samples
    stream.py    deterministic, resumable, rank-aware order over a source
    decode.py    raw bytes -> uint8 crop + caption, or a counted skip reason
    collate.py   samples -> batch dict with per-step counterfactual captions
    loader.py    general/counting mixing, worker pool, background prefetch
"""

from countclip.data.decode import SKIP_REASONS, SkipStats, describe_skips, normalize_pixels
from countclip.data.loader import LoaderSpec, MixedLoader, split_batch
from countclip.data.sources import DataSpecError, count_samples, expand_braces, open_source

__all__ = ["SKIP_REASONS", "DataSpecError", "LoaderSpec", "MixedLoader", "SkipStats", "count_samples",
           "describe_skips", "expand_braces", "normalize_pixels", "open_source", "split_batch"]
