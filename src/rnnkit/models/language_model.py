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
from .dropout import embedded, recurrent_layer, sequence_dropout

CELLS = ("rnn", "lstm", "gru")
INIT_RANGE = 0.1  # a tied embedding starts uniform in ±0.1 (the AWD-LSTM's), not N(0, 1): logits of ±16

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
        embed_dropout: drops token vectors (scaled to keep the mean), in training only: each position's on
            its own, or with ``locked_dropout`` whole words (a word dropped is dropped wherever it occurs
            in the batch: AWD-LSTM's embedding dropout).
        weight_drop: DropConnect on the recurrent weights, a new mask per batch (AWD-LSTM; see
            :class:`rnnkit.nn.LSTM`).
        locked_dropout: ``dropout`` (between layers and on the output) and ``input_dropout`` draw one mask
            per sequence, shared by all its steps (variational dropout), as the AWD-LSTM does.
        input_dropout: dropout on the embedded tokens (locked when ``locked_dropout``).
        tie_projection: when ``embed_dim ≠ hidden_dim``, tie anyway through a learned projection:
            ``logits = E · (P h) + b`` with ``P`` ``[E, H]`` — the softmax then costs ``V·E`` rather than
            ``V·H`` per token, and pretrained word vectors in ``E`` also score the next word.
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
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
        input_dropout: float = 0.0,
        tie_projection: bool = False,
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
        self.cell = cell
        self.embed_dropout = embed_dropout
        self.locked_dropout = locked_dropout
        self.tied = tie_weights and (embed_dim == hidden_dim or tie_projection)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        if self.tied:  # the table is also the output layer: small vectors, logits near zero at the start
            nn.init.uniform_(self.embedding.weight, -INIT_RANGE, INIT_RANGE)
        self.encoder = recurrent_layer(
            cell, embed_dim, hidden_dim, layers, dropout=dropout, weight_drop=weight_drop,
            locked_dropout=locked_dropout,
        )  # fmt: skip
        self.input_dropout = sequence_dropout(input_dropout, locked_dropout)
        self.dropout = sequence_dropout(dropout, locked_dropout)
        if self.tied:  # logits = h · embeddingᵀ + bias: no second V×E matrix in the state dict
            self.output_bias = nn.Parameter(torch.zeros(vocab_size))
            if embed_dim != hidden_dim:
                self.projection = nn.Linear(hidden_dim, embed_dim, bias=False)
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
            weight_drop=cfg.weight_drop,
            locked_dropout=cfg.locked_dropout,
            input_dropout=cfg.input_dropout,
            tie_projection=cfg.tie_projection,
        )

    @property
    def vocab_size(self) -> int:
        """V."""
        return self.embedding.num_embeddings

    def forward(
        self, ids: Tensor, state: State | None = None, *, hidden: bool = False
    ) -> tuple[Tensor, State] | tuple[Tensor, State, tuple[Tensor, Tensor]]:
        """Next-token logits at every position, and the state after the last token.

        Args:
            ids: ``[N, L]`` token ids.
            state: the state after the previous tokens (None: the zero state, a fresh start).
            hidden: also return the last layer's outputs ``(raw, dropped)``, each ``[N, L, H]``, for the
                AWD-LSTM's activation penalties (:func:`rnnkit.nn.ar_loss`, :func:`rnnkit.nn.tar_loss`).

        Returns:
            ``(logits [N, L, V], state)`` (``(logits, state, (raw, dropped))`` with ``hidden``); feed
            ``state`` back in with the next ids to continue.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must be 2-D [N, L], got shape {list(ids.shape)}")
        x = embedded(self.embedding, ids, self.embed_dropout, self.locked_dropout, self.training)
        x = self.input_dropout(x)  # (N, L, E)
        raw, state = self.encoder(x, state)  # (N, L, H)
        output = self.dropout(raw)
        if self.tied:
            if hasattr(self, "projection"):
                output = self.projection(output)  # (N, L, E)
            logits = F.linear(output, self.embedding.weight, self.output_bias)  # (N, L, V)
        else:
            logits = self.decoder(output)  # (N, L, V)
        return (logits, state, (raw, output)) if hidden else (logits, state)


__all__ = ["LanguageModel"]
