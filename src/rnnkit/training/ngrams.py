"""Fitting the wide n-gram path (:class:`rnnkit.models.ngrams.NgramLinear`): idf, then L2-regularised logistic
regression by full-batch L-BFGS, its strength chosen on the validation data.

The objective is scikit-learn's ``LogisticRegression(C)``: ``C · Σ_i CE_i + ½‖W‖²``, here divided by
``C · n`` (the same minimiser). Only features seen in at least two training texts take part (the others
have ``idf = 0``), so the solve works on a small dense block however large the hash table is. ``C`` is
tried from strong to weak regularisation, each solve starting from the last, and the one with the lowest
validation log-loss is kept: log-loss varies smoothly with ``C`` where accuracy on a few hundred validation
texts jumps about (on the tuning suite's validation splits it picked ``C`` = 1–2 by accuracy, 8–64 by
log-loss, and log-loss's choice scored higher on held-out data).

>>> import torch
>>> from rnnkit.models.ngrams import NgramLinear
>>> train = [([2, 3], 0), ([2, 4], 0), ([5, 3], 1), ([5, 4], 1)] * 5   # word 2 → class 0, word 5 → class 1
>>> wide = NgramLinear(vocab_size=6, num_classes=2, buckets=64)
>>> info = fit_ngrams(wide, train, train, max_iter=30)
>>> info["valid_accuracy"], wide(torch.tensor([[2, 3], [5, 4]]), torch.tensor([2, 2])).argmax(1).tolist()
(1.0, [0, 1])
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..models.ngrams import NgramLinear

C_GRID = (4.0, 16.0, 64.0)  # inverse regularisation strengths tried (scikit-learn's C)
LARGE = 30_000  # from this many training texts on, one strength (C = 16) and at most LARGE_ITER iterations:
# the choice matters less with much data (93,504 texts × 43 classes: 14 s on 2 idle cores)
LARGE_C = 16.0
LARGE_ITER = 150
CHUNK = 512  # texts per batch when computing features


def _chunks(items: Sequence[tuple[list[int], Any]], pad_id: int):
    """Padded ``(ids [N, L], lengths [N])`` chunks of ``items``, in order."""
    for start in range(0, len(items), CHUNK):
        part = [ids for ids, _ in items[start : start + CHUNK]]
        lengths = torch.tensor([len(ids) for ids in part])
        ids = torch.full((len(part), int(lengths.max())), pad_id, dtype=torch.long)
        for row, seq in enumerate(part):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        yield ids, lengths


def set_idf(wide: NgramLinear, items: Sequence[tuple[list[int], Any]], ignore: Sequence[int] = (0, 1)) -> int:
    """Fill ``wide.idf`` from the training texts' document frequencies; return the features kept (df ≥ 2).

    ``ignore``: ids that never count (padding, ``<unk>``).
    """
    n_features = wide.num_features
    df = torch.zeros(n_features, dtype=torch.long)
    wide.idf.fill_(1.0)  # so that features() marks every real position
    offset = 0
    for ids, lengths in _chunks(items, pad_id=ignore[0] if ignore else 0):
        feats, weights = wide.features(ids, lengths)
        rows = torch.arange(offset, offset + len(ids))[:, None].expand_as(feats)
        keys = torch.unique((rows * n_features + feats)[weights > 0])
        df += torch.bincount(keys % n_features, minlength=n_features)
        offset += len(ids)
    n = len(items)
    idf = torch.log((1.0 + n) / (1.0 + df.double())) + 1.0
    idf[df < 2] = 0.0
    idf[list(ignore)] = 0.0
    wide.idf.copy_(idf.float())
    return int((idf > 0).sum())


def design_matrix(wide: NgramLinear, items: Sequence[tuple[list[int], Any]], pad_id: int = 0) -> torch.Tensor:
    """The texts' TF-IDF rows as a sparse ``[n, F]`` matrix (repeated features summed)."""
    rows, cols, values = [], [], []
    offset = 0
    with torch.no_grad():
        for ids, lengths in _chunks(items, pad_id):
            feats, weights = wide.features(ids, lengths)
            keep = weights > 0
            rows.append((torch.arange(offset, offset + len(ids))[:, None].expand_as(feats))[keep])
            cols.append(feats[keep])
            values.append(weights[keep])
            offset += len(ids)
    indices = torch.stack([torch.cat(rows), torch.cat(cols)])
    size = (len(items), wide.num_features)
    return torch.sparse_coo_tensor(indices, torch.cat(values), size, check_invariants=True).coalesce()


