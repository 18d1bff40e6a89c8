"""Training a language model: parallel token streams, truncated backpropagation through time, and its metrics.

The corpus is one long sequence of token ids. :class:`StreamBatches` cuts it into ``N`` contiguous
streams, side by side as the rows of an ``[N, T]`` matrix, and walks along them ``bptt`` tokens at a time:
each batch is the next ``[N, bptt]`` chunk of inputs and the same chunk shifted by one as targets.
Row ``i`` of one batch continues row ``i`` of the batch before, so the hidden state at the end of one
chunk is the right start for the next. :class:`LanguageModelTask` passes that state on as the Trainer's
*carry*: gradients flow back through at most ``bptt`` steps (the Trainer detaches the carry after every
optimizer step), while the state itself runs on across the whole epoch.

Metrics: the mean cross-entropy per token (``loss``, in nats), ``perplexity = exp(loss)``, and for
character models ``bpc = loss / ln 2``, bits per character.

>>> ids = torch.arange(10)
>>> batches = StreamBatches(ids, streams=2, bptt=3)    # streams 0..4 and 5..9
>>> [(x.tolist(), y.tolist()) for x, y in batches]
[([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]]), ([[3], [8]], [[4], [9]])]
>>> lm_metrics(math.log(2) * 1.5, char_level=True)["bpc"]
1.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from .loop import Task


class StreamBatches:
    """``[N, bptt]`` input/target chunks walking along ``N`` parallel streams of one token sequence.

    Args:
        ids: the whole token sequence, ``[T_total]`` (a tensor or a list of ints).
        streams: N, the number of parallel streams (the batch size). The last ``T_total mod N`` tokens
            are dropped so that every stream has the same length ``T = T_total // N``.
        bptt: tokens per chunk; the last chunk of an epoch may be shorter.

    Shapes:
        each batch is ``(inputs [N, L], targets [N, L])`` int64 with ``L ≤ bptt`` and
        ``targets[:, t] == inputs[:, t + 1]`` within a chunk.

    Raises:
        ValueError: ``streams`` or ``bptt`` below 1, or fewer than 2 tokens per stream.
    """

    def __init__(self, ids: Tensor | Sequence[int], streams: int, bptt: int):
        ids = torch.as_tensor(ids, dtype=torch.long)
        if ids.dim() != 1:
            raise ValueError(f"ids must be a 1-D token sequence, got shape {list(ids.shape)}")
        if streams < 1 or bptt < 1:
            raise ValueError(f"streams and bptt must be ≥ 1, got {streams} and {bptt}")
        per_stream = len(ids) // streams
        if per_stream < 2:
            raise ValueError(
                f"{len(ids)} tokens cannot make {streams} streams of at least 2 tokens each "
                f"(need ≥ {2 * streams} tokens)"
            )
        self.data = ids[: per_stream * streams].view(streams, per_stream)  # (N, T)
        self.bptt = bptt

    @property
    def streams(self) -> int:
        """N."""
        return self.data.shape[0]

    @property
    def tokens(self) -> int:
        """Target tokens per epoch: ``N · (T - 1)``."""
        return self.data.numel() - self.streams

    def __len__(self) -> int:
        return math.ceil((self.data.shape[1] - 1) / self.bptt)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        last = self.data.shape[1] - 1
        for start in range(0, last, self.bptt):
            end = min(start + self.bptt, last)
            yield self.data[:, start:end], self.data[:, start + 1 : end + 1]  # (N, L) each


def train_batches(ids: Tensor | Sequence[int], batch_size: int, bptt: int, *, path: str | None = None):
    """:class:`StreamBatches` for training: exactly ``batch_size`` streams.

    Raises:
        DataError: the corpus has fewer than ``2 · batch_size`` tokens (naming ``path``).
    """
    n = len(ids)
    if n < 2 * batch_size:
        raise DataError(
            f"{n} tokens are too few to train on {batch_size} parallel streams; "
            f"use a longer text or a smaller --batch-size (at most {max(1, n // 2)})",
            path=path,
        )
    return StreamBatches(ids, batch_size, bptt)


def eval_batches(ids: Tensor | Sequence[int], batch_size: int, bptt: int, *, path: str | None = None):
    """:class:`StreamBatches` for evaluation: up to ``batch_size`` streams, fewer for a short text.

    Every stream starts from the zero state, so a few tokens at the start of each stream are harder to
    predict; with thousands of tokens per stream this costs a negligible share of the loss.

    Raises:
        DataError: the text has fewer than 2 tokens.
    """
    n = len(ids)
    if n < 2:
        raise DataError(f"a language model needs at least 2 tokens to evaluate, got {n}", path=path)
    return StreamBatches(ids, min(batch_size, n // 2), bptt)


def split_corpus(text: str, fraction: float) -> tuple[str, str]:
    """``(train, valid)``: the last ``fraction`` of ``text`` held out, moved back to the start of its line.

    >>> split_corpus("one\\ntwo\\nthree\\nfour\\n", 0.2)
    ('one\\ntwo\\nthree\\n', 'four\\n')

    Raises:
        DataError: either part would be empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    cut = len(text) - max(1, round(fraction * len(text)))
    line_start = text.rfind("\n", 0, cut) + 1
    if line_start > 0:
        cut = line_start
    if cut <= 0 or cut >= len(text):
        raise DataError(
            f"a text of {len(text)} characters is too short to hold out {fraction:g} for validation"
        )
    return text[:cut], text[cut:]


