"""Where samples come from: WebDataset tar shards and CSV/parquet tables over an image root.

A *source* is a list of *units* (a tar shard, or a chunk of table rows) that can each be
indexed into entries and read entry by entry. Units let ranks split work without reading
each other's shards; random access inside a unit (a seek into the tar) lets a resumed run
jump straight back to where it stopped, with no replay.

Data specs (`--train-data`, `--counting-data`):
  shards/train-{00000..00099}.tar   brace-expanded shard list (numeric ranges keep zero padding)
  shards/                           every *.tar in a directory
  a.tar::b/{0..3}.tar               several specs joined with '::' (WebDataset's convention)
  pairs.csv / pairs.parquet         a table with an image column (path or key) and a caption
                                    column, optional count (image root: --image-root, default
                                    the table's directory)
"""

from __future__ import annotations

import csv
import glob
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
TABLE_ROWS_PER_UNIT = 4096
IMAGE_COLUMNS = ("image_path", "image", "filepath", "path", "file", "key")
CAPTION_COLUMNS = ("caption", "text", "txt")

_BRACE = re.compile(r"\{([^{}]*)\}")


class DataSpecError(ValueError):
    """A data spec that names nothing readable."""


def expand_braces(pattern: str) -> list[str]:
    """`a{00..02}b{x,y}` -> a00bx a00by a01bx ... ; ranges keep the width of their first bound."""
    match = _BRACE.search(pattern)
    if match is None:
        return [pattern]
    head, tail, body = pattern[: match.start()], pattern[match.end():], match.group(1)
    numeric = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if numeric:
        lo, hi = numeric.group(1), numeric.group(2)
        width = len(lo) if lo.startswith("0") else 0
        step = 1 if int(hi) >= int(lo) else -1
        options = [str(n).zfill(width) for n in range(int(lo), int(hi) + step, step)]
    else:
        options = body.split(",")
    return [expanded for option in options for expanded in expand_braces(head + option + tail)]


@dataclass
class RawSample:
    """Undecoded bytes of one sample plus where it came from (decoding happens in workers)."""

    key: str
    image: bytes | None
    image_ext: str | None
    text: bytes | None
    meta: bytes | None
    position: dict[str, int] | None = None
    unit: int | None = None  # the source unit it was read from (set by the stream; names it in caches)


class TarSource:
    """img2dataset / WebDataset shards: members `{key}.{jpg,png,webp,txt,json}`."""

    kind = "webdataset"

    def __init__(self, paths: list[str]) -> None:
        self.units = paths
        self.problems: list[str] = []
        self._open: tuple[int, Any] | None = None  # one shard handle, reused while reading that shard
        # Indexing walks every tar header in Python (a few hundred ms a shard); multi-epoch runs
        # re-read each shard every epoch, so each shard is indexed once.
        self._indexes: dict[int, list[tuple[str, dict[str, tuple[int, int]]]]] = {}

    def _handle(self, unit: int) -> Any:
        if self._open is None or self._open[0] != unit:
            if self._open is not None:
                self._open[1].close()
            self._open = (unit, open(self.units[unit], "rb"))
        return self._open[1]

    def index(self, unit: int) -> list[tuple[str, dict[str, tuple[int, int]]]]:
        """[(key, {ext: (offset, size)})] in file order; a truncated shard keeps what precedes the damage.

        A fresh list each call (callers shuffle it); the shard itself is read once.
        """
        if unit not in self._indexes:
            self._indexes[unit] = self._read_index(unit)
        return list(self._indexes[unit])

    def _read_index(self, unit: int) -> list[tuple[str, dict[str, tuple[int, int]]]]:
        path = self.units[unit]
        samples: dict[str, dict[str, tuple[int, int]]] = {}
        try:
            with tarfile.open(path, mode="r:") as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    stem, _, ext = Path(member.name).name.partition(".")
                    key = str(Path(member.name).parent / stem)
                    samples.setdefault(key, {})[ext.lower()] = (member.offset_data, member.size)
        except (tarfile.TarError, EOFError, OSError) as error:
            self.problems.append(f"{path}: {error}")
        return list(samples.items())

    def read(self, unit: int, entry: tuple[str, dict[str, tuple[int, int]]]) -> RawSample:
        key, members = entry
        handle = self._handle(unit)

        def grab(ext: str) -> bytes | None:
            if ext not in members:
                return None
            offset, size = members[ext]
            handle.seek(offset)
            return handle.read(size)

        image_ext = next((ext for ext in IMAGE_EXTENSIONS if ext in members), None)
        image = grab(image_ext) if image_ext else None
        return RawSample(key=key, image=image, image_ext=image_ext, text=grab("txt"), meta=grab("json"))

    def stats_size(self, unit: int) -> int | None:
        """img2dataset writes `{shard}_stats.json` with the number of successes; use it to skip indexing."""
        stats = Path(self.units[unit]).with_suffix("").as_posix() + "_stats.json"
        try:
            return int(json.loads(Path(stats).read_text())["successes"])
        except (OSError, KeyError, ValueError, TypeError):
            return None


