"""Checkpoints: safetensors weights + a weights-only torch file + JSON, written atomically.

    <output-dir>/checkpoints/step-00001000/
        model.safetensors   the adapter's state dict
        trainer.pt          optimizer, scheduler, grad scaler, torch RNG states (tensors and plain
                            containers only: loaded with torch.load(weights_only=True))
        state.json          step, samples seen, per-rank data positions and skip counts,
                            Python/NumPy RNG states, the full config
    <output-dir>/checkpoints/latest   name of the newest complete checkpoint

A checkpoint is assembled in a temporary sibling directory and renamed into place, and
`latest` is replaced atomically after it, so a crash at any moment leaves the previous
checkpoint intact and never a half-written one under a final name.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from countclip.model.base import ClipAdapter

LATEST = "latest"
PREFIX = "step-"


def rng_state() -> dict[str, Any]:
    """This process's RNG states: JSON-safe parts and tensor parts kept apart."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": _to_lists(random.getstate()),
            "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_np = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss_np))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def model_state(adapter: ClipAdapter) -> dict[str, torch.Tensor]:
    # Contiguous CPU copies; safetensors refuses tensors that share storage, so clone.
    return {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in adapter.state_dict().items()}


def save_checkpoint(directory: Path, adapter: ClipAdapter, trainer: dict[str, Any], state: dict[str, Any],
                    keep: int) -> Path:
    """Write `directory/step-N/` atomically, point `latest` at it, prune old ones."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(f".{PREFIX}*.tmp-*"):  # left by a run killed mid-save
        shutil.rmtree(stale, ignore_errors=True)
    final = directory / f"{PREFIX}{state['step']:08d}"
    tmp = directory / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(model_state(adapter), str(tmp / "model.safetensors"))
    torch.save(trainer, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (e.g. after a resume) replaces it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(directory / LATEST, final.name)
    _prune(directory, keep)
    return final


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    for file in path.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


def _prune(directory: Path, keep: int) -> None:
    steps = sorted(p for p in directory.glob(f"{PREFIX}*") if p.is_dir())
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """'latest' -> the newest complete checkpoint under output_dir (None if there is none yet)."""
    if resume != LATEST:
        path = Path(resume)
        if not (path / "state.json").is_file():
            raise FileNotFoundError(f"--resume {resume}: not a checkpoint directory (no state.json)")
        return path
    directory = output_dir / "checkpoints"
    pointer = directory / LATEST
    if pointer.is_file():
        candidate = directory / pointer.read_text().strip()
        if (candidate / "state.json").is_file():
            return candidate
    complete = sorted(p for p in directory.glob(f"{PREFIX}*") if (p / "state.json").is_file())
    return complete[-1] if complete else None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(model state dict, trainer state, JSON state). Never unpickles arbitrary objects."""
    weights = load_file(str(path / "model.safetensors"))
    trainer = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
    state = json.loads((path / "state.json").read_text())
    return weights, trainer, state
