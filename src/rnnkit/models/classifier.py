"""Text classifier: embedding → recurrent encoder → pooling → dropout → linear.

The lesson's model, generalised: the encoder is any :mod:`rnnkit.nn` layer (``rnn``, ``lstm``, ``gru``;
stacked, bidirectional), and the pooling that turns its outputs into one vector per text is one of

- ``last``: the final hidden state of the last layer (both directions' when bidirectional — the reverse
  direction's final state is the one at the text's first token);
- ``mean`` / ``max``: over the real tokens only — padding never counts;
- ``attention``: additive attention (``score_t = vᵀ tanh(W o_t)``, softmax over the real tokens).

With ``use_lengths=False`` the encoder is not told the lengths and runs over the padding, as the lesson's
notebook did; nothing is masked then, so padding reaches the final state and the pooled vector. The
padding is then input the network reads, so its embedding row is learned like any word's (the notebook
padded with a trainable token too); with lengths it stays zero and never matters.

>>> import torch
>>> model = TextClassifier(vocab_size=20, num_classes=3, cell="gru", hidden_dim=8, pool="max")
>>> ids = torch.tensor([[5, 6, 7], [8, 9, 0]])      # the second text has 2 tokens, then padding
>>> model(ids, torch.tensor([3, 2])).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..config import ModelConfig

logger = logging.getLogger(__name__)

POOLS = ("last", "mean", "max", "attention")
CELLS = ("rnn", "lstm", "gru")


def _encoder(cell: str, input_size: int, hidden_size: int, layers: int, bidirectional: bool, dropout: float):
    from .. import nn as rnn  # the package's own layers (PyTorch-compatible parameters)

    layer = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}[cell]
    return layer(
        input_size,
        hidden_size,
        num_layers=layers,
        bidirectional=bidirectional,
        dropout=dropout if layers > 1 else 0.0,
        batch_first=True,
    )


def padding_mask(lengths: torch.Tensor, max_len: int, device: torch.device) -> torch.Tensor:
    """``[N, L]`` bool, True at real tokens.

    >>> padding_mask(torch.tensor([2, 1]), 3, torch.device("cpu")).int().tolist()
    [[1, 1, 0], [1, 0, 0]]
    """
    return torch.arange(max_len, device=device)[None, :] < lengths.to(device)[:, None]


class TextClassifier(nn.Module):
    """Embedding → recurrent encoder → pooling → dropout → linear.

    Args:
        vocab_size: V, rows of the embedding table (row ``pad_id`` is padding).
        num_classes: C.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        embed_dim: E.
        hidden_dim: H per direction.
        layers: stacked recurrent layers.
        bidirectional: D = 2 when True.
        dropout: between stacked layers and on the pooled vector.
        embed_dropout: drops whole token vectors (the word is unseen for that step), scaled to keep the mean.
        embed_mean: the embedding starts as N(embed_mean, 1) (PyTorch's N(0, 1) by default); the lesson's
            LSTM notebooks start from ``randn - 0.5``. A zero padding row stays zero.
        pool: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"``.
        use_lengths: pass lengths to the encoder and mask the pooling; False runs over padding.
        pad_id: the padding id (its embedding row stays zero, unless ``use_lengths=False``: then it is
            learned, since the encoder reads the padding).
        sparse: sparse embedding gradients (trained with ``SparseAdam`` by the Trainer).

    Shapes:
        ids ``[N, L]`` int64, lengths ``[N]`` int64 (CPU is best) → logits ``[N, C]``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        cell: str = "lstm",
        embed_dim: int = 64,
        hidden_dim: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        embed_mean: float = 0.0,
        pool: str = "last",
        use_lengths: bool = True,
        pad_id: int = 0,
        sparse: bool = False,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        if vocab_size < 1 or num_classes < 1:
            raise ValueError(f"vocab_size and num_classes must be ≥ 1, got {vocab_size} and {num_classes}")
        self.pool = pool
        self.use_lengths = use_lengths
        self.embed_dropout = embed_dropout
        self.directions = 2 if bidirectional else 1
        padding_idx = pad_id if use_lengths else None  # without lengths the padding is read: learn it
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx, sparse=sparse)
        if embed_mean:
            with torch.no_grad():
                self.embedding.weight.add_(embed_mean)
                if padding_idx is not None:
                    self.embedding.weight[padding_idx].zero_()
        self.encoder = _encoder(cell, embed_dim, hidden_dim, layers, bidirectional, dropout)
        features = self.directions * hidden_dim
        if pool == "attention":
            self.attention = nn.Sequential(nn.Linear(features, features), nn.Tanh(), nn.Linear(features, 1))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes)

    @classmethod
    def from_config(
        cls, cfg: ModelConfig, vocab_size: int, num_classes: int, *, pad_id: int = 0, sparse: bool = False
    ) -> TextClassifier:
        """Build the model a :class:`~rnnkit.config.ModelConfig` describes (vectors are loaded separately)."""
        return cls(
            vocab_size,
            num_classes,
            cell=cfg.cell,
            embed_dim=cfg.embed_dim,
            hidden_dim=cfg.hidden_dim,
            layers=cfg.layers,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout,
            embed_dropout=cfg.embed_dropout,
            embed_mean=cfg.embed_mean,
            pool=cfg.pool,
            use_lengths=cfg.use_lengths,
            pad_id=pad_id,
            sparse=sparse,
        )

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores (logits) for a padded batch; see the class docstring for shapes."""
        return self.head(self.dropout(self.features(ids, lengths)))

    def features(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled text vectors ``[N, D*H]`` (before dropout and the linear layer)."""
        x = self.embedding(ids)  # (N, L, E)
        if self.training and self.embed_dropout > 0:
            keep = x.new_empty(x.shape[:2] + (1,)).bernoulli_(1 - self.embed_dropout)  # (N, L, 1)
            x = x * keep / (1 - self.embed_dropout)
        if not self.use_lengths:
            lengths = None
        output, final = self.encoder(x, lengths=lengths)  # output (N, L, D*H)
        if self.pool == "last":
            h_n = final[0] if isinstance(final, tuple) else final  # (layers*D, N, H)
            last_layer = h_n[-self.directions :]  # (D, N, H)
            return last_layer.transpose(0, 1).reshape(ids.shape[0], -1)  # (N, D*H)
        mask = None if lengths is None else padding_mask(lengths, output.shape[1], output.device)[:, :, None]
        if self.pool == "mean":
            if mask is None:
                return output.mean(dim=1)
            return (output * mask).sum(dim=1) / lengths.to(output.device, output.dtype)[:, None]
        if self.pool == "max":
            if mask is None:
                return output.max(dim=1).values
            return output.masked_fill(~mask, float("-inf")).max(dim=1).values
        scores = self.attention(output)  # (N, L, 1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=1).to(output.dtype)  # (N, L, 1)
        return (weights * output).sum(dim=1)  # (N, D*H)


@torch.no_grad()
def predict_proba(
    model: nn.Module, batches: Iterable[Any], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Class probabilities ``[n, C]`` for every example of ``batches``, in batch order (model in eval mode).

    >>> import torch
    >>> from rnnkit.data import collate
    >>> model = TextClassifier(10, 2, hidden_dim=4)
    >>> probs = predict_proba(model, [collate([([3, 4], None), ([5], None)])])
    >>> probs.shape, torch.allclose(probs.sum(dim=1), torch.ones(2))
    (torch.Size([2, 2]), True)
    """
    was_training = model.training
    model.eval()
    try:
        probs = []
        for batch in batches:
            batch = batch.to(device)
            probs.append(torch.softmax(model(batch.ids, batch.lengths).float(), dim=-1).cpu())
        return torch.cat(probs) if probs else torch.empty(0)
    finally:
        model.train(was_training)
