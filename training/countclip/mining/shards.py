"""WebDataset tar shards in img2dataset's layout: `{key}.jpg|png|webp`, `{key}.txt`, `{key}.json`.

Reading groups consecutive members by key and survives damage: a member that cannot be
read, or a truncated archive, is counted in `problems` and skipped, never silently merged
into a neighbouring sample. Writing goes to a temporary file renamed into place, so a
shard either exists complete or not at all (what makes `countclip verify` resumable).
"""

from __future__ import annotations

import glob
import io
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_BRACE_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_BRACE_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")


@dataclass
class Sample:
    key: str
    files: dict[str, bytes] = field(default_factory=dict)  # extension (lower case) -> bytes

    def image_bytes(self) -> tuple[str, bytes] | None:
        for ext in IMAGE_EXTENSIONS:
            if ext in self.files:
                return ext, self.files[ext]
        return None


def expand_braces(pattern: str) -> list[str]:
    """`shard-{00000..00002}.tar` -> three names (zero padding kept); `{a,b}` lists too; left to right like bash."""
    matches = [m for m in (_BRACE_RANGE.search(pattern), _BRACE_LIST.search(pattern)) if m]
    if not matches:
        return [pattern]
    match = min(matches, key=lambda m: m.start())
    if match.re is _BRACE_RANGE:
        lo, hi = match.group(1), match.group(2)
        width = len(lo) if lo.startswith("0") else 0
        alternatives = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    else:
        alternatives = match.group(1).split(",")
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [out for alt in alternatives for out in expand_braces(head + alt + tail)]


def resolve_paths(specs: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Input specs (files, directories, globs, brace patterns) -> sorted unique existing files.

    A spec that names nothing is an error: a typo must not silently shrink a dataset.
    """
    found: dict[str, Path] = {}
    for spec in specs:
        for expanded in expand_braces(spec):
            path = Path(expanded)
            if path.is_dir():
                matches = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name.endswith(suffixes)]
            elif glob.has_magic(expanded):
                matches = [Path(p) for p in sorted(glob.glob(expanded, recursive=True)) if Path(p).is_file()]
            else:
                matches = [path] if path.is_file() else []
            if not matches:
                raise FileNotFoundError(f"input {expanded!r} matches no {'/'.join(suffixes)} file")
            for match in matches:
                found.setdefault(str(match.resolve()), match)
    return [found[k] for k in sorted(found)]


def split_key(name: str) -> tuple[str, str]:
    """`dir/000123.jpg` -> (`dir/000123`, `jpg`); webdataset's rule: key ends at the basename's first dot."""
    directory, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    key = f"{directory}/{stem}" if directory else stem
    return key, ext.lower() if dot else ""


def iter_samples(path: str | Path, problems: Counter) -> Iterator[Sample]:
    """Samples of one shard, in order. Damage is counted in `problems` under a reason."""
    try:
        archive = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as error:
        problems["unreadable_shard"] += 1
        raise ShardError(f"{path}: not a readable tar archive ({error})") from error
    with archive:
        current: Sample | None = None
        for member, data in _iter_members(archive, problems):
            key, ext = split_key(member.name)
            if not ext:
                problems["member_without_extension"] += 1
                continue
            if current is not None and key != current.key:
                yield current
                current = None
            if current is None:
                current = Sample(key)
            if ext in current.files:
                problems["duplicate_member"] += 1
                continue
            current.files[ext] = data
        if current is not None:
            yield current


def _iter_members(archive: tarfile.TarFile, problems: Counter) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    while True:
        try:
            member = archive.next()
        except (tarfile.TarError, OSError, EOFError):
            problems["truncated_shard"] += 1
            return
        if member is None:
            return
        if not member.isfile():
            continue
        try:
            handle = archive.extractfile(member)
            data = handle.read() if handle is not None else None
        except (tarfile.TarError, OSError, EOFError):
            data = None
        if data is None or len(data) != member.size:
            problems["broken_member"] += 1
            continue
        yield member, data


class ShardError(RuntimeError):
    """A shard that cannot be opened at all."""


class ShardWriter:
    """Writes one tar shard atomically: members go to `<path>.tmp-<pid>`, renamed on close.

    Used as a context manager; an exception inside the block removes the temporary file and
    leaves any previous shard at `path` untouched.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        self._tar = tarfile.open(self.tmp_path, mode="w", format=tarfile.PAX_FORMAT)
        self.count = 0

    def write(self, sample: Sample) -> None:
        for ext, data in sample.files.items():
            info = tarfile.TarInfo(f"{sample.key}.{ext}")
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0  # reproducible bytes for identical content
            self._tar.addfile(info, io.BytesIO(data))
        self.count += 1

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._tar.close()
        if exc_type is None:
            _fsync(self.tmp_path)
            os.replace(self.tmp_path, self.path)
        else:
            self.tmp_path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
