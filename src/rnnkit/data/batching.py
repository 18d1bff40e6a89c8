"""Length-bucketed batches: similar lengths together, so little of each batch is padding.

A recurrent layer pays for every padded step, and on a CPU the same tokens run several times faster
in equal-length batches than in batches packed from random lengths. :class:`BucketBatchSampler`
therefore shuffles the examples, cuts them into large pools, sorts each pool by length and cuts it
into batches, then shuffles the batches: every batch holds neighbours in length, while which examples
meet, and the batch order, change every epoch. :func:`collate` pads one batch into a tensor.

>>> lengths = [5, 1, 4, 2, 3, 6]
>>> sampler = BucketBatchSampler(lengths, batch_size=2, shuffle=False)
>>> list(sampler)
[[1, 3], [4, 2], [0, 5]]
>>> batch = collate([([7, 8, 9], 0), ([5], 1)])
>>> batch.ids, batch.lengths, batch.labels
(tensor([[7, 8, 9],
        [5, 0, 0]]), tensor([3, 1]), tensor([0, 1]))
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler


@dataclass
class Batch:
    """A padded batch.

    Shapes:
        ids: ``[N, L]`` int64, padded with the vocabulary's ``pad_id`` after each sequence's end.
        lengths: ``[N]`` int64, on the CPU (what ``pack_padded_sequence`` needs), each in ``1..L``.
        labels: ``[N]`` int64 class indices, or ``None`` (unlabelled data, language models).
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """``ids`` and ``labels`` on ``device``; ``lengths`` stay on the CPU."""
        labels = None if self.labels is None else self.labels.to(device, non_blocking=non_blocking)
        return Batch(self.ids.to(device, non_blocking=non_blocking), self.lengths, labels)

    def pin_memory(self) -> Batch:
        """Pinned copies (``DataLoader(pin_memory=True)`` calls this)."""
        labels = None if self.labels is None else self.labels.pin_memory()
        return Batch(self.ids.pin_memory(), self.lengths.pin_memory(), labels)

    def __len__(self) -> int:
        return self.ids.shape[0]


