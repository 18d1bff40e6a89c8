"""Record what a trained network does with one text: every token's states and gates, and how its output moves.

:func:`inspect_text` runs a model over a text through the reference path of :mod:`rnnkit.nn` with
``record=True`` (the cell equations step by step) and returns an :class:`Inspection`:

- for every token, layer and direction: the hidden state ``h``, the cell state ``c`` (LSTM) and every gate
  (LSTM ``i, f, g, o``; GRU ``r, z, n``), as recorded by :class:`rnnkit.nn.Trace`;
- for a classifier: the class probabilities after each prefix of the text (exact: the classifier is run on
  every prefix, whatever its pooling), and each token's contribution to the final decision by **integrated
  gradients** on the embeddings (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks",
  ICML, https://arxiv.org/abs/1703.01365);
- for a language model: the probability the model gave each token when it had to predict it.

The prefix probabilities read a prefix the way ``predict`` reads a whole text: alone, with no padding. A
lesson-style model trained with ``use_lengths=False`` saw padding in training; on a text alone there is none.

Integrated gradients, as computed here: the baseline is the all-zero embedding (the padding token's row),
the path integral is a midpoint Riemann sum over ``steps`` points, and the output explained is the log
probability of the predicted class (or of ``target``). The contributions then add up to
``log p(x) − log p(baseline)`` up to the error of the sum (*completeness*); that error is reported as
``attribution["completeness_gap"]``.

Shapes: ``L`` tokens, ``H`` hidden units, ``C`` classes.

>>> import torch
>>> from rnnkit.data import TextEncoder
>>> from rnnkit.models.classifier import TextClassifier
>>> _ = torch.manual_seed(0)
>>> encoder = TextEncoder.fit(["the film was not good", "a good film"])
>>> model = TextClassifier(len(encoder), 2, cell="lstm", embed_dim=4, hidden_dim=3)
>>> result = inspect_text(model, "not a good film", encoder=encoder, labels=["neg", "pos"])
>>> result.tokens, result.states(0, 0, "f").shape, result.prefix_probs.shape
(['not', 'a', 'good', 'film'], torch.Size([4, 3]), torch.Size([4, 2]))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import Trace

logger = logging.getLogger(__name__)

__all__ = [
    "Inspection", "inspect_text", "record_trace", "integrated_gradients", "prefix_probabilities",
    "next_token_probabilities", "gate_summary",
]  # fmt: skip

MAX_TOKENS = 1000  # longer texts are cut: the page shows every token and prefixes cost O(L²)
PREFIX_BATCH = 64  # prefixes run together in one batch (models told the lengths)
IG_BATCH = 32  # integrated-gradients path points per batch
KEEP_GATES = {"lstm": "f", "gru": "z"}  # the gate whose value near 1 keeps the old state
KEEP_THRESHOLDS = (0.9, 0.1)


@dataclass
class Inspection:
    """One text as a trained network saw it.

    Attributes:
        text: the text.
        tokens: its tokens as the tokenizer wrote them (``L``; rare words spelled out, not ``<unk>``).
        ids: the ids the model read (``L``).
        unknown: per token, whether it was outside the vocabulary (read as ``<unk>``).
        task: ``"classify"`` or ``"lm"``.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        trace: the :class:`rnnkit.nn.Trace` of the encoder, batch of one, on the CPU, without gradients;
            :meth:`states` reads it as ``[L, H]``.
        labels: class names in index order (classifier).
        probs: ``[C]`` class probabilities for the whole text (classifier).
        prefix_probs: ``[L, C]``, row ``t`` the class probabilities after reading tokens ``0..t``.
        contributions: ``[L]``, each token's integrated-gradients attribution to ``log p(target)``.
        attribution: how ``contributions`` were computed (method, citation, target, steps, baseline, gap).
        next_token_probs: ``[L]`` (language model), the probability given to token ``t`` when predicting it
            from the tokens before it (``NaN`` for a first token the model was not asked to predict).
    """

    text: str
    tokens: list[str]
    ids: list[int]
    unknown: list[bool]
    task: str
    cell: str
    trace: Trace
    labels: list[str] | None = None
    probs: Tensor | None = None
    prefix_probs: Tensor | None = None
    contributions: Tensor | None = None
    attribution: dict[str, Any] = field(default_factory=dict)
    next_token_probs: Tensor | None = None

    def __repr__(self) -> str:
        shape = f"layers={self.num_layers}, directions={self.num_directions}, hidden={self.hidden_size}"
        return f"Inspection({self.task}, {self.cell}, tokens={len(self.tokens)}, {shape})"

    @property
    def num_layers(self) -> int:
        return self.trace.num_layers

    @property
    def num_directions(self) -> int:
        return self.trace.num_directions

    @property
    def hidden_size(self) -> int:
        return int(self.trace.get(0, 0, "h").shape[-1])

    @property
    def names(self) -> tuple[str, ...]:
        """What was recorded per layer and direction: ``h``, ``c`` (LSTM), then the gates."""
        return self.trace.names

    def states(self, layer: int, direction: int, name: str) -> Tensor:
        """``[L, H]``: state or gate ``name`` of one layer and direction (0 forward, 1 reverse), per token."""
        return self.trace.get(layer, direction, name)[0]

    @property
    def prediction(self) -> str | None:
        """The most likely class for the whole text (classifier)."""
        if self.probs is None or self.labels is None:
            return None
        return self.labels[int(self.probs.argmax())]

    def gate_summary(self) -> list[dict[str, Any]]:
        """What is kept and what is forgotten, per layer and direction (see :func:`gate_summary`)."""
        return gate_summary(self.trace, self.cell)

    def to_dict(self, *, states: bool = True) -> dict[str, Any]:
        """Everything as plain JSON-able Python (see :mod:`rnnkit.inspect.report` for the layout).

        Args:
            states: include the per-token states and gates (the bulk of the data).
        """
        from .report import inspection_data

        return inspection_data(self, states=states)

    def save_html(self, path, units=None) -> None:
        """Write the self-contained HTML report (see :func:`rnnkit.inspect.report.write_report`)."""
        from .report import write_report

        write_report(self, path, units=units)

    def save_png(self, path, **options) -> list[int]:
        """Write a tokens × units heatmap PNG (:func:`rnnkit.inspect.png.save_heatmap`); the units shown."""
        from .png import save_heatmap

        return save_heatmap(self, path, **options)


# ---------------------------------------------------------------------------------------------------
# the entry point
# ---------------------------------------------------------------------------------------------------
def inspect_text(
    target,
    text: str,
    *,
    encoder=None,
    labels: list[str] | None = None,
    steps: int = 64,
    attribution_target: str | int | None = None,
    max_tokens: int = MAX_TOKENS,
) -> Inspection:
    """Run a model over ``text``, recording every token's states and gates, and explain its output.

    Args:
        target: a loaded run (``rnnkit.load(run_dir)``), or a model (a
            :class:`~rnnkit.models.classifier.TextClassifier` or a language model) with ``encoder`` given.
        text: the text to inspect.
        encoder: the :class:`~rnnkit.data.TextEncoder` (taken from a loaded run when ``target`` is one).
        labels: class names (taken from a loaded run; default ``"0", "1", …`` for a bare classifier).
        steps: integrated-gradients path points (more: a smaller completeness gap, slower).
        attribution_target: the class whose log probability the contributions explain (name or index;
            default the predicted class).
        max_tokens: longer texts are cut to this many tokens (with a warning).

    Returns:
        An :class:`Inspection`.

    Raises:
        ValueError: an empty text (no tokens), a missing encoder, ``steps`` < 1, or an unknown
            ``attribution_target``.
        TypeError: a model this module does not know how to read.
    """
    model, encoder, labels = _unpack(target, encoder, labels)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    tokens = encoder.tokenize(text)
    if not tokens:
        raise ValueError(f"the text has no tokens to inspect, got {text!r}")
    if len(tokens) > max_tokens:
        logger.warning("the text has %d tokens; inspecting the first %d", len(tokens), max_tokens)
        tokens = tokens[:max_tokens]
    ids = encoder.vocab.lookup(tokens)
    unk = encoder.vocab.unk_id
    unknown = [i == unk and tok != encoder.vocab.itos[unk] for i, tok in zip(ids, tokens, strict=True)]
    kind = _task_of(model)
    was_training = model.training
    model.eval()
    try:
        if kind == "classify":
            return _inspect_classifier(model, text, tokens, ids, unknown, labels, steps, attribution_target)
        return _inspect_language_model(model, encoder, text, tokens, ids, unknown)
    finally:
        model.train(was_training)


def _unpack(target, encoder, labels):
    """``(model, encoder, labels)`` from a loaded run or a bare model."""
    if isinstance(target, nn.Module):
        model = target
    elif isinstance(getattr(target, "model", None), nn.Module):
        model = target.model
        encoder = encoder if encoder is not None else getattr(target, "encoder", None)
        labels = labels if labels is not None else getattr(target, "labels", None)
    else:
        raise TypeError(f"expected a loaded run (rnnkit.load) or a model, got {type(target).__name__}")
    if encoder is None:
        raise ValueError("an encoder (rnnkit.data.TextEncoder) is needed to turn the text into ids")
    return model, encoder, labels


def _task_of(model: nn.Module) -> str:
    from ..models.classifier import TextClassifier

    if isinstance(model, TextClassifier):
        return "classify"
    if _is_language_model(model):
        return "lm"
    raise TypeError(f"expected a TextClassifier or a language model, got {type(model).__name__}")


def _is_language_model(model: nn.Module) -> bool:
    try:
        from ..models.language_model import LanguageModel
    except ImportError:
        return False
    return isinstance(model, LanguageModel)


def _cell_of(encoder: nn.Module) -> str:
    return {"LSTM": "lstm", "GRU": "gru"}.get(encoder.mode, "rnn")


def record_trace(embedding: nn.Module, encoder: nn.Module, ids: Tensor, lengths: Tensor | None = None):
    """Embed ``ids`` and run the encoder through the reference path with ``record=True``.

    Args:
        embedding: the model's embedding table.
        encoder: an :mod:`rnnkit.nn` layer.
        ids: ``[N, L]`` token ids on the model's device.
        lengths: ``[N]`` real lengths (None: every row is ``L`` long).

    Returns:
        ``(output [N, L, D·H], trace)``, detached; the trace is on the CPU, in float32.
    """
    with torch.no_grad():
        x = embedding(ids)  # (N, L, E)
        output, _, trace = encoder(x, lengths=lengths, record=True)
    layers = [[{k: v.detach().float().cpu() for k, v in d.items()} for d in layer] for layer in trace.layers]
    return output, Trace(layers)


# ---------------------------------------------------------------------------------------------------
# classifier
# ---------------------------------------------------------------------------------------------------
def _inspect_classifier(model, text, tokens, ids, unknown, labels, steps, attribution_target) -> Inspection:
    device = next(model.parameters()).device
    ids_t = torch.tensor([ids], device=device)  # (1, L)
    _, trace = record_trace(model.embedding, model.encoder, ids_t)
    with torch.no_grad():
        probs = torch.softmax(model(ids_t).float(), dim=-1)[0].cpu()  # (C,)
    num_classes = probs.shape[0]
    labels = list(labels) if labels is not None else [str(c) for c in range(num_classes)]
    if len(labels) != num_classes:
        raise ValueError(f"labels must name the model's {num_classes} classes, got {len(labels)}")
    target = _class_index(attribution_target, labels, int(probs.argmax()))
    contributions, attribution = integrated_gradients(model, ids_t, target, steps=steps)
    attribution["target"] = labels[target]
    return Inspection(
        text=text, tokens=tokens, ids=ids, unknown=unknown, task="classify", cell=_cell_of(model.encoder),
        trace=trace, labels=labels, probs=probs, prefix_probs=prefix_probabilities(model, ids_t[0]),
        contributions=contributions, attribution=attribution,
    )  # fmt: skip


def _class_index(target: str | int | None, labels: list[str], default: int) -> int:
    if target is None:
        return default
    if isinstance(target, str) and target in labels:
        return labels.index(target)
    if isinstance(target, int) and 0 <= target < len(labels):
        return target
    raise ValueError(f"attribution_target must be one of {', '.join(labels)} (or its index), got {target!r}")


def prefix_probabilities(model: nn.Module, ids: Tensor) -> Tensor:
    """Class probabilities after each prefix: row ``t`` is the classifier run on tokens ``0..t`` alone.

    Exact for every pooling and for both directions: each prefix is a text of its own (a bidirectional
    model's reverse direction starts at the prefix's last token). Models told the lengths
    (``use_lengths=True``) run the prefixes in padded batches; the others, which would read the padding,
    run one prefix at a time.

    Args:
        model: a :class:`~rnnkit.models.classifier.TextClassifier` (put in eval mode by the caller).
        ids: ``[L]`` token ids.

    Returns:
        ``[L, C]`` float32 on the CPU.

    >>> import torch
    >>> from rnnkit.models.classifier import TextClassifier
    >>> model = TextClassifier(10, 3, hidden_dim=4).eval()
    >>> prefix_probabilities(model, torch.tensor([4, 5, 6])).shape
    torch.Size([3, 3])
    """
    steps = ids.shape[0]
    rows = []
    with torch.no_grad():
        if getattr(model, "use_lengths", True):
            for start in range(0, steps, PREFIX_BATCH):
                lengths = torch.arange(start + 1, min(start + PREFIX_BATCH, steps) + 1)  # (n,)
                width = int(lengths[-1])
                batch = ids[:width].repeat(len(lengths), 1)  # (n, width)
                batch = batch.masked_fill(~_real(lengths, width).to(ids.device), _pad_id(model))
                rows.append(torch.softmax(model(batch, lengths).float(), dim=-1).cpu())
        else:
            for t in range(1, steps + 1):
                rows.append(torch.softmax(model(ids[None, :t]).float(), dim=-1).cpu())
    return torch.cat(rows)


def _real(lengths: Tensor, width: int) -> Tensor:
    return torch.arange(width)[None, :] < lengths[:, None]  # (n, width)


def _pad_id(model: nn.Module) -> int:
    pad = getattr(model.embedding, "padding_idx", None)
    return 0 if pad is None else int(pad)


def integrated_gradients(
    model: nn.Module, ids: Tensor, target: int, *, steps: int = 64
) -> tuple[Tensor, dict[str, Any]]:
    """Each token's contribution to ``log p(target)`` by integrated gradients on the embeddings.

    Sundararajan, Taly & Yan (2017), *Axiomatic Attribution for Deep Networks*: with ``x`` the text's
    embeddings and ``x'`` a baseline, feature ``j`` gets ``(x_j − x'_j) · ∫₀¹ ∂F(x' + α(x − x'))/∂x_j dα``;
    a token's contribution is the sum over its embedding features. Here ``x' = 0`` (the padding row),
    ``F = log softmax(model)[target]`` and the integral is a midpoint Riemann sum over ``steps`` points.
    The contributions add up to ``F(x) − F(x')`` up to the sum's error (completeness).

    Args:
        model: a classifier ``model(ids) -> logits [N, C]`` whose ``model.embedding`` makes its inputs.
        ids: ``[1, L]`` token ids on the model's device.
        target: the class index.
        steps: path points.

    Returns:
        ``(contributions [L] float32 CPU, info)`` with ``info`` naming the method and its citation, the
        baseline, ``steps``, ``f_input``, ``f_baseline`` and ``completeness_gap`` (Σ contributions −
        (f_input − f_baseline)).
    """
    with torch.no_grad():
        embedded = model.embedding(ids).float()  # (1, L, E)
    alphas = (torch.arange(steps, dtype=torch.float32, device=embedded.device) + 0.5) / steps  # (S,)
    total = torch.zeros_like(embedded[0])  # (L, E) sum of gradients along the path
    # cuDNN runs a recurrent backward only in training mode; the native kernels run it in eval mode.
    with torch.backends.cudnn.flags(enabled=False):
        for chunk in alphas.split(IG_BATCH):
            path = (chunk[:, None, None] * embedded).requires_grad_(True)  # (s, L, E)
            log_p = _log_probs_from_embeddings(model, ids.expand(len(chunk), -1), path)[:, target]
            (grad,) = torch.autograd.grad(log_p.sum(), path)
            total += grad.sum(dim=0)
        with torch.no_grad():
            f_input = float(_log_probs_from_embeddings(model, ids, embedded)[0, target])
            f_baseline = float(_log_probs_from_embeddings(model, ids, torch.zeros_like(embedded))[0, target])
    contributions = (embedded[0] * total / steps).sum(dim=-1).detach().cpu()  # (L,)
    info = {
        "method": "integrated gradients",
        "citation": "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks, ICML",
        "explains": "log probability of the target class",
        "baseline": "zero embedding (the padding row)",
        "steps": steps,
        "f_input": f_input,
        "f_baseline": f_baseline,
        "completeness_gap": float(contributions.sum()) - (f_input - f_baseline),
    }
    return contributions, info


def _log_probs_from_embeddings(model: nn.Module, ids: Tensor, embedded: Tensor) -> Tensor:
    """``log softmax(model(ids))`` with the embedding layer's output replaced by ``embedded``."""
    dtype = model.embedding.weight.dtype

    def replace(module, inputs, output):
        return embedded.to(dtype)

    handle = model.embedding.register_forward_hook(replace)
    try:
        return F.log_softmax(model(ids).float(), dim=-1)
    finally:
        handle.remove()


# ---------------------------------------------------------------------------------------------------
# language model
# ---------------------------------------------------------------------------------------------------
def _inspect_language_model(model, encoder, text, tokens, ids, unknown) -> Inspection:
    device = next(model.parameters()).device
    ids_t = torch.tensor([ids], device=device)  # (1, L)
    _, trace = record_trace(model.embedding, model.encoder, ids_t)
    return Inspection(
        text=text, tokens=tokens, ids=ids, unknown=unknown, task="lm", cell=_cell_of(model.encoder),
        trace=trace, next_token_probs=next_token_probabilities(model, ids_t[0]),
    )  # fmt: skip


def next_token_probabilities(model: nn.Module, ids: Tensor) -> Tensor:
    """The probability a language model gave each token when predicting it from the tokens before it.

    The model starts from the zero state, as it does at the start of a corpus; it is not asked to
    predict the first token, whose entry is ``NaN``. A token outside the vocabulary is scored as
    ``<unk>``, the id the model read.

    Args:
        model: a language model, ``model(ids [N, L]) -> (logits [N, L, V], state)``, in eval mode.
        ids: ``[L]`` token ids.

    Returns:
        ``[L]`` float32 on the CPU: ``NaN, p(ids[1] | ids[:1]), …, p(ids[L-1] | ids[:L-1])``.

    >>> import torch
    >>> from rnnkit.models.language_model import LanguageModel
    >>> p = next_token_probabilities(LanguageModel(12, hidden_dim=8).eval(), torch.tensor([4, 5, 6]))
    >>> p.shape, bool(p[0].isnan()), bool(((p[1:] > 0) & (p[1:] < 1)).all())
    (torch.Size([3]), True, True)
    """
    with torch.no_grad():
        logits, _ = model(ids[None])  # (1, L, V)
        probs = torch.softmax(logits[0, :-1].float(), dim=-1)  # (L-1, V): row t predicts token t+1
        actual = probs.gather(1, ids[1:, None])[:, 0]  # (L-1,)
    return torch.cat([torch.tensor([float("nan")]), actual.cpu()])


# ---------------------------------------------------------------------------------------------------
# gates
# ---------------------------------------------------------------------------------------------------
def gate_summary(trace: Trace, cell: str, length: int | None = None) -> list[dict[str, Any]]:
    """The share of "keep" gate values above 0.9 (kept) and below 0.1 (forgotten), per layer and direction.

    The keep gate is the LSTM's forget gate ``f`` (``c_t = f ⊙ c_{t-1} + …``) and the GRU's update gate
    ``z`` (``h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}``): near 1 the old state is kept, near 0 it is replaced. A
    plain RNN has no gates (empty list).

    Args:
        trace: a recorded trace, batch of one.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        length: how many steps are real (None: all).

    Returns:
        One dict per layer and direction: ``layer, direction, gate, above_0_9, below_0_1, mean, n``
        (``n`` = tokens × units counted).

    >>> import torch
    >>> from rnnkit.nn import Trace
    >>> f = torch.tensor([[[0.95, 0.5], [0.05, 0.99]]])       # 1 text, 2 tokens, 2 units
    >>> gate_summary(Trace([[{"h": f, "f": f}]]), "lstm")[0]["above_0_9"]
    0.5
    """
    gate = KEEP_GATES.get(cell)
    if gate is None:
        return []
    high, low = KEEP_THRESHOLDS
    summary = []
    for k, layer in enumerate(trace.layers):
        for d, recorded in enumerate(layer):
            values = recorded[gate][0] if length is None else recorded[gate][0, :length]  # (L, H)
            summary.append({
                "layer": k, "direction": d, "gate": gate,
                "above_0_9": float((values > high).float().mean()),
                "below_0_1": float((values < low).float().mean()),
                "mean": float(values.mean()), "n": values.numel(),
            })  # fmt: skip
    return summary
