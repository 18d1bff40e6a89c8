"""Find the units that act as flags for a pattern: the lesson's "raised when *not* appears".

Given texts and trigger tokens (``not, never, no``), :func:`find_units` runs the model over every text
(recording, as :mod:`rnnkit.inspect.record` does), splits the token positions into those **after a
trigger** and **elsewhere**, and scores every unit of every layer, direction and state by the
**standardised mean difference** (Cohen's *d*) of its value between the two groups:

.. code-block:: text

    d = (mean_after − mean_elsewhere) / s_pooled
    s_pooled = sqrt(((n_after − 1)·sd_after² + (n_elsewhere − 1)·sd_elsewhere²) / (n_after + n_elsewhere − 2))

Units are ranked by ``|d|``: a large positive *d* is a flag raised by the pattern, a large negative one a
flag lowered by it. ``|d|`` around 0.2 is small, 0.8 large (Cohen 1988); a unit that copies the pattern
exactly has an unbounded *d*.

"After a trigger" is the state right after the network read a trigger token (``window=0``), or up to
``window`` tokens later, or anywhere later in the text (``window=None``). A trigger of several tokens
(``"and tom"``) matches that token sequence. The reverse direction of a bidirectional layer reads from
the end, so for it "after" means the trigger's first token and the tokens before it.

>>> import torch
>>> trigger_positions(["it", "was", "not", "good", "not", "bad"], [("not",)], window=0)
[False, False, True, False, True, False]
>>> trigger_positions(["it", "was", "not", "good"], [("not",)], window=None, reverse=True)
[True, True, True, False]
>>> standardized_mean_difference(torch.tensor([[2.0], [4.0]]), torch.tensor([[0.0], [1.0], [2.0]]))
tensor([1.7321], dtype=torch.float64)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from .record import MAX_TOKENS, _task_of, _unpack, record_trace

__all__ = ["UnitScore", "UnitSearch", "find_units", "standardized_mean_difference", "trigger_positions",
           "pattern_entries", "parse_pattern", "read_texts"]  # fmt: skip

STATISTIC = "standardised mean difference (Cohen's d, pooled standard deviation)"
BATCH_SIZE = 64
MAX_TEXTS = 2000


@dataclass
class UnitScore:
    """One unit's score for a pattern."""

    layer: int  # recurrent layer, 0 = closest to the embeddings
    direction: int  # 0 forward, 1 reverse
    name: str  # the state (or gate) scored: "h", "c", ...
    unit: int  # index within the layer and direction, 0..H-1
    score: float  # standardised mean difference: (mean_after - mean_elsewhere) / pooled sd
    mean_after: float  # mean value at the positions after a trigger
    mean_elsewhere: float  # mean value at every other position
    std_after: float  # standard deviation after a trigger
    std_elsewhere: float  # standard deviation elsewhere
    n_after: int  # positions after a trigger
    n_elsewhere: int  # other positions


