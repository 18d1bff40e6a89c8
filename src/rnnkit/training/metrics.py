"""Classification metrics in NumPy: accuracy, confusion matrix, per-class precision/recall/F1, macro-F1.

A class that is never predicted has precision 0; a class absent from the data has recall 0 and is left
out of the macro average (it has no support), which is what scikit-learn reports with
``zero_division=0`` and ``labels`` restricted to the classes present.

>>> r = classification_report([0, 0, 1, 1], [0, 1, 1, 1], ["neg", "pos"])
>>> r["accuracy"], round(r["macro_f1"], 4), r["confusion"]
(0.75, 0.7333, [[1, 1], [0, 2]])
>>> r["per_class"]["pos"]
{'precision': 0.6666666666666666, 'recall': 1.0, 'f1': 0.8, 'support': 2}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_ids(values: Sequence[int] | np.ndarray, num_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = arr[(arr < 0) | (arr >= num_classes)][0]
        raise ValueError(f"{name} must hold class ids in 0..{num_classes - 1}, got {bad}")
    return arr


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: true class ids, shape ``[n]``.
        y_pred: predicted class ids, shape ``[n]``.
        num_classes: C.

    Returns:
        int64 array ``[C, C]``; row = true class, column = predicted class.

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 0], [1, 1]]
    """
    t = _as_ids(y_true, num_classes, "y_true")
    p = _as_ids(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class_scores(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined).

    >>> p, r, f, s = per_class_scores(np.array([[1, 1], [0, 2]]))
    >>> p.round(3).tolist(), r.tolist(), s.tolist()
    ([1.0, 0.667], [0.5, 1.0], [2, 2])
    """
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return precision, recall, f1, support


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Everything ``report.json`` says about predictions (plain Python types, JSON-ready).

    Args:
        y_true: true class ids ``[n]``.
        y_pred: predicted class ids ``[n]``.
        labels: class names in id order (C of them).

    Returns:
        ``{"accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}},
        "macro_avg", "weighted_avg": {precision, recall, f1, support}, "confusion": [[...]] (row = true),
        "labels", "n"}``. The averages are scikit-learn's ``classification_report`` rows: the mean over the
        classes present in ``y_true``, and the mean weighted by support.

    >>> r = classification_report([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    >>> round(r["macro_avg"]["f1"], 4), round(r["weighted_avg"]["precision"], 4), r["weighted_avg"]["support"]
    (0.7333, 0.8333, 4)
    """
    num_classes = len(labels)
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1, support = per_class_scores(confusion)
    n = int(confusion.sum())
    present = support > 0
    weights = support / n if n else np.zeros_like(precision)

    def average(scores: dict[str, np.ndarray], how: str) -> dict[str, float | int]:
        if how == "macro":
            out = {k: float(v[present].mean()) if present.any() else 0.0 for k, v in scores.items()}
        else:
            out = {k: float((v * weights).sum()) for k, v in scores.items()}
        return {**out, "support": n}

    scores = {"precision": precision, "recall": recall, "f1": f1}
    return {
        "accuracy": float(np.trace(confusion) / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_avg": average(scores, "macro"),
        "weighted_avg": average(scores, "weighted"),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion.tolist(),
        "labels": list(labels),
        "n": n,
    }
