"""ClipLoss and CountLoss against hand computations (the 2-process DDP versions: test_ddp.py)."""

from __future__ import annotations

import math

import pytest
import torch

from countclip.losses import ClipLoss, CountLoss

torch.set_num_threads(1)

# Four image/text pairs in 2-D, already unit length: easy to check by hand.
IMAGES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, -0.6]])
TEXTS = torch.tensor([[0.6, 0.8], [0.0, 1.0], [1.0, 0.0], [0.8, 0.6]])
COUNTERFACTUALS = torch.tensor([[0.0, 1.0], [-0.6, 0.8]])  # for images 0 and 2
COUNT_INDEX = torch.tensor([0, 2])
NEGATIVES = torch.tensor([[0.0, 1.0], [-0.6, 0.8], [1.0, 0.0]])
SCALE = 10.0


def dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


def hand_clip(images, texts, rows=None, negatives=()) -> float:
    """Mean over `rows` of the symmetric cross-entropy, written out term by term."""
    rows = range(len(images)) if rows is None else rows
    total = 0.0
    for i in rows:
        columns = [SCALE * dot(images[i], t) for t in list(texts) + list(negatives)]
        image_to_text = -columns[i] + math.log(sum(math.exp(c) for c in columns))
        column = [SCALE * dot(texts[i], im) for im in images]
        text_to_image = -column[i] + math.log(sum(math.exp(c) for c in column))
        total += (image_to_text + text_to_image) / 2
    return total / len(rows)


def hand_count(images, texts, counterfactuals, index) -> float:
    total = 0.0
    for cf, i in zip(counterfactuals, index):
        true, false = SCALE * dot(images[i], texts[i]), SCALE * dot(images[i], cf)
        total += -true + math.log(math.exp(true) + math.exp(false))
    return total / len(index)


def test_clip_loss_matches_hand_computation():
    out = ClipLoss()(IMAGES, TEXTS, torch.tensor(SCALE))
    assert set(out) == {"clip_loss"}
    assert out["clip_loss"].item() == pytest.approx(hand_clip(IMAGES.tolist(), TEXTS.tolist()), rel=1e-6)


def test_clip_loss_with_counterfactual_negatives_only_widens_image_to_text():
    out = ClipLoss()(IMAGES, TEXTS, torch.tensor(SCALE), extra_negatives=COUNTERFACTUALS)
    expected = hand_clip(IMAGES.tolist(), TEXTS.tolist(), negatives=COUNTERFACTUALS.tolist())
    assert out["clip_loss"].item() == pytest.approx(expected, rel=1e-6)
    assert out["clip_loss"].item() > ClipLoss()(IMAGES, TEXTS, torch.tensor(SCALE))["clip_loss"].item()


def test_count_loss_matches_hand_computation_and_reports_accuracy():
    out = CountLoss(weight=0.5)(IMAGES, TEXTS, torch.tensor(SCALE), COUNTERFACTUALS, COUNT_INDEX)
    expected = hand_count(IMAGES.tolist(), TEXTS.tolist(), COUNTERFACTUALS.tolist(), COUNT_INDEX.tolist())
    assert out["count_loss"].item() == pytest.approx(0.5 * expected, rel=1e-6)
    # image 0: true 0.6 vs cf 0.0 -> right; image 2: true 0.6 vs cf 0.28 -> right
    assert out["count_acc"].item() == 1.0
    assert out["count_samples"].item() == 2


def test_count_loss_without_counting_samples_is_zero_and_differentiable():
    images = IMAGES.clone().requires_grad_()
    out = CountLoss()(images, TEXTS, torch.tensor(SCALE), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    assert out["count_loss"].item() == 0.0
    out["count_loss"].backward()
    assert torch.all(images.grad == 0)


def test_count_loss_gradient_pushes_true_caption_up():
    texts = TEXTS.clone().requires_grad_()
    CountLoss()(IMAGES, texts, torch.tensor(SCALE), COUNTERFACTUALS, COUNT_INDEX)["count_loss"].backward()
    # d loss / d true-text feature is -(1 - p_true) * scale * image: opposite to the image.
    assert dot(texts.grad[0].tolist(), IMAGES[0].tolist()) < 0


def test_objective_routes_counterfactuals_to_count_loss_or_to_clip_negatives():
    from countclip.train.step import Objective

    outputs = {"image_features": IMAGES, "text_features": torch.cat([TEXTS, COUNTERFACTUALS]),
               "logit_scale": torch.tensor(SCALE)}
    images, texts, cfs = IMAGES.tolist(), TEXTS.tolist(), COUNTERFACTUALS.tolist()
    paper = Objective(2.0, "count-loss")(outputs, COUNT_INDEX, num_captions=4)
    assert paper["clip_loss"].item() == pytest.approx(hand_clip(images, texts), rel=1e-6)  # no counterfactuals here
    assert paper["count_loss"].item() == pytest.approx(2.0 * hand_count(images, texts, cfs, [0, 2]), rel=1e-6)
    negclip = Objective(1.0, "clip-negatives")(outputs, COUNT_INDEX, num_captions=4)
    assert "count_loss" not in negclip
    assert negclip["clip_loss"].item() == pytest.approx(hand_clip(images, texts, negatives=cfs), rel=1e-6)
    plain = Objective(0.0, "count-loss")(outputs, COUNT_INDEX, num_captions=4)
    assert set(k for k in plain if k.endswith("_loss")) == {"clip_loss"}
