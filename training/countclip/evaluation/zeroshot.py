"""Zero-shot classification on an image folder: did counting cost general recognition?

    root/<class name>/<image>   class names come from folder names ("_" read as a space)

Each class is embedded as the mean of its normalised prompt embeddings over TEMPLATES (a
compact subset of CLIP's ImageNet prompts, Radford et al. 2021); an image is scored against
every class, giving top-1 / top-5 accuracy and mean per-class recall.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from countclip.evaluation import metrics as M
from countclip.evaluation.images import DEFAULT_MAX_PIXELS, ImageRejected, open_image_file

# CLIP's 7-prompt ensemble for ImageNet (from the CLIP repository's notebook) plus the plain prompt.
TEMPLATES = (
    "a photo of a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


@dataclass
class ImageFolderData:
    root: Path
    classes: list[str]
    samples: list[tuple[Path, int]]                 # (image file, class index)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def class_name(folder: str) -> str:
    return " ".join(folder.replace("_", " ").split())


def load(source: str, limit_per_class: int | None = None) -> ImageFolderData:
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{source}: not a directory (expected <root>/<class name>/<images>)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    data = ImageFolderData(root, [], [])
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue  # an empty class would score nothing and skew mean recall
        data.classes.append(class_name(folder.name))
        data.samples += [(path, len(data.classes) - 1) for path in files[:limit_per_class]]
    if len(data.classes) < 2:
        raise ValueError(f"{source}: found {len(data.classes)} class folder(s) with images; need at least 2")
    return data


@torch.no_grad()
def class_embeddings(model: Any, classes: Sequence[str], templates: Sequence[str], device: str) -> torch.Tensor:
    """[C, D]: per class, the renormalised mean of its normalised prompt embeddings."""
    rows = []
    for name in classes:
        batch = model.tokenize([template.format(name) for template in templates])
        features = model.encode_text(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float()
        mean = torch.nn.functional.normalize(features, dim=-1).mean(dim=0)
        rows.append(torch.nn.functional.normalize(mean, dim=-1))
    return torch.stack(rows)


@torch.no_grad()
def evaluate(model: Any, data: ImageFolderData, batch_size: int = 64, device: str = "cpu",
             templates: Sequence[str] = TEMPLATES, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    model = model.to(device).eval()
    classifier = class_embeddings(model, data.classes, templates, device)
    logits, labels, skipped = [], [], list(data.skipped)
    for start in range(0, len(data.samples), batch_size):
        pixels, batch_labels = [], []
        for path, label in data.samples[start:start + batch_size]:
            try:
                pixels.append(model.preprocess(open_image_file(path, max_pixels)))
                batch_labels.append(label)
            except ImageRejected as rejected:
                skipped.append({"key": str(path), "reason": f"image:{rejected.reason}", "detail": rejected.detail})
        if pixels:
            features = model.encode_image(torch.stack(pixels).to(device)).float()
            logits.append((torch.nn.functional.normalize(features, dim=-1) @ classifier.T).cpu().numpy())
            labels += batch_labels
    scores = np.concatenate(logits) if logits else np.zeros((0, len(data.classes)))
    return {**M.classification_metrics(scores, labels), "n_classes": len(data.classes),
            "chance_acc1": 1 / len(data.classes), "n_templates": len(templates), "n_skipped": len(skipped),
            "skipped_by_reason": dict(Counter(s["reason"] for s in skipped)), "skipped": skipped}
