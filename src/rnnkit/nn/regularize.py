"""AWD-LSTM's regularisers: locked (variational) dropout, embedding dropout, AR and TAR.

Merity, Keskar & Socher (2018), "Regularizing and Optimizing LSTM Language Models" (AWD-LSTM),
regularise an LSTM language model in five ways. The recurrent layers (:class:`rnnkit.nn.LSTM` …)
take two of them as constructor arguments -- ``weight_drop`` (DropConnect on ``W_hh``) and
``locked_dropout`` (their between-layer dropout, one mask per sequence) -- and this module holds
the rest, for the model around the layers:

* :class:`LockedDropout` (and :func:`locked_dropout`) -- variational dropout (Gal & Ghahramani 2016,
  "A Theoretically Grounded Application of Dropout in Recurrent Neural Networks"): one mask per
  sequence and feature, the same at every time step, ``y_t = x_t ⊙ m / (1 − p)``,
  ``m ~ Bernoulli(1 − p)^F``.
* :func:`embedding_dropout` -- whole words dropped: one mask over the vocabulary,
  ``e(w) = E_w · m_w / (1 − p)``, ``m ~ Bernoulli(1 − p)^V``, so a word dropped is dropped at every
  position it takes in the batch.
* :func:`ar_loss` -- activation regularisation, ``α · mean(h_t²)``: keeps the outputs small.
* :func:`tar_loss` -- temporal activation regularisation, ``β · mean((h_t − h_{t−1})²)``: keeps them
  from changing fast.

Shape legend: ``N`` batch, ``L`` length, ``F`` features, ``E`` embedding, ``V`` vocabulary.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn

__all__ = ["LockedDropout", "locked_dropout", "embedding_dropout", "ar_loss", "tar_loss"]


def _check_probability(p: float, name: str = "p") -> None:
    """ValueError unless ``p`` is a number in ``[0, 1)`` (1 would drop everything, and divide by 0)."""
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}")


def locked_dropout(x: Tensor, p: float, training: bool = True, batch_first: bool = True) -> Tensor:
    """Variational dropout: ``x_t ⊙ m / (1 − p)`` with one mask ``m ~ Bernoulli(1 − p)`` per sequence
    and feature, the same at every step ``t`` (Gal & Ghahramani 2016; AWD-LSTM's "locked dropout").

    ``p = 1`` (allowed here, as the layers' ``dropout`` allows it) gives zeros.

    Shapes:
        ``x`` ``[N, L, F]`` (``[L, N, F]`` if not ``batch_first``); the mask is ``[N, 1, F]``
        (``[1, N, F]``). Returns ``x``'s shape.

    >>> x = torch.ones(2, 5, 3)
    >>> y = locked_dropout(x, 0.5)
    >>> bool((y == y[:, :1]).all()), sorted(set(y.flatten().tolist())) in ([0.0], [2.0], [0.0, 2.0])
    (True, True)
    >>> locked_dropout(x, 0.5, training=False) is x
    True
    """
    if not training or p == 0:
        return x
    n, features = (x.shape[0], x.shape[2]) if batch_first else (x.shape[1], x.shape[2])
    shape = (n, 1, features) if batch_first else (1, n, features)
    mask = x.new_empty(shape).bernoulli_(1 - p)  # (N, 1, F) or (1, N, F)
    return x * (mask / (1 - p) if p < 1 else mask)


class LockedDropout(nn.Module):
    """Variational ("locked") dropout as a module: one mask per sequence and feature, shared by all steps.

    In training, ``y_t = x_t ⊙ m / (1 − p)`` with ``m ~ Bernoulli(1 − p)^{N×F}`` drawn afresh for each
    call, the same at every time step ``t`` -- what Gal & Ghahramani (2016) derive for recurrent
    networks and Merity et al. (2018) apply to an LSTM language model's embeddings, between its
    layers and on its output. The identity in eval mode or when ``p = 0``.

    Args:
        p: probability of zeroing a feature of a sequence, in ``[0, 1)``.
        batch_first: ``input`` is ``[N, L, F]`` (default) rather than ``[L, N, F]``.

    Shapes:
        input ``[N, L, F]`` (``[L, N, F]`` if not ``batch_first``); output the same.

    >>> drop = LockedDropout(0.5)
    >>> x = torch.ones(4, 6, 8)                          # (N, L, F)
    >>> y = drop(x)
    >>> bool((y == y[:, :1]).all())                      # one mask along time
    True
    >>> bool(drop.eval()(x).equal(x))
    True
    """

    def __init__(self, p: float, batch_first: bool = True):
        super().__init__()
        _check_probability(p)
        self.p = float(p)
        self.batch_first = batch_first

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 3:
            layout = "[N, L, F]" if self.batch_first else "[L, N, F]"
            raise ValueError(f"LockedDropout expects a 3-D input {layout}, got {input.dim()}-D")
        return locked_dropout(input, self.p, self.training, self.batch_first)

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.batch_first else ", batch_first=False")


def embedding_dropout(embedding: nn.Embedding, ids: Tensor, p: float, training: bool = True) -> Tensor:
    """``embedding(ids)`` with whole words dropped: AWD-LSTM's embedding dropout (Merity et al. 2018, §4.3).

    One mask over the vocabulary, ``m ~ Bernoulli(1 − p)^V``, scales every row:
    ``e(w) = E_w · m_w / (1 − p)``. A word dropped is zero at every position it takes in the
    batch, and the expectation ``E[e(w)] = E_w`` is kept. The mask is gathered at ``ids`` and
    multiplies the looked-up vectors, so no masked ``V×E`` matrix is built and a
    ``sparse=True`` embedding still gets a sparse gradient. The identity lookup when not
    ``training`` or ``p = 0``.

    Args:
        embedding: the lookup table (``padding_idx``, ``max_norm`` and ``sparse`` apply as usual).
        ids: integer token ids, any shape (usually ``[N, L]``).
        p: probability of dropping a word of the vocabulary, in ``[0, 1)``.
        training: drop words (pass the model's ``self.training``).

    Returns:
        ``[*ids.shape, E]`` (usually ``[N, L, E]``).

    >>> _ = torch.manual_seed(0)
    >>> table = nn.Embedding(10, 4)
    >>> ids = torch.tensor([[1, 2, 1, 3], [3, 1, 2, 2]])
    >>> vectors = embedding_dropout(table, ids, p=0.5)
    >>> vectors.shape
    torch.Size([2, 4, 4])
    >>> dropped = vectors.eq(0).all(-1)                  # (N, L): positions whose word was dropped
    >>> all(bool(dropped[ids == w].all() or not dropped[ids == w].any()) for w in (1, 2, 3))
    True
    >>> bool(embedding_dropout(table, ids, p=0.5, training=False).equal(table(ids)))
    True
    """
    _check_probability(p)
    vectors = embedding(ids)  # (N, L, E)
    if not training or p == 0:
        return vectors
    keep = embedding.weight.new_empty(embedding.num_embeddings).bernoulli_(1 - p) / (1 - p)  # (V,)
    return vectors * keep[ids].unsqueeze(-1)  # (N, L, E)


def _masked_mean(squares: Tensor, mask: Tensor | None) -> Tensor:
    """The mean of ``squares`` ``[N, L', F]`` where ``mask`` ``[N, L']`` is True (0 if it never is)."""
    if mask is None:
        return squares.mean() if squares.numel() else squares.new_zeros(())
    weight = mask.unsqueeze(-1).to(squares.dtype)  # (N, L', 1)
    count = weight.sum() * squares.shape[-1]
    return (squares * weight).sum() / count.clamp(min=1)


def _check_mask(output: Tensor, mask: Tensor | None, name: str) -> None:
    if output.dim() != 3:
        raise ValueError(f"{name}: output must be [N, L, F], got {output.dim()}-D")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != output.shape[:2]):
        raise ValueError(
            f"{name}: mask must be a bool tensor [N, L] = {list(output.shape[:2])}, "
            f"got {mask.dtype} {list(mask.shape)}"
        )


def ar_loss(output: Tensor, alpha: float, mask: Tensor | None = None) -> Tensor:
    """Activation regularisation (Merity et al. 2018, §4.6): ``α · mean(h_t²)`` over the real steps.

    An L2 penalty on the layer's outputs (AWD-LSTM applies it to the last layer's, after dropout),
    averaged over every feature of every real step.

    Args:
        output: the batch-first outputs ``h`` ``[N, L, F]``.
        alpha: ``α``; 0 returns a zero without computing anything.
        mask: ``[N, L]`` bool, True at real steps (None: all are real).

    Returns:
        a 0-dim tensor.

    >>> h = torch.tensor([[[1.0, 3.0], [2.0, 2.0], [9.0, 9.0]]])    # (N=1, L=3, F=2)
    >>> ar_loss(h, alpha=2.0, mask=torch.tensor([[True, True, False]]))    # 2 · (1+9+4+4)/4
    tensor(9.)
    >>> ar_loss(h, alpha=0.0)
    tensor(0.)
    """
    if alpha == 0:
        return output.new_zeros(())
    _check_mask(output, mask, "ar_loss")
    return alpha * _masked_mean(output.pow(2), mask)


def tar_loss(output: Tensor, beta: float, mask: Tensor | None = None) -> Tensor:
    """Temporal activation regularisation (Merity et al. 2018, §4.6): ``β · mean((h_t − h_{t−1})²)``.

    A slowness penalty: the mean squared change of the outputs between consecutive steps, over
    the pairs ``(t − 1, t)`` where both steps are real (AWD-LSTM applies it to the last layer's
    outputs before dropout). A batch with no such pair (every sequence one step long) gives 0.

    Args:
        output: the batch-first outputs ``h`` ``[N, L, F]``.
        beta: ``β``; 0 returns a zero without computing anything.
        mask: ``[N, L]`` bool, True at real steps (None: all are real).

    Returns:
        a 0-dim tensor.

    >>> h = torch.tensor([[[0.0], [1.0], [3.0]], [[0.0], [2.0], [7.0]]])   # (N=2, L=3, F=1)
    >>> tar_loss(h, beta=1.0)                                            # (1 + 4 + 4 + 25) / 4
    tensor(8.5000)
    >>> tar_loss(h, beta=1.0, mask=torch.tensor([[True, True, True], [True, False, False]]))
    tensor(2.5000)
    """
    if beta == 0:
        return output.new_zeros(())
    _check_mask(output, mask, "tar_loss")
    change = output[:, 1:] - output[:, :-1]  # (N, L-1, F)
    pairs = None if mask is None else mask[:, 1:] & mask[:, :-1]  # (N, L-1)
    return beta * _masked_mean(change.pow(2), pairs)