@dataclass
class UnitSearch:
    """What :func:`find_units` found: the top units and the counts behind their scores."""

    pattern: list[str]  # the trigger entries, as given
    window: int | None  # 0: at the trigger; N: up to N tokens later; None: anywhere later
    texts: int  # texts read
    tokens: int  # tokens read
    triggers: int  # trigger matches found
    top: list[UnitScore] = field(default_factory=list)  # best first, by |score|
    statistic: str = STATISTIC

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (``top`` as a list of dicts)."""
        return asdict(self)

    def units(self) -> list[tuple[int, int, str, int]]:
        """``(layer, direction, name, unit)`` of each top unit, best first."""
        return [(u.layer, u.direction, u.name, u.unit) for u in self.top]


def pattern_entries(pattern: str | Sequence[str]) -> list[str]:
    """The trigger entries of a pattern, stripped: ``"not, never"`` → ``["not", "never"]``.

    Raises:
        ValueError: no entry.
    """
    entries = pattern.split(",") if isinstance(pattern, str) else list(pattern)
    entries = [e.strip() for e in entries if e.strip()]
    if not entries:
        raise ValueError(f"the pattern must name at least one trigger token, got {pattern!r}")
    return entries


def parse_pattern(
    pattern: str | Sequence[str], tokenize: Callable[[str], list[str]]
) -> list[tuple[str, ...]]:
    """Trigger token sequences from comma-separated entries, each tokenized the model's way.

    >>> parse_pattern("Not, never ,and Tom", lambda s: s.lower().split())
    [('not',), ('never',), ('and', 'tom')]
    >>> parse_pattern(["not"], list)
    [('n', 'o', 't')]

    Raises:
        ValueError: no entry, or an entry with no tokens.
    """
    triggers = []
    for entry in pattern_entries(pattern):
        tokens = tuple(tokenize(entry))
        if not tokens:
            raise ValueError(f"the pattern entry {entry!r} has no tokens once tokenized")
        triggers.append(tokens)
    return triggers


def trigger_positions(
    tokens: Sequence[str], triggers: Sequence[tuple[str, ...]], window: int | None = 0, reverse: bool = False
) -> list[bool]:
    """Which positions count as "after a trigger" (see the module docstring).

    Args:
        tokens: one text's tokens.
        triggers: token sequences, e.g. ``[("not",), ("and", "tom")]``.
        window: 0: the position where a trigger ends; N: up to N tokens later; None: to the end of the text.
        reverse: for a reverse direction: the trigger's first token, and earlier positions.
    """
    length = len(tokens)
    after = [False] * length
    reach = length if window is None else window
    for start in range(length):
        for trigger in triggers:
            if tuple(tokens[start : start + len(trigger)]) != trigger:
                continue
            if reverse:
                for t in range(max(0, start - reach), start + 1):
                    after[t] = True
            else:
                end = start + len(trigger) - 1
                for t in range(end, min(length, end + reach + 1)):
                    after[t] = True
    return after


def _count_matches(tokens: Sequence[str], triggers: Sequence[tuple[str, ...]]) -> int:
    return sum(
        1 for start in range(len(tokens)) for trigger in triggers
        if tuple(tokens[start : start + len(trigger)]) == trigger
    )  # fmt: skip


def standardized_mean_difference(after: Tensor, elsewhere: Tensor) -> Tensor:
    """Cohen's *d* per column: ``(mean_after − mean_elsewhere) / s_pooled`` (0 where nothing varies).

    Args:
        after: ``[n_after, U]`` values after a trigger.
        elsewhere: ``[n_elsewhere, U]`` values elsewhere.

    Returns:
        ``[U]`` float64.
    """
    stats = _Moments(after.shape[-1])
    stats.add(after, torch.ones(after.shape[0], dtype=torch.bool))
    stats.add(elsewhere, torch.zeros(elsewhere.shape[0], dtype=torch.bool))
    return stats.scores()[0]


class _Moments:
    """Running counts, sums and sums of squares of the two groups (float64), for ``U`` units."""

    def __init__(self, units: int):
        self.n = torch.zeros(2, dtype=torch.float64)  # [after, elsewhere]
        self.sum = torch.zeros(2, units, dtype=torch.float64)
        self.sum_sq = torch.zeros(2, units, dtype=torch.float64)

    def add(self, values: Tensor, after: Tensor) -> None:
        """``values`` ``[n, U]`` (real positions only) and ``after`` ``[n]`` bool."""
        values = values.double()
        for group, rows in ((0, after), (1, ~after)):
            chosen = values[rows]
            self.n[group] += chosen.shape[0]
            self.sum[group] += chosen.sum(dim=0)
            self.sum_sq[group] += (chosen * chosen).sum(dim=0)

    def scores(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(d [U], means [2, U], sds [2, U])``."""
        n = self.n[:, None]
        mean = self.sum / n.clamp_min(1)
        var = ((self.sum_sq - n * mean * mean) / (n - 1).clamp_min(1)).clamp_min(0)  # sample variance
        pooled = torch.sqrt(((n[0] - 1) * var[0] + (n[1] - 1) * var[1]) / (n.sum() - 2).clamp_min(1))
        diff = mean[0] - mean[1]
        tiny = 1e-12 * (1 + mean.abs().amax(dim=0))
        d = torch.where(pooled > tiny, diff / pooled.clamp_min(1e-300), torch.where(diff.abs() > tiny,
                        diff.sign() * math.inf, torch.zeros_like(diff)))  # fmt: skip
        return d, mean, var.sqrt()


