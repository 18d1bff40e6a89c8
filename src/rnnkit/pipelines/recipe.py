"""What the classification recipe decides from the data itself, rather than from constants.

- :func:`plan`: how many epochs (``epochs=0``: planned from the training set's size, so a small dataset
  gets many passes and a large one few; early stopping then decides) and how many hash rows the n-gram
  path's word pairs get (``ngram_buckets=0``).
- :func:`monitor_for`: accuracy, or macro-F1 when the classes are imbalanced (accuracy would reward a
  model that ignores the small classes).
- :func:`fit_wide`: the n-gram path, fitted before the recurrent one trains (and frozen while it does).
- :func:`choose_mix`: how much each path counts, chosen on the validation data after training.

All of them are deterministic functions of the data and settings: the same data gives the same run on a
fast or a slow machine.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch

from ..config import Config, resolve_config

# Planned epochs (``epochs=0``): enough optimizer steps for a small dataset to converge, few passes over a
# large one; the token cap keeps long-document datasets near two minutes on 2 CPU cores.
PLAN_STEPS = 2000  # optimizer steps the plan aims at
PLAN_TOKENS = 4_000_000  # but no more than this many tokens read by the recurrent path
MIN_EPOCHS, MAX_EPOCHS = 2, 20
FEW_EPOCHS = 4  # planned epochs up to this many are evaluated every half epoch (best weights, early stopping)
IMBALANCE = 3.0  # largest / smallest class count above which the classes count as imbalanced
MIX_GRID = 21  # mix values tried: 0, 0.05, …, 1


def plan(cfg: Config, train: list[tuple[list[int], int]]) -> tuple[Config, dict[str, Any]]:
    """Resolve ``epochs=0`` and ``ngram_buckets=0`` from the training items; return ``(cfg, what planned)``.

    >>> from rnnkit.config import resolve_config
    >>> cfg = resolve_config(preset="none", overrides={"epochs": 0, "batch_size": 10})
    >>> items = [([2, 3, 4], 0), ([2, 3], 1)] * 50                  # 100 short texts: 10 steps an epoch
    >>> planned, info = plan(cfg, items)
    >>> planned.train.epochs, info["epochs"]
    (20, 'planned: 20 epochs (2000 steps or 4000000 tokens, within 2-20)')
    """
    overrides: dict[str, Any] = {}
    info: dict[str, Any] = {}
    if cfg.train.epochs == 0:
        steps = math.ceil(len(train) / cfg.train.batch_size)
        max_len = cfg.data.max_len
        tokens = sum(min(len(ids), max_len or len(ids)) for ids, _ in train)
        by_steps = math.ceil(PLAN_STEPS / max(1, steps))
        by_tokens = PLAN_TOKENS // max(1, tokens)
        overrides["epochs"] = max(MIN_EPOCHS, min(MAX_EPOCHS, by_steps, by_tokens))
        info["epochs"] = (f"planned: {overrides['epochs']} epochs ({PLAN_STEPS} steps or {PLAN_TOKENS} "
                          f"tokens, within {MIN_EPOCHS}-{MAX_EPOCHS})")  # fmt: skip
        if overrides["epochs"] <= FEW_EPOCHS and cfg.train.eval_every == 0:  # few, long epochs: look twice
            overrides["eval_every"] = math.ceil(steps / 2)
            info["eval_every"] = f"evaluating every {overrides['eval_every']} steps (half an epoch)"
    if cfg.model.ngrams and cfg.model.ngram_buckets == 0:
        from ..models.ngrams import pair_buckets

        documents = Counter(pair for ids, _ in train for pair in set(zip(ids, ids[1:], strict=False)))
        pairs = sum(1 for n in documents.values() if n >= 2)
        labels = 1 + max(label for _, label in train)
        overrides["ngram_buckets"] = pair_buckets(pairs, labels)
        info["ngram_buckets"] = f"{overrides['ngram_buckets']} rows for {pairs} word pairs seen in ≥ 2 texts"
    if not overrides:
        return cfg, info
    return resolve_config(config_dict=cfg.to_dict(), overrides=overrides), info


def monitor_for(train: list[tuple[list[int], int]], num_classes: int) -> str:
    """``"macro_f1"`` when the largest class has over :data:`IMBALANCE` × the smallest's examples, else
    ``"accuracy"``.

    >>> monitor_for([([1], 0)] * 9 + [([1], 1)] * 2, 2), monitor_for([([1], 0)] * 3 + [([1], 1)] * 2, 2)
    ('macro_f1', 'accuracy')
    """
    counts = Counter(label for _, label in train)
    sizes = [counts.get(c, 0) for c in range(num_classes)]
    return "macro_f1" if max(sizes) > IMBALANCE * max(1, min(sizes)) else "accuracy"


def fit_wide(model, train: list, valid: list, ignore: tuple[int, ...]) -> dict[str, Any]:
    """Fit ``model.wide`` (the n-gram path) on the training items, regularisation chosen on ``valid``."""
    from ..training.ngrams import fit_ngrams

    return fit_ngrams(model.wide, train, valid, ignore=ignore)


def refit_wide(model, items: list, c: float, ignore: tuple[int, ...]) -> dict[str, Any]:
    """Fit the n-gram path again, on ``items`` (training + held-out validation rows), with the strength
    already chosen: the validation rows held out of the training file are training data too, and a convex
    fit with a known ``C`` needs no second validation. (The recurrent path keeps its weights.)"""
    from ..training.ngrams import fit_ngrams

    info = fit_ngrams(model.wide, items, items[:1], c_grid=(c,), ignore=ignore)
    return {"examples": len(items), "features": info["features"], "seconds": info["seconds"]}


def _log_probs(model, predict) -> tuple[torch.Tensor, torch.Tensor]:
    """Both paths' log-probabilities ``[n, C]`` (``predict`` maps a model to its probabilities ``[n, C]``)."""
    mix = float(model.mix)
    try:
        model.mix.fill_(1.0)
        rnn = predict(model).clamp_min(1e-12).log()
        model.mix.fill_(0.0)
        ngram = predict(model).clamp_min(1e-12).log()
    finally:
        model.mix.fill_(mix)
    return rnn, ngram


def choose_mix(model, valid: list, predict, monitor: str) -> dict[str, Any]:
    """Set ``model.mix`` to the value in 0, 0.05, …, 1 that scores best on ``valid`` by ``monitor``; among
    equal scores the one nearest 0.5 (an even blend of two models is the safer bet). Returns the scores.

    ``predict(model)`` gives the model's probabilities ``[n, C]`` for ``valid``, in its order.
    """
    from ..training.classify import macro_f1

    rnn, ngram = _log_probs(model, predict)
    labels = torch.tensor([label for _, label in valid])
    classes = rnn.shape[1]

    def score(mix: float) -> float:
        predicted = (mix * rnn + (1 - mix) * ngram).argmax(1)
        if monitor == "macro_f1":
            return macro_f1(predicted, labels, classes)
        return float((predicted == labels).float().mean())

    grid = [i / (MIX_GRID - 1) for i in range(MIX_GRID)]
    scores = {mix: score(mix) for mix in grid}
    best = max(scores.values())
    mix = min((m for m in grid if scores[m] == best), key=lambda m: abs(m - 0.5))
    model.mix.fill_(mix)
    return {"mix": mix, "monitor": monitor, "valid": round(best, 4), "rnn_only": round(scores[1.0], 4),
            "ngrams_only": round(scores[0.0], 4)}  # fmt: skip
