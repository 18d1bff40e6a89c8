"""Text classifier: embedding → recurrent encoder → pooling → dropout → linear.

The lesson's model, generalised: the encoder is any :mod:`rnnkit.nn` layer (``rnn``, ``lstm``, ``gru``;
stacked, bidirectional), and the pooling that turns its outputs into one vector per text is one of

- ``last``: the final hidden state of the last layer (both directions' when bidirectional — the reverse
  direction's final state is the one at the text's first token);
- ``mean`` / ``max``: over the real tokens only — padding never counts;
- ``attention``: additive attention (``score_t = vᵀ tanh(W o_t)``, softmax over the real tokens);
- ``concat``: ``last ‖ max ‖ mean`` side by side (ULMFiT's concat pooling), 3·D·H features.

Two additions for texts the lesson did not meet:

- **Long texts** (``max_len``): the encoder reads a text longer than ``max_len`` tokens as its first
  ``max_len // 2`` and last ``max_len - max_len // 2`` tokens (the beginning and end of a document carry
  most of its topic and verdict), while the n-gram path below reads every token.
- **The wide path** (``ngram_buckets`` not None): an :class:`~rnnkit.models.ngrams.NgramLinear` — TF-IDF
  weighted words and word pairs, a linear model — beside the recurrent one. The answer is a weighted
  geometric mean of the two paths' probabilities, ``log p = mix · log p_rnn + (1 − mix) · log p_ngram``
  (renormalised by the softmax that follows); ``mix`` is a buffer chosen on validation data after training
  (1 = the recurrent path alone, as during its training).

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
from .dropout import embedded, recurrent_layer, sequence_dropout
from .ngrams import NgramLinear

logger = logging.getLogger(__name__)

POOLS = ("last", "mean", "max", "attention", "concat")
CELLS = ("rnn", "lstm", "gru")


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
        max_len: the encoder reads at most this many tokens of a text, its head and tail (None: all).
        weight_drop, locked_dropout, input_dropout: the AWD-LSTM's regularisation, as for
            :class:`~rnnkit.models.language_model.LanguageModel` (a classifier started from a pretrained
            language model keeps its encoder's).
        chunk_len: in training, read texts in chunks of this many tokens, the state carried from chunk to
            chunk but gradients stopped between them (BPT3C, Howard & Ruder 2018): long documents train in
            bounded memory; evaluation reads them whole, which gives the same numbers. Pooling covers
            every chunk. 0: whole texts. Unidirectional encoders only.
        ngram_buckets: add the n-gram path with this many word-pair hash rows (None: no n-gram path).

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
        max_len: int | None = None,
        ngram_buckets: int | None = None,
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
        input_dropout: float = 0.0,
        chunk_len: int = 0,
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        if vocab_size < 1 or num_classes < 1:
            raise ValueError(f"vocab_size and num_classes must be ≥ 1, got {vocab_size} and {num_classes}")
        if max_len is not None and max_len < 2:
            raise ValueError(f"max_len must be ≥ 2 (a head and a tail), got {max_len}")
        if chunk_len and bidirectional:
            raise ValueError("chunk_len (BPT3C) carries the state left to right: it needs one direction")
        self.pool = pool
        self.max_len = max_len
        self.use_lengths = use_lengths
        self.embed_dropout = embed_dropout
        self.locked_dropout = locked_dropout
        self.chunk_len = chunk_len
        self.directions = 2 if bidirectional else 1
        padding_idx = pad_id if use_lengths else None  # without lengths the padding is read: learn it
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx, sparse=sparse)
        if embed_mean:
            with torch.no_grad():
                self.embedding.weight.add_(embed_mean)
                if padding_idx is not None:
                    self.embedding.weight[padding_idx].zero_()
        self.encoder = recurrent_layer(
            cell, embed_dim, hidden_dim, layers, bidirectional=bidirectional, dropout=dropout,
            weight_drop=weight_drop, locked_dropout=locked_dropout,
        )  # fmt: skip
        self.input_dropout = sequence_dropout(input_dropout, locked_dropout)
        features = self.directions * hidden_dim * (3 if pool == "concat" else 1)
        if pool == "attention":
            self.attention = nn.Sequential(nn.Linear(features, features), nn.Tanh(), nn.Linear(features, 1))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes)
        self.wide = None
        if ngram_buckets is not None:
            self.wide = NgramLinear(vocab_size, num_classes, ngram_buckets)
            self.register_buffer("mix", torch.tensor(1.0))  # weight of the recurrent path's log-probabilities

    @classmethod
    def from_config(
        cls,
        cfg: ModelConfig,
        vocab_size: int,
        num_classes: int,
        *,
        pad_id: int = 0,
        sparse: bool = False,
        max_len: int | None = None,
    ) -> TextClassifier:
        """Build the model a :class:`~rnnkit.config.ModelConfig` describes (vectors are loaded separately;
        ``max_len`` is the data settings' ``max_len``)."""
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
            max_len=max_len,
            ngram_buckets=cfg.ngram_buckets if cfg.ngrams else None,
            weight_drop=cfg.weight_drop,
            locked_dropout=cfg.locked_dropout,
            input_dropout=cfg.input_dropout,
            chunk_len=cfg.chunk_len,
        )

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class scores (logits) for a padded batch; see the class docstring for shapes."""
        if self.wide is None:
            return self.rnn_logits(ids, lengths)
        if lengths is None:
            lengths = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long)
        rnn = torch.log_softmax(self.rnn_logits(ids, lengths).float(), dim=-1)
        ngram = torch.log_softmax(self.wide(ids, lengths).float(), dim=-1)
        return self.mix * rnn + (1.0 - self.mix) * ngram  # (N, C)

    def rnn_logits(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The recurrent path's class scores alone ``[N, C]``."""
        return self.head(self.dropout(self.features(ids, lengths)))

    def head_and_tail(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, lengths)`` with every text longer than ``max_len`` cut to its head and tail.

        >>> model = TextClassifier(20, 2, max_len=4)
        >>> ids, lengths = model.head_and_tail(torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0]]),
        ...                                    torch.tensor([6, 3]))
        >>> ids.tolist(), lengths.tolist()
        ([[1, 2, 5, 6], [7, 8, 9, 0]], [4, 3])
        """
        k = self.max_len
        if k is None:
            return ids, lengths
        # No branch on the batch's length, so a traced export cuts texts exactly as eager code does.
        steps = torch.arange(ids[:, :k].shape[1], device=ids.device)  # (K,), K = min(L, max_len)
        lengths_dev = lengths.to(ids.device)
        cut = (lengths_dev > k)[:, None] & (steps >= k // 2)[None, :]  # (N, K): tail positions of long texts
        source = torch.where(cut, lengths_dev[:, None] - k + steps[None, :], steps[None, :])
        return ids.gather(1, source), lengths.clamp(max=k)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled text vectors ``[N, D*H]`` (``[N, 3*D*H]`` for ``concat``), before dropout and head."""
        if lengths is not None:
            ids, lengths = self.head_and_tail(ids, lengths)
        elif self.max_len is not None:
            ids = ids[:, : self.max_len]
        x = embedded(self.embedding, ids, self.embed_dropout, self.locked_dropout, self.training)  # (N, L, E)
        x = self.input_dropout(x)
        if not self.use_lengths:
            lengths = None
        if self.training and self.chunk_len and x.shape[1] > self.chunk_len:
            output, final = self._encode_in_chunks(x, lengths)
        else:
            output, final = self.encoder(x, lengths=lengths)  # output (N, L, D*H)
        if self.pool == "concat":
            pooled = [self._pool(p, ids, lengths, output, final) for p in ("last", "max", "mean")]
            return torch.cat(pooled, dim=1)  # (N, 3*D*H)
        return self._pool(self.pool, ids, lengths, output, final)

    def _encode_in_chunks(self, x: torch.Tensor, lengths: torch.Tensor | None):
        """BPT3C: the encoder over ``chunk_len``-token chunks of ``x`` ``[N, L, E]``, the state carried on
        (detached: no gradient flows back into an earlier chunk). A text that has ended keeps its final
        state and gets zero outputs. Returns what one call on all of ``x`` returns."""
        n, steps = x.shape[0], x.shape[1]
        if lengths is None:
            lengths = torch.full((n,), steps, dtype=torch.long)
        lengths = lengths.cpu()
        state, outputs = None, []
        for start in range(0, steps, self.chunk_len):
            piece = x[:, start : start + self.chunk_len]
            left = (lengths - start).clamp(0, piece.shape[1])  # real tokens of each text in this chunk
            active = left > 0
            if state is not None:
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            if bool(active.all()):
                output, state = self.encoder(piece, state, lengths=left)
            else:
                output, state = self._encode_active(piece, state, left, active)
            outputs.append(output)
        return torch.cat(outputs, dim=1), state

    def _encode_active(self, piece: torch.Tensor, state, left: torch.Tensor, active: torch.Tensor):
        """One chunk for the texts that still have tokens in it; the others keep their state, output zero."""
        rows = active.nonzero().squeeze(1).to(piece.device)
        lstm = self.encoder.mode == "LSTM"
        parts = self.encoder._zero_state(piece) if state is None else (state if lstm else (state,))
        given = tuple(p.index_select(1, rows) for p in parts)
        x = piece.index_select(0, rows)
        out, new = self.encoder(x, given if lstm else given[0], lengths=left[active])
        merged = tuple(p.index_copy(1, rows, q) for p, q in zip(parts, new if lstm else (new,), strict=True))
        output = piece.new_zeros(piece.shape[0], piece.shape[1], out.shape[2]).index_copy(0, rows, out)
        return output, merged if lstm else merged[0]

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The parameters in groups from the input up, for discriminative learning rates and gradual
        unfreezing (ULMFiT): the embedding, each recurrent layer (both directions), then the head (with
        the attention and the n-gram path)."""
        groups: list[list[nn.Parameter]] = [[self.embedding.weight]]
        for k in range(self.encoder.num_layers):
            names = [n for n in self.encoder._flat_weights_names if n.split("_l")[-1].split("_")[0] == str(k)]
            groups.append([getattr(self.encoder, n) for n in names])
        grouped = {id(p) for group in groups for p in group}
        groups.append([p for p in self.parameters() if id(p) not in grouped])
        return groups

    def _pool(self, pool: str, ids, lengths, output: torch.Tensor, final) -> torch.Tensor:
        if pool == "last":
            h_n = final[0] if isinstance(final, tuple) else final  # (layers*D, N, H)
            last_layer = h_n[-self.directions :]  # (D, N, H)
            return last_layer.transpose(0, 1).reshape(ids.shape[0], -1)  # (N, D*H)
        mask = None if lengths is None else padding_mask(lengths, output.shape[1], output.device)[:, :, None]
        if pool == "mean":
            if mask is None:
                return output.mean(dim=1)
            return (output * mask).sum(dim=1) / lengths.to(output.device, output.dtype)[:, None]
        if pool == "max":
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
