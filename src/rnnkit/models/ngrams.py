"""A linear classifier over a text's words and word pairs, TF-IDF weighted: the wide path beside the RNN.

Bag-of-n-gram linear models (TF-IDF + logistic regression, fastText with bigrams, NB-SVM) are the strong
baselines of text classification; on small sentence datasets and long documents they often match or beat
recurrent networks. :class:`NgramLinear` is that model inside rnnkit, computed from the same token ids the
recurrent encoder reads, so a classifier can carry both and mix their answers (``TextClassifier(ngrams=…)``):

- features: every word (its vocabulary id) and every pair of neighbouring words, hashed into ``buckets``
  rows after the vocabulary's: ``pair(a, b) = V + (a · 1000003 + b) mod buckets``;
- weights: each occurrence counts its feature's inverse document frequency
  ``idf_f = ln((1 + n) / (1 + df_f)) + 1`` (scikit-learn's smoothed idf), and the text's vector is
  scaled to unit length — TF-IDF with L2 normalisation. Features seen in fewer than two training texts
  have ``idf = 0`` and are ignored, as are padding and ``<unk>``;
- scores: ``logits = Σ_f w_f · W[f] + b`` — one row of class scores per feature.

It is trained on its own, as a convex problem (full-batch L-BFGS, see
:mod:`rnnkit.training.ngrams`), then frozen while the recurrent path trains.

>>> import torch
>>> wide = NgramLinear(vocab_size=10, num_classes=2, buckets=16)
>>> wide.idf.fill_(1.0)[:2] = 0               # pretend every feature was seen; pad (0) and unk (1) are not
>>> ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
>>> feats, weights = wide.features(ids, lengths)
>>> feats.shape, weights.shape                # 3 words + 2 pairs per row
(torch.Size([2, 5]), torch.Size([2, 5]))
>>> [round(float(w), 4) for w in weights[1]]  # 2 words + 1 pair, unit length; padding weighs nothing
[0.5774, 0.5774, 0.0, 0.5774, 0.0]
>>> wide(ids, lengths).shape
torch.Size([2, 2])
"""

from __future__ import annotations

import torch
from torch import nn

PAIR_MULTIPLIER = 1_000_003  # a prime: the hash of the pair (a, b) is (a · P + b) mod buckets


def pair_buckets(distinct_pairs: int, num_classes: int, max_weights: int = 1 << 22) -> int:
    """How many hash rows to give word pairs: a power of two ≥ 2 × the pairs to tell apart, so few collide,
    between 1,024 and what keeps the pairs' table under ``max_weights`` numbers (16 MB in float32).

    >>> pair_buckets(30_000, 2), pair_buckets(10, 2), pair_buckets(10**6, 43)
    (65536, 1024, 65536)
    """
    wanted = max(1024, 1 << max(0, (2 * distinct_pairs - 1).bit_length()))
    cap = 1 << max(10, (max_weights // max(1, num_classes)).bit_length() - 1)
    return min(wanted, cap)


class NgramLinear(nn.Module):
    """TF-IDF weighted words and hashed word pairs → class scores (see the module docstring).

    Args:
        vocab_size: V, the vocabulary's size (word ids are ``0 … V-1``).
        num_classes: C.
        buckets: hash rows for word pairs (0: words only).

    Shapes:
        ids ``[N, L]`` int64, lengths ``[N]`` → logits ``[N, C]``.
    """

    def __init__(self, vocab_size: int, num_classes: int, buckets: int):
        super().__init__()
        if buckets < 0:
            raise ValueError(f"buckets must be ≥ 0, got {buckets}")
        self.vocab_size = vocab_size
        self.buckets = buckets
        self.weight = nn.Parameter(torch.zeros(vocab_size + buckets, num_classes))  # (F, C)
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.register_buffer("idf", torch.zeros(vocab_size + buckets))  # (F,), 0 = ignored
        self.register_buffer("strength", torch.tensor(0.0))  # the C it was fitted with (0: not fitted yet)

    @property
    def num_features(self) -> int:
        return self.vocab_size + self.buckets

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature ids ``[N, M]`` and their TF-IDF weights ``[N, M]`` (unit length per row; 0 at padding)."""
        n, length = ids.shape
        lengths = lengths.to(ids.device)
        steps = torch.arange(length, device=ids.device)
        real = steps[None, :] < lengths[:, None]  # (N, L)
        feats, real = [ids], [real]
        if self.buckets and length > 1:
            pairs = self.vocab_size + (ids[:, :-1] * PAIR_MULTIPLIER + ids[:, 1:]) % self.buckets  # (N, L-1)
            feats.append(pairs)
            real.append(steps[None, 1:] < lengths[:, None])
        feats_t = torch.cat(feats, dim=1)  # (N, M)
        weights = self.idf[feats_t] * torch.cat(real, dim=1)  # (N, M)
        weights = weights / weights.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return feats_t, weights

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        feats, weights = self.features(ids, lengths)
        return torch.einsum("nm,nmc->nc", weights, self.weight[feats]) + self.bias  # (N, C)