def find_units(
    target,
    texts: Sequence[str],
    pattern: str | Sequence[str],
    *,
    encoder=None,
    names: Sequence[str] | None = None,
    window: int | None = 0,
    top_k: int = 10,
    batch_size: int = BATCH_SIZE,
    max_texts: int | None = MAX_TEXTS,
    max_tokens: int = MAX_TOKENS,
) -> UnitSearch:
    """Rank the units whose value differs most after the pattern's trigger tokens than elsewhere.

    Args:
        target: a loaded run (``rnnkit.load``), or a classifier / language model with ``encoder``.
        texts: the texts to read.
        pattern: trigger entries, comma-separated or a list (``"not,never,no"``); each is tokenized the
            model's way, and an entry of several tokens matches that sequence.
        encoder: the :class:`~rnnkit.data.TextEncoder` (taken from a loaded run).
        names: the states or gates to score (default ``("h", "c")`` for LSTM, ``("h",)`` otherwise).
        window: 0: the state right after a trigger; N: up to N tokens later; None: anywhere later.
        top_k: how many units to return.
        batch_size: texts recorded together.
        max_texts: read at most this many texts (None: all).
        max_tokens: cut each text to this many tokens.

    Returns:
        A :class:`UnitSearch` with the ``top_k`` units by ``|score|``.

    Raises:
        ValueError: an empty pattern, no texts, a window below 0, an unknown state name, or a pattern
            that never occurs (or occurs everywhere) in the texts.
    """
    model, encoder, _ = _unpack(target, encoder, None)
    _task_of(model)  # a model this module can read, or TypeError
    if window is not None and (not isinstance(window, int) or window < 0):
        raise ValueError(f"window must be an integer ≥ 0 or None, got {window!r}")
    triggers = parse_pattern(pattern, encoder.tokenize)
    texts = list(texts)[:max_texts] if max_texts is not None else list(texts)
    token_lists = [tokens[:max_tokens] for tokens in encoder.tokenizer.tokenize_many(texts)]
    token_lists = [tokens for tokens in token_lists if tokens]
    if not token_lists:
        raise ValueError("find_units needs at least one text with tokens, got none")
    recorded = _recorded_names(model.encoder)
    names = tuple(names) if names is not None else tuple(n for n in ("h", "c") if n in recorded)
    unknown = [n for n in names if n not in recorded]
    if unknown:
        raise ValueError(f"names must be among {', '.join(recorded)}, got {', '.join(unknown)}")

    directions = 2 if model.encoder.bidirectional else 1
    moments = {
        (k, d, n): _Moments(model.encoder.hidden_size)
        for k in range(model.encoder.num_layers) for d in range(directions) for n in names
    }  # fmt: skip
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(token_lists), batch_size):
            chunk = token_lists[start : start + batch_size]
            _add_batch(model, encoder, chunk, triggers, window, moments, device)
    finally:
        model.train(was_training)

    search = UnitSearch(
        pattern=pattern_entries(pattern),
        window=window,
        texts=len(token_lists),
        tokens=sum(len(t) for t in token_lists),
        triggers=sum(_count_matches(t, triggers) for t in token_lists),
    )
    _check_groups(search, moments)
    search.top = _top_units(moments, top_k)
    return search