def _solve(x, xt, targets, w, b, c: float, max_iter: int) -> None:
    """Minimise mean CE + ‖W‖² / (2 C n) over ``w``, ``b`` in place (L-BFGS, strong Wolfe line search).

    ``x`` is the CSR design matrix and ``xt`` its transpose, ``targets`` the one-hot labels; the gradient is
    written by hand (``xᵀ (softmax − targets) / n + W / (C n)``): 10× faster than autograd through a sparse
    product.
    """
    n = x.shape[0]
    lam = 1.0 / (c * n)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=5, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-5, tolerance_change=1e-7)  # fmt: skip

    def closure():
        log_p = torch.log_softmax(x @ w + b, dim=1)  # (n, C)
        residual = (log_p.exp() - targets) / n
        w.grad = xt @ residual + lam * w
        b.grad = residual.sum(0)
        return -(targets * log_p).sum() / n + 0.5 * lam * (w * w).sum()

    opt.step(closure)


def fit_ngrams(
    wide: NgramLinear,
    train: Sequence[tuple[list[int], int]],
    valid: Sequence[tuple[list[int], int]],
    *,
    c_grid: Sequence[float] | None = None,
    max_iter: int = 100,
    ignore: Sequence[int] = (0, 1),
) -> dict[str, Any]:
    """Fit ``wide`` on ``train`` and pick the regularisation by log-loss on ``valid``.

    Args:
        wide: the n-gram path; its ``idf``, ``weight`` and ``bias`` are overwritten.
        train, valid: ``(ids, label id)`` items.
        c_grid: inverse regularisation strengths to try, weakest last (None: :data:`C_GRID`, or
            :data:`LARGE_C` alone with at most :data:`LARGE_ITER` iterations from :data:`LARGE` training
            texts on).
        max_iter: L-BFGS iterations per strength.
        ignore: ids that never count as features (padding, ``<unk>``).

    Returns:
        ``{"C", "valid_accuracy", "features", "seconds"}``.
    """
    t0 = time.perf_counter()
    if c_grid is None and len(train) >= LARGE:
        c_grid, max_iter = (LARGE_C,), min(max_iter, LARGE_ITER)
    c_grid = C_GRID if c_grid is None else c_grid
    kept = set_idf(wide, train, ignore)
    active = torch.nonzero(wide.idf > 0).squeeze(1)  # (F_active,)
    remap = torch.full((wide.num_features,), -1, dtype=torch.long)
    remap[active] = torch.arange(len(active))

    def matrix(items):
        x = design_matrix(wide, items, ignore[0] if ignore else 0)
        rows, cols = x.indices()
        size = (x.shape[0], max(1, len(active)))
        indices = torch.stack([rows, remap[cols]])
        return torch.sparse_coo_tensor(indices, x.values(), size, check_invariants=True).coalesce()

    x_train, x_valid = matrix(train), matrix(valid)
    classes = wide.bias.shape[0]
    targets = F.one_hot(torch.tensor([label for _, label in train]), classes).float()
    y_valid = torch.tensor([label for _, label in valid])
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products are all we use
        warnings.simplefilter("ignore", UserWarning)
        xt_train = x_train.t().coalesce().to_sparse_csr()
        x_train, x_valid = x_train.to_sparse_csr(), x_valid.to_sparse_csr()
    w = torch.zeros(x_train.shape[1], classes)
    b = torch.zeros(classes)
    best: tuple[float, float, float, torch.Tensor, torch.Tensor] | None = None
    for c in c_grid:
        _solve(x_train, xt_train, targets, w, b, c, max_iter)
        logits = x_valid @ w + b
        loss = float(F.cross_entropy(logits, y_valid))
        if best is None or loss < best[0]:
            accuracy = float((logits.argmax(1) == y_valid).float().mean())
            best = (loss, accuracy, c, w.clone(), b.clone())
    loss, accuracy, c, w_best, b_best = best
    with torch.no_grad():
        wide.weight.zero_()
        if len(active):
            wide.weight[active] = w_best[: len(active)]
        wide.bias.copy_(b_best)
        wide.strength.fill_(c)
    return {"C": c, "valid_accuracy": round(accuracy, 4), "valid_loss": round(loss, 4), "features": kept,
            "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
