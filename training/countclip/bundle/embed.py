"""`countclip embed`: image embeddings of a big gallery with an exported bundle, for bulk import.

The service re-embeds nothing it is given this way: `POST /v1/index/import {"path": OUT}` loads
the vector bundle this writes (index/vector-bundle.ts is the reader):

    OUT/manifest.json   {"format": "countclip-vectors", "modelId", "dim", "count", "bundle", "source"}
    OUT/vectors.npy     float32 (count, dim), L2-normalised, row i = line i of ids.jsonl
    OUT/ids.jsonl       {"id", "source", "sha256"} per image (sha256 of the image bytes)

Images come from a folder (recursive), webdataset tar shards, or a parquet file with a column of
image paths. Embeddings are the bundle's own: its vision.onnx through onnxruntime (CUDA when
present) after its preprocess.json (`countclip.model.preprocess.preprocess_image`), exactly what the
service computes, and `modelId` is the service's fingerprint of the bundle, so an import of
vectors from another model is refused there.

The work is cut into parts of `--part-size` images written as OUT/parts/NNNNN.{npy,jsonl} and
renamed into place when complete: a killed run resumes by skipping finished parts. With
RANK/WORLD_SIZE set (torchrun), process r takes parts r, r + W, ...; the last one to finish
(or `--assemble` alone) writes the final files.

    countclip embed --bundle bundles/b32 --images photos/ --out vectors/photos
    countclip embed --bundle bundles/b32 --shards 'shards/{00000..00099}.tar' --out vectors/web
    countclip embed --bundle bundles/b32 --parquet paths.parquet --path-column path --out vectors/p
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from countclip.bundle import manifest as B

FORMAT = "countclip-vectors"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class ImageRef:
    """One image to embed: its id, where it came from, and how to read its bytes."""

    id: str
    source: str
    path: Path | None = None
    shard: Path | None = None
    member: str | None = None


def model_id(directory: Path) -> str:
    """The service's fingerprint of a bundle (server/model/bundle.ts contentHashOf)."""
    manifest = B.verify_bundle(directory)
    digest = hashlib.sha256()
    for name in sorted(manifest["files"]):
        digest.update(f"{name}\0{manifest['files'][name]['sha256']}\n".encode())
    return f"{manifest['model_name']}@{digest.hexdigest()[:12]}"


def image_id(name: str) -> str:
    """A service-valid id from a file name or shard key (a digest when nothing valid is left)."""
    candidate = re.sub(r"[^A-Za-z0-9._:-]", "_", name.replace("/", ":"))
    if ID_PATTERN.match(candidate):
        return candidate
    return "img-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def folder_images(root: Path) -> list[ImageRef]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return [ImageRef(image_id(str(p.relative_to(root))), f"file:{p.relative_to(root)}", path=p) for p in files]


def expand_braces(pattern: str) -> list[str]:
    """webdataset's `{00000..00099}` shard ranges."""
    match = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if not match:
        return [pattern]
    width = len(match.group(1))
    head, tail = pattern[: match.start()], pattern[match.end():]
    return [p for n in range(int(match.group(1)), int(match.group(2)) + 1) for p in expand_braces(f"{head}{n:0{width}d}{tail}")]


def shard_images(pattern: str) -> list[ImageRef]:
    refs = []
    for shard in map(Path, expand_braces(pattern)):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, ext = os.path.splitext(member.name)
                if member.isfile() and ext.lower() in IMAGE_EXTENSIONS:
                    refs.append(ImageRef(image_id(key), f"shard:{shard.name}:{key}", shard=shard, member=member.name))
    return refs


def parquet_images(file: Path, path_column: str, id_column: str | None) -> list[ImageRef]:
    import pyarrow.parquet as pq

    table = pq.read_table(file, columns=[path_column] + ([id_column] if id_column else []))
    paths = table.column(path_column).to_pylist()
    ids = table.column(id_column).to_pylist() if id_column else [None] * len(paths)
    base = file.parent
    refs = []
    for raw, given in zip(paths, ids):
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        refs.append(ImageRef(image_id(str(given if given is not None else raw)), f"file:{raw}", path=path))
    return refs


def read_bytes(ref: ImageRef) -> bytes:
    if ref.path is not None:
        return ref.path.read_bytes()
    assert ref.shard is not None and ref.member is not None
    with tarfile.open(ref.shard) as tar:
        handle = tar.extractfile(ref.member)
        assert handle is not None
        return handle.read()