class TableSource:
    """Rows of (image path or key, caption[, count, noun]) over an image root."""

    kind = "table"

    def __init__(self, path: str, image_root: str | None = None) -> None:
        self.path = Path(path)
        self.root = Path(image_root) if image_root else self.path.parent
        self.rows = _read_table(self.path)
        if not self.rows:
            raise DataSpecError(f"{path}: the table has no rows")
        columns = list(self.rows[0])
        self.image_column = _pick(columns, IMAGE_COLUMNS, path, "image")
        self.caption_column = _pick(columns, CAPTION_COLUMNS, path, "caption")
        self.units = list(range(0, len(self.rows), TABLE_ROWS_PER_UNIT))
        self.problems: list[str] = []

    def index(self, unit: int) -> list[int]:
        start = self.units[unit]
        return list(range(start, min(start + TABLE_ROWS_PER_UNIT, len(self.rows))))

    def read(self, unit: int, row_index: int) -> RawSample:
        row = self.rows[row_index]
        reference = str(row.get(self.image_column) or "")
        path = self._resolve(reference)
        image = path.read_bytes() if path is not None else None
        caption = row.get(self.caption_column)
        text = caption if isinstance(caption, bytes) or caption is None else str(caption).encode("utf-8", "surrogateescape")
        meta = {k: row[k] for k in ("count", "noun") if row.get(k) not in (None, "")}
        if "count" in meta:
            try:
                meta["count"] = int(float(meta["count"]))
            except (TypeError, ValueError):  # an unreadable count is metadata damage, not a reason to stop
                meta = {"_bad_metadata": True}
        ext = path.suffix.lstrip(".").lower() if path is not None else None
        return RawSample(key=reference or str(row_index), image=image, image_ext=ext, text=text,
                         meta=json.dumps(meta).encode() if meta else None)

    def _resolve(self, reference: str) -> Path | None:
        if not reference:
            return None
        candidate = self.root / reference
        if candidate.is_file():
            return candidate
        for ext in IMAGE_EXTENSIONS:  # a bare key
            keyed = self.root / f"{reference}.{ext}"
            if keyed.is_file():
                return keyed
        return None

    def stats_size(self, unit: int) -> int | None:
        return len(self.index(unit))


def _pick(columns: list[str], wanted: tuple[str, ...], path: str, what: str) -> str:
    for name in wanted:
        if name in columns:
            return name
    raise DataSpecError(f"{path}: no {what} column (looked for {', '.join(wanted)}; found {', '.join(columns)})")


def _read_table(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    delimiter = "\t" if path.suffix == ".tsv" else ","
    # surrogateescape keeps non-UTF-8 bytes recoverable, so such rows are counted and skipped
    # at decode time instead of failing the whole file here.
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


Source = TarSource | TableSource


def open_source(spec: str, image_root: str | None = None) -> Source:
    """Resolve a data spec (see the module docstring) to a source; errors name what was missing."""
    parts = [part for part in spec.split("::") if part.strip()]
    if len(parts) == 1 and Path(parts[0]).suffix in (".csv", ".tsv", ".parquet"):
        if not Path(parts[0]).is_file():
            raise DataSpecError(f"table not found: {parts[0]}")
        return TableSource(parts[0], image_root)
    paths: list[str] = []
    for part in parts:
        if Path(part).is_dir():
            paths += sorted(str(p) for p in Path(part).glob("*.tar"))
            continue
        for pattern in expand_braces(part):
            matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
            paths += matches
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise DataSpecError(f"{len(missing)} shard(s) of {spec!r} not found, e.g. {missing[0]}")
    if not paths:
        raise DataSpecError(f"no shards match {spec!r}")
    return TarSource(paths)


def count_samples(source: Source) -> int:
    """Samples in a source (uses img2dataset's stats files when present, else indexes every unit)."""
    total = 0
    for unit in range(len(source.units)):
        size = source.stats_size(unit)
        total += size if size is not None else len(source.index(unit))
    return total
