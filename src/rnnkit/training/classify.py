"""Training a text classifier: cross-entropy on padded batches, accuracy on evaluation.

:class:`ClassificationTask` is the Trainer's :class:`~rnnkit.training.loop.Task` for
:class:`rnnkit.models.classifier.TextClassifier` (or any model mapping ``(ids, lengths)`` to logits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .loop import Task


def balanced_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """scikit-learn's ``class_weight="balanced"``: ``n / (classes × count_c)`` per class (0 if absent).

    >>> [round(w, 4) for w in balanced_weights([0, 0, 0, 1], 2).tolist()]
    [0.6667, 2.0]
    """
    counts = torch.bincount(torch.as_tensor(list(labels)), minlength=num_classes).float()
    return torch.where(counts > 0, len(labels) / (num_classes * counts.clamp_min(1)), torch.zeros(()))


def macro_f1(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """The unweighted mean of the classes' F1 scores (classes absent from both count as 0, as scikit-learn).

    >>> macro_f1(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
    0.7333333333333334
    """
    pairs = labels * num_classes + predicted
    confusion = torch.bincount(pairs, minlength=num_classes**2).view(num_classes, -1)  # (true, predicted)
    tp = confusion.diag().double()
    denominator = confusion.sum(0).double() + confusion.sum(1).double()  # predicted + true = 2tp + fp + fn
    f1 = torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), torch.zeros((), dtype=torch.double))
    return float(f1.mean())


class ClassificationTask(Task):
    """Cross-entropy on :class:`rnnkit.data.Batch` batches; evaluation reports loss, accuracy and macro-F1.

    Args:
        device: where the model lives (ids and labels are moved there; lengths stay on the CPU).
        class_weights: ``[C]`` weights of each class's loss (None: all 1), e.g. :func:`balanced_weights`.
        monitor: the metric that picks the best weights and drives early stopping: ``"accuracy"``, or
            ``"macro_f1"`` (for imbalanced classes, where accuracy rewards ignoring the small ones).
    """

    higher_is_better = True

    def __init__(
        self,
        device: torch.device | str = "cpu",
        class_weights: torch.Tensor | None = None,
        monitor: str = "accuracy",
    ):
        if monitor not in ("accuracy", "macro_f1"):
            raise ValueError(f"monitor must be accuracy or macro_f1, got {monitor!r}")
        self.device = torch.device(device)
        self.class_weights = None if class_weights is None else class_weights.to(self.device)
        self.monitor = monitor

    def loss(self, model: nn.Module, batch: Any, carry: Any) -> tuple[torch.Tensor, Any, dict[str, float]]:
        """Mean (class-weighted) cross-entropy of the batch; stats: examples, tokens, correct."""
        batch = batch.to(self.device, non_blocking=True)
        logits = model(batch.ids, batch.lengths)  # (N, C)
        loss = F.cross_entropy(logits.float(), batch.labels, weight=self.class_weights)
        correct = int((logits.argmax(dim=-1) == batch.labels).sum())
        stats = {"examples": len(batch), "tokens": int(batch.lengths.sum()), "correct": correct}
        return loss, None, stats

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """``{"loss", "accuracy", "macro_f1"}`` over ``batches`` (the loss unweighted)."""
        total_loss, predicted, labels = 0.0, [], []
        num_classes = 0
        for batch in batches:
            batch = batch.to(self.device, non_blocking=True)
            logits = model(batch.ids, batch.lengths).float()
            total_loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
            predicted.append(logits.argmax(dim=-1).cpu())
            labels.append(batch.labels.cpu())
            num_classes = logits.shape[-1]
        if not labels:
            raise ValueError("evaluation got no batches")
        predicted_t, labels_t = torch.cat(predicted), torch.cat(labels)
        n = len(labels_t)
        return {
            "loss": total_loss / n,
            "accuracy": float((predicted_t == labels_t).float().mean()),
            "macro_f1": macro_f1(predicted_t, labels_t, num_classes),
        }
