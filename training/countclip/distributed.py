"""Distributed set-up from torchrun's environment, and the collectives the trainer needs.

`torchrun --nproc-per-node N -m countclip.cli train ...` sets RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR and MASTER_PORT; a plain `countclip train` sees none of them and runs as one
process with no process group at all (so single-device runs never pay for collectives).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """`auto` picks this process's GPU when there is one, else the CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(requested_device: str = "auto") -> DistEnv:
    """Join the process group torchrun describes (nccl on GPU, gloo on CPU), or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=device if device.type == "cuda" else None)
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, world_size) of the current process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _gather_rows(tensor: torch.Tensor, same_rows: bool) -> tuple[torch.Tensor, list[int]]:
    """Every rank's rows concatenated, and each rank's row count. Unless `same_rows` promises equal
    counts, the counts are exchanged first and rows padded to the longest for the collective."""
    _, world_size = world()
    if same_rows:
        counts = [tensor.shape[0]] * world_size
    else:
        size = torch.tensor([tensor.shape[0]], device=tensor.device)
        sizes = [torch.zeros_like(size) for _ in range(world_size)]
        dist.all_gather(sizes, size)
        counts = [int(s) for s in sizes]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, counts)], dim=0), counts


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient for this rank's rows."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, same_rows: bool) -> torch.Tensor:
        gathered, ctx.counts = _gather_rows(tensor, same_rows)
        ctx.rank = world()[0]
        return gathered

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # each rank's loss contributes to every rank's rows
        start = sum(ctx.counts[: ctx.rank])
        return grad[start: start + ctx.counts[ctx.rank]], None


def all_gather_with_grad(tensor: torch.Tensor, same_rows: bool = False) -> torch.Tensor:
    """Concatenate every rank's tensor along dim 0; gradients flow back to each owner."""
    if world()[1] == 1:
        return tensor
    return _GatherWithGrad.apply(tensor, same_rows)


def all_gather_no_grad(tensor: torch.Tensor, same_rows: bool = False) -> torch.Tensor:
    """Concatenate every rank's tensor along dim 0; only the local rows stay in the graph."""
    rank, world_size = world()
    if world_size == 1:
        return tensor
    with torch.no_grad():
        gathered, counts = _gather_rows(tensor.detach(), same_rows)
    start = sum(counts[:rank])
    return torch.cat([gathered[:start], tensor, gathered[start + counts[rank]:]], dim=0)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (returns a new tensor; the input is untouched)."""
    if world()[1] == 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average scalar metrics over ranks so rank 0 logs global figures."""
    if world()[1] == 1 or not values:
        return values
    keys = sorted(values)
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    packed /= world()[1]
    return dict(zip(keys, packed.tolist()))


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's picklable object, in rank order (used for small per-rank resume state)."""
    if world()[1] == 1:
        return [obj]
    out: list[Any] = [None] * world()[1]
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
