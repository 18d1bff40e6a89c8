"""Text generation: sample a language model one token at a time, stepping its recurrent state.

The prime is read once, all at once; after that every new token costs one recurrent step from the state
the previous token left behind — the prefix is never run again, so the thousandth character costs what
the first did. Each step turns the model's logits into a choice:

- ``temperature`` divides the logits (below 1: safer, above 1: wilder); ``0`` means greedy — always the
  most likely token, no randomness;
- ``top_k`` keeps only the ``k`` most likely tokens;
- ``top_p`` keeps the smallest set of most likely tokens whose probabilities add up to ``p`` (nucleus
  sampling);
- ``seed`` fixes the random draws, so the same seed gives the same text.

The special tokens ``<pad>``, ``<unk>``, ``<bos>`` and ``<eos>`` are never sampled: the text holds only
real tokens.
A prime with tokens outside the vocabulary is read with ``<unk>`` in their place, and one warning says
which. An empty prime starts as if after a line break (after a full stop for word models, which have
no line breaks); that context is not part of the text.

:func:`stream` yields the text as it is produced (the prime first, then one piece per token);
:func:`generate` returns it whole: ``"".join(stream(...)) == generate(...)`` for the same arguments.

>>> import torch
>>> from rnnkit.data import TextEncoder
>>> from rnnkit.models.language_model import LanguageModel
>>> encoder = TextEncoder.fit(["abcd"], tokenizer="char", lm=True)
>>> _ = torch.manual_seed(0)
>>> model = LanguageModel(len(encoder), embed_dim=8, hidden_dim=8)
>>> text = generate(model, encoder, "ab", length=5, seed=1)
>>> len(text), text.startswith("ab")
(7, True)
>>> text == "".join(stream(model, encoder, "ab", length=5, seed=1))
True
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from .errors import ConfigError
from .limits import check_text

logger = logging.getLogger(__name__)


MAX_LENGTH = 1_000_000  # most tokens one generation may ask for
MAX_SEED = 2**64 - 1  # torch.Generator's seeds are 64-bit


def check_options(
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> None:
    """Raise :class:`~rnnkit.errors.ConfigError` naming the first option out of range.

    >>> check_options(0)
    Traceback (most recent call last):
    ...
    rnnkit.errors.ConfigError: --length must be ≥ 1 token, got 0
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ConfigError(f"--length must be ≥ 1 token, got {length!r}")
    if length > MAX_LENGTH:
        raise ConfigError(f"--length must be at most {MAX_LENGTH:,} tokens, got {length:,}")
    if not isinstance(temperature, (int, float)) or not temperature >= 0 or math.isinf(temperature):
        raise ConfigError(f"--temperature must be ≥ 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"--top-k must be ≥ 1, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
        raise ConfigError(f"--top-p must be in (0, 1], got {top_p!r}")
    bad_seed = isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    if seed is not None and bad_seed:
        from .config import short_repr

        raise ConfigError(f"--seed must be an integer in 0..2**64-1, got {short_repr(seed)}")


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Choose the next token from each row of ``logits``.

    Args:
        logits: ``[N, V]`` unnormalised scores (``-inf`` rules a token out).
        temperature: divides the logits; 0 picks the most likely token (greedy).
        top_k: sample among the ``k`` most likely tokens only.
        top_p: sample among the smallest set of most likely tokens with total probability ≥ ``p``.
        generator: the random source (None: torch's global one).

    Returns:
        ``[N]`` int64 token ids.

    >>> logits = torch.tensor([[0.0, 3.0, 1.0]])
    >>> sample_next(logits, temperature=0).tolist(), sample_next(logits, top_k=1).tolist()
    ([1], [1])
    >>> sample_next(logits, top_p=0.5).tolist()         # token 1 alone has probability 0.84
    [1]
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    # The best token at exactly 0 before dividing, and the temperature and top_p kept inside float32's
    # range: any temperature > 0 (1e-300 or 1e308) then leaves a well-defined softmax, never NaN.
    logits = logits.float()
    temperature = min(max(temperature, 1e-30), 1e30)
    logits = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p is not None and top_p < 1.0:
        top_p = max(top_p, 1e-30)  # a smaller p keeps the first token alone, as 1e-30 does
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens
        sorted_logits = sorted_logits.masked_fill(before >= top_p, -math.inf)  # the first token always stays
        logits = torch.full_like(logits, -math.inf).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)  # (N, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _prime_ids(encoder, prime: str) -> list[int]:
    """The prime's ids; tokens outside the vocabulary become ``<unk>`` with one warning."""
    tokens = encoder.tokenize(prime)
    unknown = [t for t in tokens if t not in encoder.vocab]
    if unknown:
        shown = ", ".join(repr(t) for t in dict.fromkeys(unknown))
        logger.warning(
            f"the prime has {len(unknown)} token(s) outside the model's vocabulary ({shown:.200}); "
            f"they are read as <unk>"
        )
    return encoder.vocab.lookup(tokens)


def _start_ids(encoder) -> list[int]:
    """Context for an empty prime: a line break, else a full stop, else the most frequent token."""
    for text in ("\n", "."):
        ids = encoder.encode(text)
        if ids and encoder.vocab.unk_id not in ids:
            return ids[-1:]
    specials = 4 if encoder.vocab.lm else 2
    return [min(specials, len(encoder.vocab) - 1)]


def _banned_ids(encoder) -> list[int]:
    v = encoder.vocab
    return [i for i in (v.pad_id, v.unk_id, v.bos_id, v.eos_id) if i is not None]


def _one_token_kernels(device: torch.device):
    """Where PyTorch's recurrent kernels should run one token at a time.

    On CPU, the oneDNN kernel that PyTorch picks by default sets itself up on every call, which costs
    several times the work of one token (seen here: 5-7× slower per step for a 2×256 LSTM); the native
    kernel it falls back to without oneDNN has no such cost. The switch is process-wide, so it is
    held only around each one-token call. Both kernels compute the same function.
    """
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return contextlib.nullcontext()
    keep = dict(deterministic=None, allow_tf32=None, fp32_precision=None)  # None: leave these settings alone
    return torch.backends.mkldnn.flags(enabled=False, **keep)


def sample_ids(
    model: nn.Module,
    context: list[int],
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    banned: Sequence[int] = (),
) -> Iterator[int]:
    """Yield ``length`` sampled token ids after ``context``, stepping the state one token at a time.

    The context is run once (one call over all its tokens); then each new token is one call of the model
    on that token alone, with the state the previous call returned.

    Args:
        model: a language model, ``model(ids [N, L], state) -> (logits [N, L, V], state)``, in eval mode.
        context: at least one token id to start from.
        length: tokens to sample.
        temperature, top_k, top_p: see :func:`sample_next`.
        seed: seed of the random draws (None: torch's global random state).
        banned: ids never to sample.
    """
    if not context:
        raise ValueError("context must hold at least one token id")
    device = next(model.parameters()).device
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    ids = torch.tensor([context], dtype=torch.long, device=device)  # (1, L)
    banned = list(banned)
    state = None
    for step in range(length):
        kernels = _one_token_kernels(device) if step else contextlib.nullcontext()  # step 0 reads the context
        with torch.inference_mode(), kernels:
            logits, state = model(ids, state)  # (1, L, V)
            logits = logits[:, -1].float()  # (1, V)
            if banned:
                logits[:, banned] = -math.inf
            ids = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
            ids = ids[:, None]  # (1, 1): the next step reads only the new token
        yield int(ids)


class _Detokenizer:
    """Turns ids into text pieces one id at a time, so that joining the pieces gives ``decode(all ids)``.

    It decodes a short window of recent ids and emits what the newest one added (the incremental decoding
    of Hugging Face's text-generation-inference): the cost per token stays constant, spaces between
    words come out right, and a byte-level BPE piece that ends inside a UTF-8 character waits for the rest.
    """

    def __init__(self, encoder, context: list[int]):
        self.decode = encoder.decode
        self.ids = list(context)
        self.read = len(self.ids)  # ids up to here have been emitted
        self.prefix = max(0, self.read - 4)  # the window starts here: a little context for spacing

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        before = self.decode(self.ids[self.prefix : self.read])
        after = self.decode(self.ids[self.prefix :])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""  # nothing visible yet (e.g. half a UTF-8 character)
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before) :]

    def flush(self) -> str:
        """Whatever is still held back at the end (a trailing incomplete character shows as \ufffd)."""
        before = self.decode(self.ids[self.prefix : self.read])
        after = self.decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        return after[len(before) :]