def collate(
    items: Sequence[tuple[Sequence[int], int | None]], pad_id: int = 0, max_len: int | None = None
) -> Batch:
    """Pad ``(ids, label)`` pairs into one :class:`Batch`, keeping at most ``max_len`` tokens of each.

    Args:
        items: ``(ids, label)`` pairs; ``label`` is an int, or ``None`` for every item.
        pad_id: the id that fills the positions after each sequence's end.
        max_len: keep the first ``max_len`` tokens of longer sequences (``None``: keep all).

    Returns:
        A :class:`Batch` whose ``L`` is the longest (truncated) length in this batch.

    Raises:
        ValueError: no items, an item with no tokens, or labels given for some items but not others.

    >>> collate([([1, 2, 3, 4], None), ([5, 6], None)], max_len=3).ids
    tensor([[1, 2, 3],
            [5, 6, 0]])
    """
    if len(items) == 0:
        raise ValueError("collate needs at least one item, got 0")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    seqs = [list(ids[:max_len]) for ids, _ in items]
    lengths = [len(s) for s in seqs]
    if 0 in lengths:
        raise ValueError(f"every item needs at least one token; item {lengths.index(0)} has none")
    width = max(lengths)
    ids = torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs], dtype=torch.int64)  # (N, L)
    labels = [label for _, label in items]
    n_missing = labels.count(None)
    if 0 < n_missing < len(labels):
        raise ValueError(f"either every item has a label or none has; {n_missing} of {len(labels)} have none")
    label_tensor = None if n_missing else torch.tensor(labels, dtype=torch.int64)
    return Batch(ids, torch.tensor(lengths, dtype=torch.int64), label_tensor)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices with similar lengths, shuffled, the same for the same ``seed`` and epoch.

    Each epoch: shuffle all indices (seeded by ``seed`` and the epoch), cut them into pools of
    ``pool_batches`` batches' worth of examples, sort each pool by length, cut it into batches, shuffle
    the batches. Every example is in exactly one batch per epoch. With ``shuffle=False`` the whole
    dataset is one pool and the batches stay sorted by length (evaluation: callers map results back
    through the indices).

    Batches hold ``batch_size`` rows, or, with ``max_tokens``, as many rows as fit in a budget of padded
    tokens (rows × the longest length in the batch; a single example longer than the budget gets a
    batch of its own), capped at ``batch_size`` rows if that is given too.

    With several ranks (distributed training), every rank computes the same epoch's batches and takes
    every ``num_replicas``-th one from position ``rank``; when the count does not divide evenly, the
    first batches are repeated to fill the last round (or, with ``drop_last``, the left-over batches
    are dropped), so every rank runs the same number of steps and the ranks' batches are disjoint
    apart from those repeats.

    Args:
        lengths: the length of every example, in tokens (after any ``max_len`` truncation).
        batch_size: rows per batch; with ``max_tokens``, the largest number of rows (``None``: no cap).
        max_tokens: budget of padded tokens per batch instead of a fixed row count.
        shuffle: shuffle between epochs (training); ``False`` for evaluation.
        seed: the batches are a function of ``(seed, epoch)`` only.
        num_replicas, rank: the number of distributed ranks and this one's index.
        drop_last: drop the short final batch, and the batches left over after an equal share per rank.
        pool_batches: how many batches' worth of examples are sorted together; more gives less padding and
            less variety.

    >>> sampler = BucketBatchSampler([3, 9, 4, 8, 2, 7], batch_size=2, seed=1)
    >>> sampler.set_epoch(0)
    >>> sorted(sorted(b) for b in sampler)   # every index once, similar lengths together
    [[0, 4], [1, 3], [2, 5]]
    >>> len(sampler)
    3
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int | None,
        *,
        max_tokens: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        pool_batches: int = 100,
    ):
        _check_positive(batch_size=batch_size, max_tokens=max_tokens, num_replicas=num_replicas,
                        pool_batches=pool_batches)  # fmt: skip
        if batch_size is None and max_tokens is None:
            raise ValueError("give batch_size or max_tokens (or both), got neither")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in 0..{num_replicas - 1}, got {rank}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if self.lengths.size and self.lengths.min() < 0:
            raise ValueError(f"lengths must be non-negative, got {int(self.lengths.min())}")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.pool_size = pool_batches * self._rows_per_batch_estimate()
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields (call before every epoch)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._rank_batches())

    def __len__(self) -> int:
        """Batches this rank gets in the current epoch (with ``max_tokens`` it can change between epochs)."""
        return len(self._rank_batches())

    def _rows_per_batch_estimate(self) -> int:
        if self.max_tokens is None:
            return self.batch_size
        typical = max(1, int(np.median(self.lengths))) if self.lengths.size else 1
        rows = max(1, self.max_tokens // typical)
        return rows if self.batch_size is None else min(rows, self.batch_size)

    def _rank_batches(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            self._cache = (self.epoch, self._shard(self._epoch_batches(self.epoch)))
        return self._cache[1]

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """All ranks' batches of ``epoch``, in the order they will be taken."""
        n = self.lengths.size
        if not self.shuffle:
            return self._split(np.argsort(self.lengths, kind="stable"))
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(n)
        batches = []
        for start in range(0, n, self.pool_size):
            pool = order[start : start + self.pool_size]
            batches.extend(self._split(pool[np.argsort(self.lengths[pool], kind="stable")]))
        rng.shuffle(batches)
        return batches

    def _split(self, sorted_indices: np.ndarray) -> list[list[int]]:
        """Cut indices sorted by length into consecutive batches."""
        indices = sorted_indices.tolist()
        if self.max_tokens is None:
            size = self.batch_size
            batches = [indices[i : i + size] for i in range(0, len(indices), size)]
            if self.drop_last and batches and len(batches[-1]) < size:
                batches.pop()
            return batches
        batches, current, longest = [], [], 0
        for index in indices:
            length = max(1, int(self.lengths[index]))
            longest_with = max(longest, length)
            full = self.batch_size is not None and len(current) == self.batch_size
            if current and (full or (len(current) + 1) * longest_with > self.max_tokens):
                batches.append(current)
                current, longest_with = [], length
            current.append(index)
            longest = longest_with
        if current:
            batches.append(current)
        return batches

    def _shard(self, batches: list[list[int]]) -> list[list[int]]:
        """This rank's share: every ``num_replicas``-th batch, all ranks with the same count."""
        replicas = self.num_replicas
        if replicas == 1:
            return batches
        if self.drop_last:
            batches = batches[: len(batches) // replicas * replicas]
        elif batches and len(batches) % replicas:
            missing = replicas - len(batches) % replicas
            batches = batches + list(itertools.islice(itertools.cycle(batches), missing))
        return batches[self.rank :: replicas]


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """The share of a padded batch's positions that are padding, over all ``batches``.

    >>> padding_fraction([[0, 1], [2]], [4, 2, 3])   # (4 + 4) + 3 positions, 4 + 2 + 3 real
    0.18181818181818182
    """
    lengths = np.asarray(lengths)
    real = padded = 0
    for batch in batches:
        batch_lengths = lengths[list(batch)]
        real += int(batch_lengths.sum())
        padded += len(batch) * int(batch_lengths.max())
    return (padded - real) / padded if padded else 0.0


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
