"""A quick in-training check of counting: does the model prefer the true caption to a counterfactual?"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from countclip.models import ClipAdapter


@torch.no_grad()
def count_choice_accuracy(adapter: ClipAdapter, images: Sequence[Image.Image], captions: Sequence[str],
                          seed: int = 0, batch_size: int = 64) -> dict[str, float]:
    """Fraction of images whose true caption outscores one counterfactual (chance = 0.5).

    Captions without a findable count in 2..10 are left out (reported as `count_eval_skipped`).
    """
    from countclip.counts import make_counterfactual

    rng = random.Random(seed)
    pairs = []
    for image, caption in zip(images, captions):
        made = make_counterfactual(caption, rng)
        if made is not None:
            pairs.append((image, caption, made[0]))
    was_training = adapter.training
    adapter.eval()
    device = next(adapter.parameters()).device
    correct = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        pixels = torch.stack([adapter.preprocess(image) for image, _, _ in chunk]).to(device)
        tokens = adapter.tokenize([c for _, c, _ in chunk] + [c for _, _, c in chunk])
        image_features = F.normalize(adapter.encode_image(pixels).float(), dim=-1)
        text_features = F.normalize(adapter.encode_text(tokens["input_ids"].to(device),
                                                        tokens["attention_mask"].to(device)).float(), dim=-1)
        true_scores = (image_features * text_features[:len(chunk)]).sum(-1)
        false_scores = (image_features * text_features[len(chunk):]).sum(-1)
        correct += int((true_scores > false_scores).sum())
    adapter.train(was_training)
    return {"count_eval_acc": correct / max(1, len(pairs)), "count_eval_samples": len(pairs),
            "count_eval_skipped": len(images) - len(pairs)}
