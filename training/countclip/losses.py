"""Losses of "Teaching CLIP to Count to Ten": L = L_clip + lambda * L_count.

Each loss is an `nn.Module` returning a dict; keys ending in `_loss` are summed by the
training step, the other keys are metrics to log (open_clip's convention).

Features passed in must already be L2-normalised; `logit_scale` is the *exp()'d* scale
(the model stores its log and the trainer exponentiates it once per step).

Under DDP (torch.distributed initialised) ClipLoss computes the *local* loss: this rank's
images against every rank's texts and vice versa, labels `arange(B) + B * rank`, with the
gathered features carrying gradients back to their owners. DDP's gradient averaging then
yields exactly the gradient of the global-batch loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from countclip import distributed


class ClipLoss(nn.Module):
    """Symmetric InfoNCE over the (global) batch.

    `extra_negatives` (the NegCLIP-style ablation) are text features that only ever act as
    negatives for the image->text direction: the counterfactual captions join the columns
    of the image->text logits, never the rows of the text->image logits.
    """

    def __init__(self, gather_with_grad: bool = True) -> None:
        super().__init__()
        self.gather_with_grad = gather_with_grad

    def _gather(self, features: torch.Tensor, same_rows: bool = True) -> torch.Tensor:
        if self.gather_with_grad:
            return distributed.all_gather_with_grad(features, same_rows)
        return distributed.all_gather_no_grad(features, same_rows)

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                extra_negatives: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        rank, _ = distributed.world()
        all_images = self._gather(image_features)
        all_texts = self._gather(text_features)
        columns = all_texts
        if extra_negatives is not None:
            # ranks hold different numbers of counterfactuals, so their counts are exchanged
            columns = torch.cat([all_texts, self._gather(extra_negatives, same_rows=False)], dim=0)
        logits_per_image = logit_scale * image_features @ columns.T
        logits_per_text = logit_scale * text_features @ all_images.T
        batch = image_features.shape[0]
        labels = torch.arange(batch, device=image_features.device) + batch * rank
        loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
        return {"clip_loss": loss}


class CountLoss(nn.Module):
    """2-way softmax per counting image: its true caption against its counterfactual caption.

    `count_index[i]` is the batch position of the i-th counting sample, whose counterfactual
    text feature is `counterfactual_features[i]`. Counterfactuals are NOT negatives of any other
    image. The loss is the mean over every counting sample of the global batch (ranks may hold
    different numbers of them), and `weight` is lambda.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                counterfactual_features: torch.Tensor, count_index: torch.Tensor) -> dict[str, torch.Tensor]:
        images = image_features[count_index]
        true_logit = logit_scale * (images * text_features[count_index]).sum(dim=-1)
        false_logit = logit_scale * (images * counterfactual_features).sum(dim=-1)
        logits = torch.stack([true_logit, false_logit], dim=1)
        per_sample = F.cross_entropy(logits, torch.zeros_like(count_index), reduction="none")
        # One collective for both: how many counting samples, and how many already right, over all ranks.
        local = torch.stack([torch.tensor(float(count_index.numel()), device=logits.device),
                             (true_logit > false_logit).float().sum().detach()])
        total, correct = distributed.all_reduce_sum(local).unbind()
        _, world_size = distributed.world()
        # Sum / global count, times world size because DDP averages the ranks' gradients.
        loss = per_sample.sum() * (world_size / total.clamp(min=1.0))
        return {"count_loss": self.weight * loss, "count_acc": correct / total.clamp(min=1.0), "count_samples": total}
