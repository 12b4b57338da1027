"""One training step: model wrapper, objective, and forward/backward/update.

`ContrastiveModel` gives DDP and torch.compile a single `forward` over an adapter: one image
forward and ONE text forward that embeds the true captions and the counterfactuals together.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from countclip.data.decode import normalize_pixels
from countclip.losses import ClipLoss, CountLoss
from countclip.model.base import LOGIT_SCALE_MAX, ClipAdapter


class ContrastiveModel(nn.Module):
    def __init__(self, adapter: ClipAdapter) -> None:
        super().__init__()
        self.adapter = adapter

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        image = F.normalize(self.adapter.encode_image(pixel_values).float(), dim=-1)
        text = F.normalize(self.adapter.encode_text(input_ids, attention_mask).float(), dim=-1)
        return {"image_features": image, "text_features": text, "logit_scale": self.adapter.logit_scale.float().exp()}


class Objective(nn.Module):
    """L = L_clip + lambda * L_count, or L_clip with counterfactual negatives (the ablation)."""

    def __init__(self, count_loss_weight: float, counterfactual_mode: str, gather_with_grad: bool = True) -> None:
        super().__init__()
        self.clip = ClipLoss(gather_with_grad=gather_with_grad)
        self.count = CountLoss(count_loss_weight) if counterfactual_mode == "count-loss" and count_loss_weight > 0 else None
        self.negatives = counterfactual_mode == "clip-negatives"

    def forward(self, outputs: dict[str, torch.Tensor], count_index: torch.Tensor,
                num_captions: int) -> dict[str, torch.Tensor]:
        image = outputs["image_features"]
        texts = outputs["text_features"]
        true_texts, counterfactuals = texts[:num_captions], texts[num_captions:]
        scale = outputs["logit_scale"]
        extra = counterfactuals if self.negatives else None
        result = dict(self.clip(image, true_texts, scale, extra_negatives=extra))
        if self.count is not None:
            result.update(self.count(image, true_texts, scale, counterfactuals, count_index))
        result["logit_scale"] = scale.detach()
        return result


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(resolve_precision(device, precision))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_precision(device: torch.device, precision: str) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def to_device(batch: dict[str, Any], adapter: ClipAdapter, device: torch.device) -> dict[str, Any]:
    """Move tensors to the device and normalise pixels there (the loader ships uint8 crops)."""
    non_blocking = device.type == "cuda"
    moved = {key: value.to(device, non_blocking=non_blocking) if torch.is_tensor(value) else value
             for key, value in batch.items()}
    moved["pixel_values"] = normalize_pixels(moved.pop("pixels"), adapter.preprocess_config)
    return moved


@dataclass
class StepContext:
    model: nn.Module  # ContrastiveModel, possibly wrapped by DDP and/or torch.compile
    adapter: ClipAdapter
    objective: Objective
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    precision: str
    grad_clip: float


def compute_losses(ctx: StepContext, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    with autocast_context(ctx.device, ctx.precision):
        outputs = ctx.model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    return ctx.objective(outputs, batch["count_index"], batch["num_captions"])


def train_step(ctx: StepContext, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Forward, backward on the sum of `*_loss` terms, clip, update, clamp the temperature.

    Returns detached tensors: reading them (a device sync) is left to the logging steps.
    """
    ctx.optimizer.zero_grad(set_to_none=True)
    results = compute_losses(ctx, batch)
    total = sum(value for key, value in results.items() if key.endswith("_loss"))
    ctx.scaler.scale(total).backward()
    ctx.scaler.unscale_(ctx.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(ctx.adapter.parameters(), ctx.grad_clip or float("inf"))
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.scheduler.step()
    with torch.no_grad():
        ctx.adapter.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
    metrics = {key: value.detach() for key, value in results.items()}
    metrics["loss"] = total.detach()
    metrics["grad_norm"] = grad_norm.detach()
    return metrics
