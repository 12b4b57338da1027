"""The model bundle the service loads: layout, manifest, integrity.

A bundle is a directory:

    text.onnx              input_ids, attention_mask (int64 [batch, seq]) -> text_embeds (float32 [batch, D], L2-normalised)
    vision.onnx            pixel_values (float32 [batch, 3, H, W])        -> image_embeds (float32 [batch, D], L2-normalised)
    tokenizer.json         HF tokenizers format (CLIP BPE), truncation/padding set to reproduce training's tokenizer
    tokenizer_config.json
    preprocess.json        `countclip.model.preprocess.PreprocessConfig` fields
    manifest.json          format, model facts, training summary, metrics, and sha256 + size of every other file
    text.int8.onnx         optional (`countclip export --quantize`): int8 towers that passed parity with fp32;
    vision.int8.onnx       manifest `precision` names the default per tower, `quantization` the parity figures

`verify_bundle(dir)` is what every loader should call: it refuses a bundle whose files are
missing, altered or unlisted, naming the offending file.

    python -m countclip.bundle DIR    # verify a bundle from the shell
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

FORMAT = "countclip-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TEXT_ONNX = "text.onnx"
VISION_ONNX = "vision.onnx"
TOKENIZER = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
PREPROCESS = "preprocess.json"
REQUIRED_FILES = (TEXT_ONNX, VISION_ONNX, TOKENIZER, TOKENIZER_CONFIG, PREPROCESS)
MANIFEST_KEYS = ("format", "format_version", "model_name", "base_model", "embed_dim", "logit_scale",
                 "context_length", "image_size", "created_at", "training", "metrics", "command", "files")

# ONNX graph names: part of the contract with the service (server/), change both sides together.
TEXT_INPUTS = ("input_ids", "attention_mask")
TEXT_OUTPUT = "text_embeds"
VISION_INPUT = "pixel_values"
VISION_OUTPUT = "image_embeds"


class BundleError(Exception):
    """A bundle that must not be loaded: missing, tampered with, or of an unknown format."""


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(directory: Path, names: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The manifest's `files` table for `names` inside `directory`."""
    entries = {}
    for name in sorted(names):
        path = directory / name
        entries[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return entries


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader sees either the old file or the complete new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from a service user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Hash every file in the bundle (except the manifest itself) and write manifest.json."""
    directory = Path(directory)
    names = [p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST]
    missing = [name for name in REQUIRED_FILES if name not in names]
    if missing:
        raise BundleError(f"{directory}: cannot write a manifest, missing {', '.join(missing)}")
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest, "files": file_entries(directory, names)}
    absent = [key for key in MANIFEST_KEYS if key not in full]
    if absent:
        raise BundleError(f"manifest is missing keys: {', '.join(absent)}")
    write_json_atomic(directory / MANIFEST, full)
    return directory / MANIFEST


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """Parse and validate manifest.json (format, version, keys) without hashing the files."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{directory}: not a countclip bundle (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: manifest is not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format is not {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format_version {manifest.get('format_version')!r} is not supported "
                          f"(this reader knows version {FORMAT_VERSION})")
    absent = [key for key in MANIFEST_KEYS if key not in manifest]
    if absent:
        raise BundleError(f"{path}: manifest is missing keys: {', '.join(absent)}")
    files = manifest["files"]
    if not isinstance(files, dict) or any(name not in files for name in REQUIRED_FILES):
        listed = set(files) if isinstance(files, dict) else set()
        raise BundleError(f"{path}: manifest does not list {', '.join(n for n in REQUIRED_FILES if n not in listed)}")
    return manifest


def _check_file(directory: Path, name: str, entry: dict[str, Any]) -> str | None:
    """One file against its manifest entry; a reason string when it fails."""
    if Path(name).name != name or name in ("", ".", ".."):
        return f"{name!r}: manifest entry is not a plain file name"
    path = directory / name
    if not path.is_file():
        return f"{name}: missing"
    size = path.stat().st_size
    if size != entry.get("bytes"):
        return f"{name}: size {size} bytes, manifest says {entry.get('bytes')} (file altered or truncated)"
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        return f"{name}: sha256 {digest} does not match the manifest's {entry.get('sha256')} (file altered)"
    return None


def verify_bundle(directory: str | Path) -> dict[str, Any]:
    """Load the manifest and check every listed file's size and sha256; no unlisted files allowed.

    Returns the manifest. Raises BundleError naming every tampered, missing or unlisted file.
    """
    directory = Path(directory)
    manifest = load_manifest(directory)
    problems = [reason for name, entry in sorted(manifest["files"].items())
                if (reason := _check_file(directory, name, entry if isinstance(entry, dict) else {}))]
    on_disk = {p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST}
    problems += [f"{name}: not listed in the manifest" for name in sorted(on_disk - set(manifest["files"]))]
    if problems:
        raise BundleError(f"bundle {directory} failed verification:\n  " + "\n  ".join(problems))
    return manifest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m countclip.bundle BUNDLE_DIR   (verify every file's sha256)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        manifest = verify_bundle(argv[0])
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ok: {manifest['model_name']} ({len(manifest['files'])} files verified)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
