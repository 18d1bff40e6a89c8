"""The run folder's pictures: ``curves.png`` (training curves) and ``confusion.png`` (test confusion matrix).

Drawn with matplotlib's non-interactive Agg backend (no display needed) into figures that are closed
after saving, and written atomically like every other run file.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> history = [{"step": 10, "train_loss": 1.2, "valid_loss": 1.1, "valid_accuracy": 0.5},
...            {"step": 20, "train_loss": 0.8, "valid_loss": 0.9, "valid_accuracy": 0.7}]
>>> plot_curves(history, out / "curves.png")
>>> plot_confusion([[5, 1], [2, 4]], ["neg", "pos"], out / "confusion.png")
>>> sorted(p.name for p in out.iterdir())
['confusion.png', 'curves.png']
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._io import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the records that have ``key``."""
    points = [(r["step"], r[key]) for r in history if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Loss curves (left) and the other validation metrics (right) against the optimizer step.

    Args:
        history: ``metrics.jsonl`` records, each with ``step`` and any of ``train_loss``, ``valid_loss``,
            ``train_accuracy``, ``valid_<metric>``.
        path: the PNG to write.
    """
    plt = _pyplot()
    keys = {k for r in history for k in r}
    metric_keys = sorted(k for k in keys if k.startswith("valid_") and k != "valid_loss")
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key in ("train_loss", "valid_loss"):
        if key in keys:
            ax_loss.plot(*_series(history, key), "-o", markersize=3, label=key.replace("_", " "))
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    for key in metric_keys:
        ax_metric.plot(*_series(history, key), "-o", markersize=3, label=key.replace("_", " "))
    if "train_accuracy" in keys:
        ax_metric.plot(*_series(history, "train_accuracy"), "--", label="train accuracy")
    ax_metric.set(xlabel="step", title="validation")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    _save(fig, path)


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike
) -> None:
    """The confusion matrix as a heat map, each row normalised to the share of that true class.

    Args:
        confusion: ``[C, C]`` counts, row = true class, column = predicted class.
        labels: the C class names.
        path: the PNG to write.
    """
    plt = _pyplot()
    counts = np.asarray(confusion, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    c = len(labels)
    size = min(4 + 0.3 * c, 16)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    font = max(4, 10 - c // 6)
    ax.set_xticks(range(c), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(c), labels, fontsize=font)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion (n={int(counts.sum())})")
    if c <= 12:
        for i in range(c):
            for j in range(c):
                color = "white" if shares[i, j] > 0.5 else "black"
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=font, color=color)
    _save(fig, path)
