"""A quick in-training check of counting: does the model prefer the true caption to a counterfactual?"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from countclip.data import open_source
from countclip.data.decode import Decoded, decode, normalize_pixels
from countclip.data.stream import RawStream
from countclip.model.base import ClipAdapter


def load_eval_samples(spec: str, adapter: ClipAdapter, limit: int, image_root: str | None = None,
                      ) -> tuple[list[np.ndarray], list[str]]:
    """The first `limit` usable samples of a data spec, in file order (no shuffling)."""
    stream = RawStream(open_source(spec, image_root), "eval", seed=0, shuffle=False, epochs=1)
    images, captions = [], []
    for raw in stream:
        sample = decode(raw, adapter.preprocess_config)
        if isinstance(sample, Decoded):
            images.append(sample.pixels)
            captions.append(sample.caption)
            if len(images) >= limit:
                break
    return images, captions


def _pixel_values(adapter: ClipAdapter, images: Sequence[Image.Image | np.ndarray], device: torch.device) -> torch.Tensor:
    if all(isinstance(image, np.ndarray) for image in images):  # uint8 crops from the data pipeline
        return normalize_pixels(torch.from_numpy(np.stack(images)).to(device), adapter.preprocess_config)
    return torch.stack([adapter.preprocess(image) for image in images]).to(device)


@torch.no_grad()
def count_choice_accuracy(adapter: ClipAdapter, images: Sequence[Image.Image | np.ndarray], captions: Sequence[str],
                          seed: int = 0, batch_size: int = 64) -> dict[str, float]:
    """Fraction of images whose true caption outscores one counterfactual (chance = 0.5).

    Captions without a findable count in 2..10 are left out (reported as `count_eval_skipped`).
    """
    from countclip.counting.core import make_counterfactual

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
        pixels = _pixel_values(adapter, [image for image, _, _ in chunk], device)
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