def lm_metrics(loss: float, *, char_level: bool) -> dict[str, float]:
    """``{"loss", "perplexity"}`` and, for character models, ``"bpc"`` from a mean loss in nats per token."""
    metrics = {"loss": loss, "perplexity": math.exp(loss) if loss < 700 else math.inf}
    if char_level:
        metrics["bpc"] = loss / math.log(2)
    return metrics


class LanguageModelTask(Task):
    """Next-token cross-entropy on :class:`StreamBatches`, carrying the hidden state from chunk to chunk.

    Args:
        device: where the model lives (batches are moved there).
        char_level: the tokens are characters, so evaluation also reports bits per character.
        ar, tar: the AWD-LSTM's activation penalties added to the training loss (Merity et al. 2018):
            ``ar · mean(m ⊙ h)²`` on the last layer's dropped output and ``tar · mean(h_t − h_{t−1})²`` on its
            raw output (:func:`rnnkit.nn.ar_loss`, :func:`rnnkit.nn.tar_loss`); the training loss includes
            them, the validation loss and perplexity are the cross-entropy alone.
    """

    monitor = "loss"
    higher_is_better = False

    def __init__(
        self, device: torch.device | str = "cpu", *, char_level: bool = False, ar: float = 0.0,
        tar: float = 0.0,
    ):  # fmt: skip
        self.device = torch.device(device)
        self.char_level = char_level
        self.ar, self.tar = ar, tar

    def loss(self, model: nn.Module, batch: Any, carry: Any) -> tuple[Tensor, Any, dict[str, float]]:
        """Mean cross-entropy over the chunk (plus the activation penalties, if any); the new carry is the
        state after its last token."""
        inputs, targets = (t.to(self.device, non_blocking=True) for t in batch)
        stats: dict[str, float] = {"examples": inputs.shape[0], "tokens": inputs.numel()}
        if not (self.ar or self.tar):
            logits, state = model(inputs, carry)  # (N, L, V)
            return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten()), state, stats
        from ..nn import ar_loss, tar_loss

        logits, state, (raw, dropped) = model(inputs, carry, hidden=True)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return loss + ar_loss(dropped, self.ar) + tar_loss(raw, self.tar), state, stats

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """:func:`lm_metrics` over every target token, the state carried through all the chunks."""
        total, count, state = 0.0, 0, None
        for batch in batches:
            inputs, targets = (t.to(self.device, non_blocking=True) for t in batch)
            logits, state = model(inputs, state)
            total += float(F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="sum"))
            count += targets.numel()
        if count == 0:
            raise ValueError("evaluation got no batches")
        return lm_metrics(total / count, char_level=self.char_level)


__all__ = [
    "LanguageModelTask",
    "StreamBatches",
    "eval_batches",
    "lm_metrics",
    "split_corpus",
    "train_batches",
]