class Encoder:
    """The bundle's vision tower and preprocessing (countclip.bundle.onnx_model)."""

    def __init__(self, directory: Path) -> None:
        from countclip.bundle.onnx_model import BundleModel

        self.model = BundleModel(directory)
        self.dim = self.model.embed_dim

    def encode(self, images: list[bytes]) -> np.ndarray:
        import torch
        from PIL import Image

        pixels = torch.stack([self.model.preprocess(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
        vectors = self.model.encode_image(pixels).numpy().astype(np.float32)
        # The service stores unit vectors; the ONNX output is normalised already, make sure.
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def part_paths(out: Path, index: int) -> tuple[Path, Path]:
    return out / "parts" / f"{index:05d}.npy", out / "parts" / f"{index:05d}.jsonl"


def embed_part(encoder: Encoder, refs: list[ImageRef], out: Path, index: int, batch_size: int) -> int:
    """Embed one part and rename it into place; unreadable images are skipped with a note."""
    vectors, rows = [], []
    for start in range(0, len(refs), batch_size):
        batch, data = [], []
        for ref in refs[start:start + batch_size]:
            try:
                raw = read_bytes(ref)
                from PIL import Image

                Image.open(io.BytesIO(raw)).verify()
            except Exception as err:  # noqa: BLE001 - one broken image skips only itself
                print(f"embed: skipping {ref.source}: {err}", file=sys.stderr)
                continue
            batch.append(ref)
            data.append(raw)
        if not batch:
            continue
        vectors.append(encoder.encode(data))
        rows += [{"id": r.id, "source": r.source, "sha256": hashlib.sha256(d).hexdigest()} for r, d in zip(batch, data)]
    npy, jsonl = part_paths(out, index)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    tmp_npy, tmp_jsonl = npy.with_suffix(".npy.tmp"), jsonl.with_suffix(".jsonl.tmp")
    with open(tmp_npy, "wb") as handle:
        np.save(handle, matrix.astype("<f4"))
    tmp_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    # The .jsonl lands last: its presence marks the part complete.
    os.replace(tmp_npy, npy)
    os.replace(tmp_jsonl, jsonl)
    return len(rows)


def assemble(out: Path, parts: int, dim: int, model: str, bundle_dir: Path, source: str) -> int:
    """Concatenate the parts into vectors.npy + ids.jsonl + manifest.json; ids stay unique."""
    seen: set[str] = set()
    rows_per_part = []
    for index in range(parts):
        rows = [json.loads(line) for line in part_paths(out, index)[1].read_text(encoding="utf-8").splitlines() if line]
        rows_per_part.append(rows)
    total = sum(len(r) for r in rows_per_part)
    vectors = np.lib.format.open_memmap(out / "vectors.npy.tmp", mode="w+", dtype="<f4", shape=(total, dim))
    at = 0
    with open(out / "ids.jsonl.tmp", "w", encoding="utf-8") as ids:
        for index, rows in enumerate(rows_per_part):
            part = np.load(part_paths(out, index)[0])
            for i, row in enumerate(rows):
                while row["id"] in seen:  # two files that sanitise to one id
                    row["id"] = image_id(row["id"] + "~")
                seen.add(row["id"])
                ids.write(json.dumps(row) + "\n")
                vectors[at + i] = part[i]
            at += len(rows)
    vectors.flush()
    del vectors
    os.replace(out / "vectors.npy.tmp", out / "vectors.npy")
    os.replace(out / "ids.jsonl.tmp", out / "ids.jsonl")
    B.write_json_atomic(out / "manifest.json", {"format": FORMAT, "modelId": model, "dim": dim, "count": total,
                                                "bundle": str(bundle_dir), "source": source})
    return total


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countclip embed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="bundle directory from `countclip export`")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="folder of images (recursive)")
    source.add_argument("--shards", help="webdataset tar shards, e.g. 'shards/{00000..00099}.tar'")
    source.add_argument("--parquet", type=Path, help="parquet file with a column of image paths")
    parser.add_argument("--path-column", default="path", help="parquet: column of image paths (relative to the file)")
    parser.add_argument("--id-column", default=None, help="parquet: column of ids (default: from the path)")
    parser.add_argument("--out", required=True, type=Path, help="output directory (the vector bundle)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--part-size", type=int, default=4096, help="images per resumable part")
    parser.add_argument("--assemble", action="store_true", help="only assemble finished parts")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if args.images:
        refs, source = folder_images(args.images), str(args.images)
    elif args.shards:
        refs, source = shard_images(args.shards), args.shards
    else:
        refs, source = parquet_images(args.parquet, args.path_column, args.id_column), str(args.parquet)
    (args.out / "parts").mkdir(parents=True, exist_ok=True)
    model = model_id(args.bundle)
    parts = max(1, -(-len(refs) // args.part_size))
    encoder = None if args.assemble else Encoder(args.bundle)
    for index in range(rank, parts, world):
        if args.assemble or part_paths(args.out, index)[1].exists():
            continue
        done = embed_part(encoder, refs[index * args.part_size:(index + 1) * args.part_size], args.out, index, args.batch_size)
        print(f"embed: part {index + 1}/{parts}: {done} images", file=sys.stderr)
    if not all(part_paths(args.out, i)[1].exists() for i in range(parts)):
        print(f"embed: rank {rank} done; other ranks' parts are still missing (rerun with --assemble when they finish)")
        return 0
    dim = encoder.dim if encoder else int(B.load_manifest(args.bundle)["embed_dim"])
    total = assemble(args.out, parts, dim, model, args.bundle, source)
    print(f"embed: {total} vectors of model {model} in {args.out} (POST /v1/index/import {{\"path\": \"{args.out}\"}})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
