"""Tiny labelled text data the classification tests write for themselves (three easy classes)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

WORDS = {
    "sport": ["goal", "match", "team", "score", "win", "league", "cup", "player", "coach", "stadium"],
    "tech": ["chip", "software", "code", "server", "data", "cloud", "phone", "robot", "laptop", "network"],
    "food": ["bread", "soup", "cheese", "apple", "sauce", "bake", "pasta", "salad", "spice", "butter"],
}
SHARED = ["the", "a", "of", "and", "today", "new", "big"]


def texts(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (label, text) rows; each text mixes 2–9 words of its class with shared words."""
    rng = random.Random(seed)
    labels = sorted(WORDS)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.choices(WORDS[label], k=rng.randint(2, 9)) + rng.choices(SHARED, k=rng.randint(0, 3))
        rng.shuffle(words)
        rows.append((label, " ".join(words)))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return path


def write_splits(folder: Path, n_train: int = 90, n_test: int = 30) -> tuple[Path, Path]:
    """``train.csv`` and ``test.csv`` in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return (write_csv(folder / "train.csv", texts(n_train, seed=1)),
            write_csv(folder / "test.csv", texts(n_test, seed=2)))  # fmt: skip


# Small, fast model settings for tests (a few steps on a CPU), on the plain dataclass defaults (`--preset
# none`: a one-direction LSTM) rather than the `default` recipe, which tests/test_recipe.py covers.
TINY = {
    "preset": "none",
    "embed_dim": 8,
    "hidden_dim": 8,
    "batch_size": 8,
    "epochs": 2,
    "lr": 0.03,
    "threads": 1,
    "device": "cpu",
}