def _recorded_names(encoder) -> tuple[str, ...]:
    return tuple(encoder.recorded_names)


def _add_batch(model, encoder, token_lists, triggers, window, moments, device) -> None:
    lengths = torch.tensor([len(t) for t in token_lists])  # (n,)
    width = int(lengths.max())
    pad = encoder.vocab.pad_id
    ids = torch.full((len(token_lists), width), pad, dtype=torch.int64)  # (n, width)
    for row, tokens in enumerate(token_lists):
        ids[row, : len(tokens)] = torch.tensor(encoder.vocab.lookup(tokens))
    _, trace = record_trace(model.embedding, model.encoder, ids.to(device), lengths)
    real = torch.arange(width)[None, :] < lengths[:, None]  # (n, width)
    for reverse in (False, True)[: trace.num_directions]:
        after = torch.zeros(len(token_lists), width, dtype=torch.bool)
        for row, tokens in enumerate(token_lists):
            after[row, : len(tokens)] = torch.tensor(trigger_positions(tokens, triggers, window, reverse))
        for (k, d, name), stats in moments.items():
            if d == int(reverse):
                values = trace.get(k, d, name)[real]  # (tokens, H)
                stats.add(values, after[real])


def _check_groups(search: UnitSearch, moments: dict) -> None:
    stats = next(iter(moments.values()))
    n_after, n_elsewhere = int(stats.n[0]), int(stats.n[1])
    if search.triggers == 0:
        raise ValueError(
            f"the pattern {', '.join(search.pattern)} never occurs in the {search.texts} texts "
            f"({search.tokens} tokens); check the spelling against the model's tokenizer"
        )
    if n_after < 2 or n_elsewhere < 2:
        raise ValueError(
            f"need at least 2 positions after a trigger and 2 elsewhere to compare, "
            f"got {n_after} and {n_elsewhere}"
        )


def _top_units(moments: dict, top_k: int) -> list[UnitScore]:
    candidates = []
    for (k, d, name), stats in moments.items():
        d_values, means, sds = stats.scores()
        for unit in range(d_values.shape[0]):
            candidates.append((abs(float(d_values[unit])), k, d, name, unit, stats, d_values, means, sds))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2], c[3], c[4]))
    top = []
    for _, k, d, name, unit, stats, d_values, means, sds in candidates[:top_k]:
        top.append(UnitScore(
            layer=k, direction=d, name=name, unit=unit, score=_finite(float(d_values[unit])),
            mean_after=float(means[0, unit]), mean_elsewhere=float(means[1, unit]),
            std_after=float(sds[0, unit]), std_elsewhere=float(sds[1, unit]),
            n_after=int(stats.n[0]), n_elsewhere=int(stats.n[1]),
        ))  # fmt: skip
    return top


def _finite(x: float) -> float:
    """JSON has no infinity: an unbounded score is written as ±1e308."""
    return math.copysign(1e308, x) if math.isinf(x) else x


def read_texts(spec: str | os.PathLike, target) -> list[str]:
    """Texts for :func:`find_units` from a data SPEC, read the way the run reads its data.

    A classifier's SPEC is read with :func:`rnnkit.data.read_examples` (the run's text columns, labels
    ignored); a language model's is a corpus (:func:`rnnkit.data.read_corpus`) cut into paragraphs at
    blank lines, or into lines when it has none.

    Raises:
        DataError: unreadable data.
    """
    from ..data import read_corpus, read_examples

    model = target.model if hasattr(target, "model") else target
    if _task_of(model) == "lm":
        corpus = read_corpus(spec)
        parts = corpus.split("\n\n") if "\n\n" in corpus else corpus.splitlines()
        return [p for p in parts if p.strip()]
    config = getattr(target, "config", None)
    cols = config.data.text_col if config is not None else "text"
    text_cols = tuple(c.strip() for c in cols.split(",") if c.strip())
    return [e.text for e in read_examples(spec, text_cols=text_cols, label_col=None)]
