"""Every metric against a hand computation on small fixed matrices."""

from __future__ import annotations

import numpy as np
import pytest

from countclip.evaluation import metrics as M

# Six images; columns are the captions for counts 2..10. Predictions (argmax) by hand:
#   row 0: true 2,  max at col 0 -> 2  (right)
#   row 1: true 3,  max at col 2 -> 4  (off by 1)
#   row 2: true 3,  max at col 1 -> 3  (right)
#   row 3: true 10, max at col 6 -> 8  (off by 2)
#   row 4: true 5,  max at col 3 -> 5  (right)
#   row 5: true 3,  tie cols 0 and 1 -> first maximum -> 2 (off by 1)
SIMS = np.array([
    [0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.1, 0.5, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7, 0.2, 0.6],
    [0.0, 0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.3, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
])
TRUE = [2, 3, 3, 10, 5, 3]


def test_counting_metrics_match_hand_computation():
    m = M.counting_metrics(SIMS, TRUE)
    assert m["n_scored"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["mean_abs_deviation"] == pytest.approx((0 + 1 + 0 + 2 + 0 + 1) / 6)
    assert m["per_count_accuracy"] == {"2": 1.0, "3": pytest.approx(1 / 3), "4": None, "5": 1.0, "6": None,
                                       "7": None, "8": None, "9": None, "10": 0.0}
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 / 3 + 1 + 0) / 4)
    expected = np.zeros((9, 9), dtype=int)
    expected[0, 0] = 1  # 2 -> 2
    expected[1, 2] = 1  # 3 -> 4
    expected[1, 1] = 1  # 3 -> 3
    expected[8, 6] = 1  # 10 -> 8
    expected[3, 3] = 1  # 5 -> 5
    expected[1, 0] = 1  # 3 -> 2 (tie)
    assert m["confusion_matrix"] == expected.tolist()
    assert m["counts"] == list(range(2, 11))


def test_predictions_and_shape_checks():
    assert M.predict_counts(SIMS).tolist() == [2, 4, 3, 8, 5, 2]
    with pytest.raises(ValueError, match=r"\[N, 9\]"):
        M.predict_counts(SIMS[:, :8])
    with pytest.raises(ValueError, match="true label 11"):
        M.counting_metrics(SIMS[:1], [11])
    with pytest.raises(ValueError, match="1 similarity rows for 2 true counts"):
        M.counting_metrics(SIMS[:1], [2, 3])


def test_nothing_scored_gives_none_not_nan():
    m = M.counting_metrics(np.zeros((0, 9)), [])
    assert m["n_scored"] == 0 and m["accuracy"] is None and m["mean_abs_deviation"] is None


# Four images over six classes; ranks of the true label by hand:
#   row 0: label 0, highest             -> rank 0 (top-1, top-5)
#   row 1: label 2, three classes higher -> rank 3 (top-5 only)
#   row 2: label 5, lowest of six       -> rank 5 (neither)
#   row 3: label 1, tied with class 0 (listed first) -> rank 1 (top-5 only, like argmax)
LOGITS = np.array([
    [0.9, 0.1, 0.2, 0.3, 0.4, 0.5],
    [0.5, 0.6, 0.1, 0.7, 0.0, 0.0],
    [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
    [0.8, 0.8, 0.1, 0.1, 0.1, 0.1],
])
LABELS = [0, 2, 5, 1]


def test_classification_metrics_match_hand_computation():
    m = M.classification_metrics(LOGITS, LABELS)
    assert m["acc1"] == pytest.approx(1 / 4)
    assert m["acc5"] == pytest.approx(3 / 4)
    # argmax predictions: 0, 3, 0, 0 -> per-class recall: class 0: 1/1, class 1: 0/1, class 2: 0/1, class 5: 0/1
    assert m["mean_per_class_recall"] == pytest.approx(1 / 4)
    assert M.topk_accuracy(LOGITS, LABELS, 2) == pytest.approx(2 / 4)
    assert M.topk_accuracy(LOGITS, LABELS, 100) == 1.0  # k beyond the class count: every label is in


def test_top1_equals_argmax_accuracy_on_random_logits():
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 3, size=(200, 7)).astype(float)  # many ties
    labels = rng.integers(0, 7, size=200)
    assert M.topk_accuracy(logits, labels, 1) == pytest.approx(float((logits.argmax(1) == labels).mean()))
