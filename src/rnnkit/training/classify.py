"""Training a text classifier: cross-entropy on padded batches, accuracy on evaluation.

:class:`ClassificationTask` is the Trainer's :class:`~rnnkit.training.loop.Task` for
:class:`rnnkit.models.classifier.TextClassifier` (or any model mapping ``(ids, lengths)`` to logits).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .loop import Task


class ClassificationTask(Task):
    """Cross-entropy on :class:`rnnkit.data.Batch` batches; evaluation reports loss and accuracy.

    Args:
        device: where the model lives (ids and labels are moved there; lengths stay on the CPU).
    """

    monitor = "accuracy"
    higher_is_better = True

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def loss(self, model: nn.Module, batch: Any, carry: Any) -> tuple[torch.Tensor, Any, dict[str, float]]:
        """Mean cross-entropy of the batch; stats: examples, tokens, correct."""
        batch = batch.to(self.device, non_blocking=True)
        logits = model(batch.ids, batch.lengths)  # (N, C)
        loss = F.cross_entropy(logits.float(), batch.labels)
        correct = int((logits.argmax(dim=-1) == batch.labels).sum())
        stats = {"examples": len(batch), "tokens": int(batch.lengths.sum()), "correct": correct}
        return loss, None, stats

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """``{"loss", "accuracy"}`` over ``batches``."""
        total_loss, correct, n = 0.0, 0, 0
        for batch in batches:
            batch = batch.to(self.device, non_blocking=True)
            logits = model(batch.ids, batch.lengths).float()
            total_loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
            correct += int((logits.argmax(dim=-1) == batch.labels).sum())
            n += len(batch)
        if n == 0:
            raise ValueError("evaluation got no batches")
        return {"loss": total_loss / n, "accuracy": correct / n}
