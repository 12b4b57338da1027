"""An exponential moving average of the weights (EMA), the weights a run hands on when asked to.

Why: a small model fine-tuned with a high learning rate ends where the last few hundred noisy
steps left it; the average of those steps generalises better and moves less from seed to seed.
The average warms up ((1 + t) / (10 + t) caps the decay), so early steps, far from the end,
fade fast. It lives beside the optimizer: checkpoints carry it, `--resume` continues it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "average": [a.cpu() for a in self.average]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["average"]) != len(self.average):
            raise ValueError("the checkpoint's weight average does not match the model's parameters")
        self.updates = int(state["updates"])
        for mine, saved in zip(self.average, state["average"]):
            mine.copy_(saved.to(mine.device))

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The averaged weights in the model for the duration (saving, evaluating), then the live ones back."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for param, average in zip(self.params, self.average):
                param.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, saved in zip(self.params, live):
                    param.copy_(saved)
