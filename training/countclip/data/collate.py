"""Samples -> one named batch dict, with per-step counterfactual captions.

The true captions and the counterfactual captions are tokenised in ONE call (padded to the
longest of all of them), so the model embeds both in a single text forward:

    input_ids[:num_captions]      true captions, one per image
    input_ids[num_captions:]      counterfactual of the image at count_index[i]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from countclip.data.decode import Decoded

Tokenize = Callable[[list[str]], dict[str, torch.Tensor]]


def _make_counterfactual(text: str, rng: random.Random) -> tuple[str, int, int] | None:
    # Imported lazily: the count core is another module's, and the trainer must import without it.
    from countclip.counting.core import make_counterfactual

    return make_counterfactual(text, rng)


def pad_tokens(tokens: dict[str, torch.Tensor], multiple: int, pad_id: int, limit: int) -> dict[str, torch.Tensor]:
    """Round the sequence length up to `multiple` (kernel-friendly shapes, fewer torch.compile shapes).

    CLIP pools its end-of-text token (the first one in transformers, the highest id in open_clip)
    under a causal mask, so trailing padding of any id below it changes nothing; 0 is safe for both.
    """
    length = tokens["input_ids"].shape[1]
    target = min(-(-length // multiple) * multiple, max(length, limit)) if multiple > 1 else length
    if target == length:
        return tokens
    extra = target - length
    ids = torch.nn.functional.pad(tokens["input_ids"], (0, extra), value=pad_id)
    mask = torch.nn.functional.pad(tokens["attention_mask"], (0, extra), value=0)
    return {"input_ids": ids, "attention_mask": mask}


def collate(samples: Sequence[Decoded], from_counting: Sequence[bool], tokenize: Tokenize, rng: random.Random,
            with_counterfactuals: bool, pad_multiple: int = 1, pad_id: int = 0, context_length: int = 77,
            ) -> dict[str, Any]:
    captions = [sample.caption for sample in samples]
    counterfactuals: list[str] = []
    count_index: list[int] = []
    true_counts: list[int] = []
    new_counts: list[int] = []
    if with_counterfactuals:
        for index, (sample, counting) in enumerate(zip(samples, from_counting)):
            made = _make_counterfactual(sample.caption, rng) if counting else None
            if made is None:  # no findable count in 2..10: the sample counts as general
                continue
            caption, true_count, new_count = made
            counterfactuals.append(caption)
            count_index.append(index)
            true_counts.append(true_count)
            new_counts.append(new_count)
    tokens = pad_tokens(tokenize(captions + counterfactuals), pad_multiple, pad_id, context_length)
    return {
        "pixels": torch.from_numpy(np.stack([sample.pixels for sample in samples])),
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
        "num_captions": len(captions),
        "count_index": torch.tensor(count_index, dtype=torch.long),
        "true_count": torch.tensor(true_counts, dtype=torch.long),
        "counterfactual_count": torch.tensor(new_counts, dtype=torch.long),
        "is_counting": torch.tensor(list(from_counting), dtype=torch.bool),
        "captions": captions,
        "counterfactuals": counterfactuals,
        "keys": [sample.key for sample in samples],
    }
