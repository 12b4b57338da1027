"""Shared base for the evaluators' fake "CLIP" models, whose answers are known in advance."""

from __future__ import annotations

import torch
from torch import nn


class TextRecordingModel(nn.Module):
    """`tokenize` records each text and hands out its index as the only token, so a subclass's
    `encode_text` can embed `self.texts[i]` by rule instead of by learned weights."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.anchor = nn.Parameter(torch.zeros(1))  # so .to(device) has something to move

    def tokenize(self, texts):
        start = len(self.texts)
        self.texts += list(texts)
        ids = torch.arange(start, start + len(texts))[:, None]
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def recorded(self, input_ids: torch.Tensor) -> list[str]:
        return [self.texts[i] for i in input_ids[:, 0].tolist()]
