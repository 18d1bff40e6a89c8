"""Hold out a validation split from the training examples, stratified by label and seeded.

Used when no ``--valid`` data is given. Each label keeps its share: the held-out count is spread over
the labels in proportion to their size (largest remainders get the rounding), never taking the last
training example of a label, so every class with at least two examples stays in training.

>>> from rnnkit.data import Example
>>> examples = [Example(f"text {i}", "a" if i % 4 else "b") for i in range(40)]
>>> train, valid = train_valid_split(examples, fraction=0.1, seed=0)
>>> len(train), len(valid), sorted({e.label for e in valid})
(36, 4, ['a', 'b'])
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

from ..errors import DataError

T = TypeVar("T")  # anything with a ``.label`` (an ``Example``)


def train_valid_split(examples: Sequence[T], fraction: float = 0.1, seed: int = 0) -> tuple[list[T], list[T]]:
    """Split ``examples`` into (train, valid), stratified by ``.label`` (``None`` is one group of its own).

    The valid split gets ``round(fraction × len(examples))`` examples (at least one), taken from each label in
    proportion to its size; a label with a single example stays in training only. Both lists keep the
    examples' original order, and the same ``(examples, fraction, seed)`` always gives the same split.

    Args:
        examples: the training examples; each has a ``label`` attribute.
        fraction: the share to hold out, strictly between 0 and 1 (rnnkit uses 0.1; 0.05–0.1 is typical).
        seed: which examples are held out.

    Returns:
        ``(train, valid)`` lists.

    Raises:
        ValueError: ``fraction`` is not strictly between 0 and 1.
        DataError: fewer than two examples, or no label has two examples to spare one.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    groups: dict[object, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[example.label].append(i)
    spare = sum(len(g) - 1 for g in groups.values())  # what can leave training without emptying a class
    if spare < 1:
        raise DataError(
            f"cannot hold out a validation split from {len(examples)} training examples: no label has two; "
            "give validation data with --valid"
        )
    quotas = _allocate(
        {label: len(g) for label, g in groups.items()}, max(1, round(fraction * len(examples))), spare
    )
    rng = random.Random(seed)
    held_out: set[int] = set()
    for label in sorted(groups, key=_sort_key):
        held_out.update(rng.sample(groups[label], quotas[label]))
    train = [e for i, e in enumerate(examples) if i not in held_out]
    valid = [e for i, e in enumerate(examples) if i in held_out]
    return train, valid


def _allocate(sizes: dict[object, int], total: int, spare: int) -> dict[object, int]:
    """Share ``total`` out in proportion to ``sizes`` (largest remainders first), at most size − 1 each."""
    total = min(total, spare)
    n = sum(sizes.values())
    exact = {label: total * size / n for label, size in sizes.items()}
    quotas = {label: min(int(share), sizes[label] - 1) for label, share in exact.items()}
    # Hand out what rounding down left, biggest remainders first (ties: by label, for a stable order).
    by_remainder = sorted(sizes, key=lambda label: (-(exact[label] - int(exact[label])), _sort_key(label)))
    while sum(quotas.values()) < total:
        for label in by_remainder:
            if sum(quotas.values()) == total:
                break
            if quotas[label] < sizes[label] - 1:
                quotas[label] += 1
    return quotas


def _sort_key(label: object) -> tuple[bool, str]:
    return (label is not None, str(label))
