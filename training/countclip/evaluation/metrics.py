"""Metrics computed from similarity matrices: pure NumPy, no model, so they can be checked by hand.

Counting: row i of `similarities` holds image i's similarity to the captions for counts
`counts[0..K-1]`; the prediction is the most similar caption (ties go to the smaller count,
NumPy's argmax keeps the first maximum). Zero-shot: row i holds image i's logits over classes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

COUNTS = tuple(range(2, 11))  # CountBench's counts: two .. ten


def predict_counts(similarities: np.ndarray, counts: Sequence[int] = COUNTS) -> np.ndarray:
    similarities = np.asarray(similarities, dtype=np.float64)
    if similarities.ndim != 2 or similarities.shape[1] != len(counts):
        raise ValueError(f"similarities must be [N, {len(counts)}], got {similarities.shape}")
    return np.asarray(counts)[similarities.argmax(axis=1)]


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """[len(labels), len(labels)] counts; rows are the true label, columns the prediction."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(np.asarray(true).tolist(), np.asarray(predicted).tolist()):
        if t not in index:
            raise ValueError(f"true label {t} is not one of {list(labels)}")
        matrix[index[t], index[p]] += 1
    return matrix


def counting_metrics(similarities: np.ndarray, true_counts: Sequence[int], counts: Sequence[int] = COUNTS
                     ) -> dict[str, Any]:
    """accuracy, mean absolute count deviation, per-count and balanced accuracy, confusion matrix."""
    true = np.asarray(true_counts, dtype=np.int64)
    if len(true) == 0:
        return {"n_scored": 0, "accuracy": None, "mean_abs_deviation": None, "balanced_accuracy": None,
                "per_count_accuracy": {str(c): None for c in counts}, "confusion_matrix": [],
                "counts": list(counts)}
    predicted = predict_counts(similarities, counts)
    if len(predicted) != len(true):
        raise ValueError(f"{len(predicted)} similarity rows for {len(true)} true counts")
    unknown = sorted(set(true.tolist()) - set(counts))
    if unknown:
        raise ValueError(f"true label {unknown[0]} is not one of {list(counts)}")
    correct = predicted == true
    per_count = {str(c): (float(correct[true == c].mean()) if (true == c).any() else None) for c in counts}
    present = [value for value in per_count.values() if value is not None]
    return {
        "n_scored": int(len(true)),
        "accuracy": float(correct.mean()),
        "mean_abs_deviation": float(np.abs(predicted - true).mean()),
        "balanced_accuracy": float(np.mean(present)),
        "per_count_accuracy": per_count,
        "confusion_matrix": confusion_matrix(true, predicted, counts).tolist(),
        "counts": list(counts),
    }


def topk_accuracy(logits: np.ndarray, labels: Sequence[int], k: int) -> float:
    """Share of rows whose label is among the k highest logits (k capped at the class count)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    k = min(k, logits.shape[1])
    # A label's rank: classes scoring higher, plus equal-scoring classes listed before it; so ties
    # break like argmax (first maximum wins) and top-1 equals the argmax prediction.
    label_scores = logits[np.arange(len(labels)), labels][:, None]
    before = np.arange(logits.shape[1])[None, :] < labels[:, None]
    rank = (logits > label_scores).sum(axis=1) + ((logits == label_scores) & before).sum(axis=1)
    return float((rank < k).mean())


def mean_per_class_recall(logits: np.ndarray, labels: Sequence[int]) -> float:
    """Top-1 recall averaged over the classes present (robust to class imbalance)."""
    predicted = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels, dtype=np.int64)
    recalls = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
    return float(np.mean(recalls))


def classification_metrics(logits: np.ndarray, labels: Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
    if len(labels) == 0:
        return {"n_scored": 0, **{f"acc{k}": None for k in ks}, "mean_per_class_recall": None}
    return {"n_scored": int(len(labels)), **{f"acc{k}": topk_accuracy(logits, labels, k) for k in ks},
            "mean_per_class_recall": mean_per_class_recall(logits, labels)}
