"""Language model: embedding → recurrent stack → linear over the vocabulary (tied when sizes allow).

At every step the model reads one token and scores every token of the vocabulary as the next one:
``logits_t = W · h_t + b``, where ``h_t`` is the last recurrent layer's state after token ``t``. When the
embedding and the hidden state have the same size (``embed_dim == hidden_dim``) the output matrix ``W`` *is*
the embedding table (weight tying, Press & Wolf 2017): a token is scored by how well its own vector matches
``h_t``, and the model has ``V·E`` fewer parameters. Otherwise ``W`` is a matrix of its own.

The model is stateless: the hidden state goes in and comes out, so the caller decides when to carry it
(truncated backpropagation through time, :mod:`rnnkit.training.lm`), when to detach it, and when to step it
one token at a time (generation, :mod:`rnnkit.generate`). Running a sequence in pieces, passing the state
from one piece to the next, gives the same logits as running it whole.

>>> import torch
>>> model = LanguageModel(vocab_size=30, cell="gru", embed_dim=16, hidden_dim=16)
>>> model.tied
True
>>> ids = torch.randint(0, 30, (2, 7))                      # (N, L)
>>> logits, state = model(ids)
>>> logits.shape, state.shape                              # (N, L, V) and h_n (layers, N, H)
(torch.Size([2, 7, 30]), torch.Size([1, 2, 16]))
>>> first, state3 = model(ids[:, :3])                      # the same sequence in two pieces
>>> rest, _ = model(ids[:, 3:], state3)
>>> torch.allclose(torch.cat([first, rest], dim=1), logits, atol=1e-5)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig

CELLS = ("rnn", "lstm", "gru")

State = Tensor | tuple[Tensor, Tensor]  # h_n, or (h_n, c_n) for LSTM; each [layers, N, H]


class LanguageModel(nn.Module):
    """Embedding → ``rnnkit.nn`` RNN/LSTM/GRU stack → dropout → linear over the vocabulary.

    Args:
        vocab_size: V, the number of tokens (rows of the embedding, columns of the output).
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        embed_dim: E.
        hidden_dim: H of every layer.
        layers: stacked recurrent layers.
        dropout: between stacked layers and on the last layer's output, in training only.
        embed_dropout: drops whole token vectors (scaled to keep the mean), in training only.
        tie_weights: share the embedding table as the output matrix when ``embed_dim == hidden_dim``
            (ignored otherwise; :attr:`tied` says whether it happened).

    Shapes:
        ids ``[N, L]`` int64, state ``h`` (``(h, c)`` for LSTM) each ``[layers, N, H]`` or None →
        logits ``[N, L, V]``, the state after the last token.

    Raises:
        ValueError: unknown cell, or a size below 1.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        cell: str = "lstm",
        embed_dim: int = 64,
        hidden_dim: int = 256,
        layers: int = 1,
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        tie_weights: bool = True,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        if min(vocab_size, embed_dim, hidden_dim, layers) < 1:
            raise ValueError(
                f"vocab_size, embed_dim, hidden_dim and layers must be ≥ 1, "
                f"got {vocab_size}, {embed_dim}, {hidden_dim}, {layers}"
            )
        from .. import nn as rnn  # the package's own layers (PyTorch-compatible parameters)

        self.cell = cell
        self.embed_dropout = embed_dropout
        self.tied = tie_weights and embed_dim == hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        layer = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}[cell]
        self.encoder = layer(
            embed_dim, hidden_dim, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)
        if self.tied:  # logits = h · embeddingᵀ + bias: no second V×E matrix in the state dict
            self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.decoder = nn.Linear(hidden_dim, vocab_size)

    @classmethod
    def from_config(cls, cfg: ModelConfig, vocab_size: int) -> LanguageModel:
        """The model a :class:`~rnnkit.config.ModelConfig` describes (``pool``, ``bidirectional`` and
        ``vectors`` do not apply to a left-to-right language model)."""
        return cls(
            vocab_size,
            cell=cfg.cell,
            embed_dim=cfg.embed_dim,
            hidden_dim=cfg.hidden_dim,
            layers=cfg.layers,
            dropout=cfg.dropout,
            embed_dropout=cfg.embed_dropout,
        )

    @property
    def vocab_size(self) -> int:
        """V."""
        return self.embedding.num_embeddings

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Next-token logits at every position, and the state after the last token.

        Args:
            ids: ``[N, L]`` token ids.
            state: the state after the previous tokens (None: the zero state, a fresh start).

        Returns:
            ``(logits [N, L, V], state)``; feed ``state`` back in with the next ids to continue.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must be 2-D [N, L], got shape {list(ids.shape)}")
        x = self.embedding(ids)  # (N, L, E)
        if self.training and self.embed_dropout > 0:
            keep = x.new_empty(x.shape[:2] + (1,)).bernoulli_(1 - self.embed_dropout)  # (N, L, 1)
            x = x * keep / (1 - self.embed_dropout)
        output, state = self.encoder(x, state)  # output (N, L, H)
        output = self.dropout(output)
        if self.tied:
            return F.linear(output, self.embedding.weight, self.output_bias), state  # (N, L, V)
        return self.decoder(output), state  # (N, L, V)


__all__ = ["LanguageModel"]
