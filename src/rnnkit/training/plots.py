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


def plot_curves(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    loss_log: Sequence[Sequence[float]] | None = None,
) -> None:
    """Loss curves (left) and the other validation metrics (right) against the optimizer step.

    Args:
        history: ``metrics.jsonl`` records, each with ``step`` and any of ``train_loss``, ``valid_loss``,
            ``train_accuracy``, ``valid_<metric>``.
        path: the PNG to write.
        loss_log: ``[step, mean training loss]`` pairs logged every few steps (the Trainer's
            ``state.loss_log``): drawn as the training-loss line, so that a run with few evaluations
            still shows how its loss fell.
    """
    plt = _pyplot()
    keys = {k for r in history for k in r}
    metric_keys = sorted(k for k in keys if k.startswith("valid_") and k != "valid_loss")
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    if loss_log:
        steps, losses = zip(*[(p[0], p[1]) for p in loss_log], strict=True)
        ax_loss.plot(steps, losses, "-", linewidth=1, alpha=0.8, label="train loss (every few steps)")
    elif "train_loss" in keys:
        ax_loss.plot(*_series(history, "train_loss"), "-o", markersize=3, label="train loss")
    if "valid_loss" in keys:
        ax_loss.plot(*_series(history, "valid_loss"), "-o", markersize=4, label="valid loss")
    ax_loss.set(xlabel="optimizer step", ylabel="loss (cross-entropy)", title="loss")
    for key in metric_keys:
        ax_metric.plot(*_series(history, key), "-o", markersize=4, label=key.replace("_", " "))
    if "train_accuracy" in keys:
        ax_metric.plot(*_series(history, "train_accuracy"), "--", label="train accuracy")
    ax_metric.set(xlabel="optimizer step", title="validation metrics (at each evaluation)")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    _save(fig, path)


MAX_LABEL = 24  # characters of a class name shown on the confusion matrix's axes


def top_confusions(confusion: Sequence[Sequence[int]], labels: Sequence[str], k: int = 10) -> list[dict]:
    """The ``k`` largest off-diagonal counts: ``{"true", "predicted", "count", "share"}`` (share of the
    true class), largest first.

    >>> top_confusions([[5, 1], [3, 4]], ["neg", "pos"], k=1)
    [{'true': 'pos', 'predicted': 'neg', 'count': 3, 'share': 0.4286}]
    """
    counts = np.asarray(confusion, dtype=np.int64)
    totals = np.maximum(counts.sum(axis=1), 1)
    off = [(int(counts[i, j]), i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j]
    off = sorted((t for t in off if t[0] > 0), key=lambda t: (-t[0], t[1], t[2]))[:k]
    return [{"true": labels[i], "predicted": labels[j], "count": n, "share": round(float(n / totals[i]), 4)}
            for n, i, j in off]  # fmt: skip


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike
) -> None:
    """The confusion matrix as a heat map, each row normalised to the share of that true class.

    Sized for 2 to 100 classes: the figure grows with the classes so every label stays readable (names
    cut to :data:`MAX_LABEL` characters); up to 12 classes each cell shows its count and share; with more,
    the ten most confused pairs are listed beside the matrix.

    Args:
        confusion: ``[C, C]`` counts, row = true class, column = predicted class.
        labels: the C class names.
        path: the PNG to write.
    """
    plt = _pyplot()
    counts = np.asarray(confusion, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    c = len(labels)
    shown = [name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…" for name in labels]
    side = max(4.5, min(0.24 * c + 2.5, 28.0))  # inches of the matrix: ~0.24 in (17 pt) per class
    font = 10 if c <= 12 else 8 if c <= 30 else 7
    listing = c > 12
    if listing:
        grid = {"width_ratios": [side, 4.0], "wspace": 0.3}
        fig, (ax, ax_text) = plt.subplots(1, 2, figsize=(side + 5.0, side), gridspec_kw=grid)
        ax_text.axis("off")
    else:
        fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046 * min(1.0, 8.0 / side), pad=0.02, shrink=min(1.0, 10.0 / side),
                 label="share of the true class (row)")  # fmt: skip
    ax.set_xticks(range(c), shown, rotation=90, fontsize=font)
    ax.set_yticks(range(c), shown, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"confusion matrix, rows normalised (n={int(counts.sum()):,}, accuracy {accuracy:.3f})")
    if c <= 12:
        for i in range(c):
            for j in range(c):
                color = "white" if shares[i, j] > 0.5 else "black"
                text = f"{int(counts[i, j])}\n{shares[i, j]:.0%}" if counts[i, j] else "0"
                ax.text(j, i, text, ha="center", va="center", fontsize=font - 1, color=color)
    if listing:
        pairs = top_confusions(counts.astype(np.int64), labels)
        lines = ["most confused (true → predicted):", ""]
        for p in pairs:
            pair = f"{p['true'][:MAX_LABEL]} → {p['predicted'][:MAX_LABEL]}"
            lines.append(f"{p['count']:>5,} {p['share']:>4.0%}  {pair}")
        lines += [] if pairs else ["none"]
        ax_text.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=10,
                     transform=ax_text.transAxes)  # fmt: skip
    _save(fig, path)