def stream(
    model: nn.Module,
    encoder,
    prime: str = "",
    length: int = 200,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    """Yield the prime, then the generated text piece by piece as each token is sampled.

    Args:
        model: a :class:`~rnnkit.models.language_model.LanguageModel` (put in eval mode while sampling).
        encoder: its :class:`~rnnkit.data.TextEncoder`.
        prime: the text to continue ("" starts fresh).
        length: tokens to generate (characters for a character model, words for a word model).
        temperature, top_k, top_p: see :func:`sample_next`; ``temperature=0`` is greedy.
        seed: makes the sampling reproducible.

    Raises:
        ConfigError: an option out of range (checked before anything is yielded).
    """
    check_options(length, temperature, top_k, top_p, seed)
    check_text(prime, "--prime")
    prime_ids = _prime_ids(encoder, prime) if prime else []
    return _stream(model, encoder, prime, prime_ids, length, temperature, top_k, top_p, seed)


def _stream(model, encoder, prime, prime_ids, length, temperature, top_k, top_p, seed) -> Iterator[str]:
    was_training = model.training
    model.eval()
    try:
        if prime:
            yield prime
        detokenizer = _Detokenizer(encoder, prime_ids)
        context = prime_ids or _start_ids(encoder)
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        for token_id in sample_ids(model, context, length, banned=_banned_ids(encoder), **options):
            piece = detokenizer.push(token_id)
            if piece:
                yield piece
        rest = detokenizer.flush()
        if rest:
            yield rest
    finally:
        model.train(was_training)


def generate(
    model: nn.Module,
    encoder,
    prime: str = "",
    length: int = 200,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> str:
    """The prime followed by ``length`` generated tokens, as one string (see :func:`stream`)."""
    options = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    return "".join(stream(model, encoder, prime, length, **options))


__all__ = ["check_options", "generate", "sample_ids", "sample_next", "stream"]
