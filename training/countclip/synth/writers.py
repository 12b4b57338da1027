"""Writers: WebDataset shards, the synthetic CountBench, the zero-shot folder, the gallery.

Samples are rendered in worker processes (each a pure function of seed and index,
so the output does not depend on the number of workers) and written in index order.
Every output appears atomically: shards are written to a temporary name and
renamed; directory outputs are built beside the target and swapped in at the end,
so an interrupted run never leaves a half-written dataset behind a valid name.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from countclip.synth import streams
from countclip.synth.streams import Sample

SampleFn = Callable[[int], Sample]


def encode(image: Any, fmt: str, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpg":
        image.save(buffer, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "png":
        image.save(buffer, format="PNG", optimize=False)
    elif fmt == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    else:
        raise ValueError(f"unknown image format {fmt!r}; use jpg, png or webp")
    return buffer.getvalue()


def _render(index: int, make: SampleFn, size: int, fmt: str, quality: int) -> tuple[int, bytes, str, dict]:
    sample = make(index)
    return index, encode(sample.scene.render(size), fmt, quality), sample.caption, sample.meta


def rendered(make: SampleFn, indices: range, size: int, fmt: str, quality: int,
             workers: int) -> Iterator[tuple[int, bytes, str, dict]]:
    """(index, encoded image, caption, metadata) in index order, rendered by `workers` processes."""
    job = partial(_render, make=make, size=size, fmt=fmt, quality=quality)
    if workers <= 1:
        yield from map(job, indices)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        yield from pool.imap(job, indices, chunksize=32)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644  # mtime 0: byte-identical reruns
    tar.addfile(info, io.BytesIO(data))


def write_shards(out_dir: Path, make: SampleFn, count: int, *, prefix: str, per_shard: int = 1000,
                 size: int = 64, fmt: str = "jpg", quality: int = 90, workers: int = 1) -> dict[str, Any]:
    """`count` samples as img2dataset-layout tar shards `{prefix}-NNNNN.tar`; returns the summary."""
    if count < 1 or per_shard < 1:
        raise ValueError("count and per_shard must be >= 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    n_shards = (count + per_shard - 1) // per_shard
    started = time.time()
    samples = rendered(make, range(count), size, fmt, quality, workers)
    for shard in range(n_shards):
        path = out_dir / f"{prefix}-{shard:05d}.tar"
        tmp = path.with_name(path.name + ".tmp")
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for _ in range(min(per_shard, count - shard * per_shard)):
                index, image, caption, meta = next(samples)
                key = f"{shard:05d}{index % per_shard:04d}"
                meta = {"key": key, "caption": caption, **meta}
                _add(tar, f"{key}.{fmt}", image)
                _add(tar, f"{key}.txt", caption.encode("utf-8"))
                _add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode("utf-8"))
        os.replace(tmp, path)
    last = f"{n_shards - 1:05d}"
    pattern = f"{prefix}-{{00000..{last}}}.tar" if n_shards > 1 else f"{prefix}-00000.tar"
    summary = {"prefix": prefix, "samples": count, "shards": n_shards, "pattern": str(out_dir / pattern),
               "image_size": size, "format": fmt, "seconds": round(time.time() - started, 2)}
    _write_json(out_dir / f"{prefix}-summary.json", summary)
    return summary


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """A fresh directory beside `target` that replaces it only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(stage, target)
    shutil.rmtree(old, ignore_errors=True)


def write_countbench(out_dir: Path, seed: int, *, size: int = 128, fmt: str = "png", workers: int = 1,
                     distractor_prob: float = 0.3) -> dict[str, Any]:
    """540 images (60 per count 2..10) with `CountBench.json` and `countbench.jsonl` in CountBench's schema.

    `image` is relative to the directory holding the JSON; the JSONL adds the scene metadata, and
    `countbench-held-out-kinds.jsonl` holds the 270 images of object kinds never seen in training and
    `countbench-distractors.jsonl` those with objects of another kind beside the counted ones.
    """
    make = partial(streams.countbench, seed, distractor_prob=distractor_prob)
    total = streams.COUNTBENCH_PER_COUNT * len(streams.COUNTBENCH_COUNTS)
    with staged_dir(out_dir) as stage:
        (stage / "images").mkdir()
        entries, lines = [], []
        for index, image, caption, meta in rendered(make, range(total), size, fmt, 95, workers):
            relative = f"images/{index:04d}.{fmt}"
            (stage / relative).write_bytes(image)
            entries.append({"image": relative, "text": caption, "number": meta["count"]})
            lines.append({**entries[-1], **meta})
        _write_json(stage / "CountBench.json", entries)
        _write_jsonl(stage / "countbench.jsonl", lines)
        # The half whose object kinds never appear in training, for a transfer breakdown.
        _write_jsonl(stage / "countbench-held-out-kinds.jsonl", [line for line in lines if line["held_out_kind"]])
        # The scenes with 1..2 objects of another kind: the model must count the named kind only.
        _write_jsonl(stage / "countbench-distractors.jsonl", [line for line in lines if line["distractor"]])
    return {"images": total, "path": str(out_dir / "countbench.jsonl")}


def write_zeroshot(out_dir: Path, seed: int, *, per_class: int = 10, size: int = 128, fmt: str = "png",
                   workers: int = 1) -> dict[str, Any]:
    """An image folder `<class name>/<n>.<fmt>`: one class per training kind (class names may hold spaces)."""
    n_classes = len(streams.training_kinds())
    make = partial(streams.zeroshot, seed, per_class=per_class)
    with staged_dir(out_dir) as stage:
        for index, image, caption, _ in rendered(make, range(n_classes * per_class), size, fmt, 95, workers):
            folder = stage / caption
            folder.mkdir(exist_ok=True)
            (folder / f"{index % per_class:04d}.{fmt}").write_bytes(image)
    return {"classes": n_classes, "images": n_classes * per_class, "path": str(out_dir)}


def write_gallery(out_dir: Path, seed: int, *, count: int = 1800, size: int = 160, quality: int = 82,
                  workers: int = 1) -> dict[str, Any]:
    """`count` JPEGs and `gallery.jsonl` lines `{id, file, caption, count, noun, kind}` for the service."""
    make = partial(streams.gallery, seed)
    with staged_dir(out_dir) as stage:
        lines = []
        for index, image, caption, meta in rendered(make, range(count), size, "jpg", quality, workers):
            name = f"synth-{index:04d}.jpg"
            (stage / name).write_bytes(image)
            lines.append({"id": f"synth-{index:04d}", "file": name, "caption": caption, "count": meta["count"],
                          "noun": meta["noun"], "kind": meta["kind"], "distractor": meta["distractor"],
                          "distractor_count": meta["distractor_count"]})
        _write_jsonl(stage / "gallery.jsonl", lines)
    total = sum(path.stat().st_size for path in out_dir.iterdir())
    return {"images": count, "bytes": total, "path": str(out_dir / "gallery.jsonl")}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    os.replace(tmp, path)
