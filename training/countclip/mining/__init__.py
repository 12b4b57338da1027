"""Counting training-set builder.

Stage 1, `countclip mine` (`mine.py`): stream web-scale caption metadata (parquet or
WebDataset shards), keep captions whose count (found by `countclip.counting`) is 2..10,
balance them by count, and write a parquet img2dataset can download.

Stage 2, `countclip verify` (`verify.py`): run a zero-shot object detector over the
downloaded shards and keep only samples whose detected count equals the caption's.

Layout: `prefilter.py` (vectorised candidate filter), `sources.py` (parquet / tar readers),
`select.py` (count core + balancing), `rows.py` (the eligible rows' schema, sampling order
and caps), `sample.py` (the driver's merge and balance, in polars), `outputs.py` (atomic writes, stats, histogram),
`shards.py` (WebDataset tar IO), `detectors.py` (verifier interface and detectors).
"""
