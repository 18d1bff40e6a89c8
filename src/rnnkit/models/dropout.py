"""The regularisation the models share: their recurrent encoder, and dropout on tokens and sequences.

Two kinds of dropout (Srivastava et al. 2014) are used on sequences:

- *per element*, the usual ``nn.Dropout``: a new mask for every position and feature;
- *locked* (variational, Gal & Ghahramani 2016; the AWD-LSTM's, Merity et al. 2018): one mask per
  sequence and feature, the same at every step, so a unit the network loses it loses for the whole text.

On tokens, ``embed_dropout`` drops whole token vectors: per position, or — locked — per *word*, which is
then unseen wherever it occurs in the batch (the AWD-LSTM's embedding dropout).

>>> import torch
>>> embedding = torch.nn.Embedding(10, 4)
>>> ids = torch.tensor([[3, 5, 3, 3]])
>>> torch.manual_seed(0) and None
>>> x = embedded(embedding, ids, 0.5, locked=True, training=True)
>>> dropped = x.abs().sum(-1).eq(0)[0].tolist()            # word 3 is dropped at all three places or none
>>> dropped[0] == dropped[2] == dropped[3]
True
"""

from __future__ import annotations

from torch import Tensor, nn


def recurrent_layer(
    cell: str,
    input_size: int,
    hidden_size: int,
    layers: int,
    *,
    bidirectional: bool = False,
    dropout: float = 0.0,
    weight_drop: float = 0.0,
    locked_dropout: bool = False,
) -> nn.Module:
    """A batch-first :mod:`rnnkit.nn` ``RNN`` / ``LSTM`` / ``GRU`` stack with the given regularisation
    (``dropout`` between layers only when there are several)."""
    from .. import nn as rnn  # the package's own layers (PyTorch-compatible parameters)

    layer = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}[cell]
    return layer(
        input_size,
        hidden_size,
        num_layers=layers,
        bidirectional=bidirectional,
        dropout=dropout if layers > 1 else 0.0,
        batch_first=True,
        weight_drop=weight_drop,
        locked_dropout=locked_dropout,
    )


def sequence_dropout(p: float, locked: bool) -> nn.Module:
    """Dropout on ``[N, L, F]``: :class:`rnnkit.nn.LockedDropout` if ``locked``, else per element."""
    if locked:
        from ..nn import LockedDropout

        return LockedDropout(p, batch_first=True)
    return nn.Dropout(p)


def embedded(embedding: nn.Embedding, ids: Tensor, p: float, locked: bool, training: bool) -> Tensor:
    """``embedding(ids)`` ``[N, L, E]`` with token vectors dropped in training: per position, or per word
    if ``locked`` (:func:`rnnkit.nn.embedding_dropout`); kept vectors are scaled by ``1 / (1 - p)``."""
    if not training or p <= 0:
        return embedding(ids)
    if locked:
        from ..nn import embedding_dropout

        return embedding_dropout(embedding, ids, p, training=True)
    x = embedding(ids)
    keep = x.new_empty(x.shape[:2] + (1,)).bernoulli_(1 - p)  # (N, L, 1)
    return x * keep / (1 - p)
