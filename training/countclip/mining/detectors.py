"""Count verifiers: `detector.detect(images, nouns) -> [Detection]`, one per image.

    HFZeroShotDetector   OWLv2 / OWL-ViT (any transformers zero-shot object detector) queried
                         with the caption's noun; boxes scoring above `threshold` survive
                         non-maximum suppression and are counted.
    BlobCountDetector    deterministic stand-in for tests: counts separate non-background
                         blobs, whatever the noun.

`load_detector(spec)` picks one by the spec's form: "fake" or a hub id / local directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from PIL import Image

DEFAULT_DETECTOR = "google/owlv2-base-patch16-ensemble"
DEFAULT_QUERY = "a photo of a {noun}"


@dataclass(frozen=True)
class Detection:
    count: int
    boxes: list[tuple[float, float, float, float]]  # (x0, y0, x1, y1), normalised to [0, 1]
    scores: list[float]


class Detector(Protocol):
    name: str

    def detect(self, images: Sequence[Image.Image], nouns: Sequence[str]) -> list[Detection]: ...


def box_iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """IoU of one xyxy box [4] against [N, 4]. Invariant to per-axis scaling, so normalised
    coordinates give the same answer as pixels, whatever resize the model used."""
    lo = torch.maximum(box[:2], others[:, :2])
    hi = torch.minimum(box[2:], others[:, 2:])
    inter = (hi - lo).clamp(min=0).prod(dim=1)
    area = (box[2:] - box[:2]).clamp(min=0).prod()
    areas = (others[:, 2:] - others[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area + areas - inter).clamp(min=1e-12)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes greedy non-maximum suppression keeps, best score first."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        if rest.numel() == 0:
            break
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long)


def center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


class HFZeroShotDetector:
    """A transformers zero-shot detector (OWLv2, OWL-ViT) loaded from a hub id or a local directory."""

    def __init__(self, model_id: str = DEFAULT_DETECTOR, threshold: float = 0.3, nms_iou: float = 0.5,
                 device: str | torch.device = "cpu", query_template: str = DEFAULT_QUERY,
                 autocast_dtype: torch.dtype | None = None):
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.name = model_id
        self.threshold, self.nms_iou, self.query_template = threshold, nms_iou, query_template
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype
        self.processor = AutoProcessor.from_pretrained(model_id)
        self.model = AutoModelForZeroShotObjectDetection.from_pretrained(model_id).to(self.device).eval()

    def query(self, noun: str) -> str:
        return self.query_template.format(noun=noun)

    @torch.inference_mode()
    def detect(self, images: Sequence[Image.Image], nouns: Sequence[str]) -> list[Detection]:
        if len(images) != len(nouns):
            raise ValueError(f"{len(images)} images but {len(nouns)} nouns")
        if not images:
            return []
        # One query list per image: each image is searched for its own noun only.
        inputs = self.processor(text=[[self.query(n)] for n in nouns], images=list(images), return_tensors="pt",
                                padding="max_length", truncation=True)  # OWL: fixed 16-token queries
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            outputs = self.model(**inputs)
        scores = outputs.logits[..., 0].float().sigmoid()  # [B, patches]: the one query per image
        boxes = center_to_corners(outputs.pred_boxes.float())  # [B, patches, 4], normalised
        return [self._count(boxes[i], scores[i]) for i in range(len(images))]

    def _count(self, boxes: torch.Tensor, scores: torch.Tensor) -> Detection:
        above = scores > self.threshold
        boxes, scores = boxes[above].cpu(), scores[above].cpu()
        kept = nms(boxes, scores, self.nms_iou)
        return Detection(int(kept.numel()), [tuple(map(float, b)) for b in boxes[kept]],
                         [float(s) for s in scores[kept]])


class BlobCountDetector:
    """Counts 4-connected blobs of pixels far from the background colour (the top-left pixel).

    Deterministic and content-based, so tests exercise the real verify pipeline end to end
    with images whose true count they control (coloured squares on a plain background).
    """

    name = "fake"

    def __init__(self, grid: int = 64, min_pixels: int = 2, tolerance: int = 60):
        self.grid, self.min_pixels, self.tolerance = grid, min_pixels, tolerance

    def detect(self, images: Sequence[Image.Image], nouns: Sequence[str]) -> list[Detection]:
        return [self._detect(image) for image in images]

    def _detect(self, image: Image.Image) -> Detection:
        pixels = np.asarray(image.convert("RGB").resize((self.grid, self.grid), Image.NEAREST), dtype=np.int16)
        mask = np.abs(pixels - pixels[0, 0]).sum(axis=2) > self.tolerance
        blobs = [b for b in _components(mask) if len(b) >= self.min_pixels]
        boxes = [_bbox(b, self.grid) for b in blobs]
        return Detection(len(blobs), boxes, [1.0] * len(blobs))


def _components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    seen = np.zeros_like(mask, dtype=bool)
    blobs = []
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        stack, blob = [(y, x)], []
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            blob.append((cy, cx))
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        blobs.append(blob)
    return blobs


def _bbox(blob: list[tuple[int, int]], grid: int) -> tuple[float, float, float, float]:
    ys, xs = zip(*blob)
    return (min(xs) / grid, min(ys) / grid, (max(xs) + 1) / grid, (max(ys) + 1) / grid)


def load_detector(spec: str, threshold: float = 0.3, nms_iou: float = 0.5, device: str | torch.device = "cpu",
                  query_template: str = DEFAULT_QUERY, autocast_dtype: torch.dtype | None = None) -> Detector:
    """"fake" -> BlobCountDetector; anything else is a transformers hub id or local directory."""
    if spec == BlobCountDetector.name:
        return BlobCountDetector()
    return HFZeroShotDetector(spec, threshold=threshold, nms_iou=nms_iou, device=device,
                              query_template=query_template, autocast_dtype=autocast_dtype)
