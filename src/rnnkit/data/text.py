"""Text → ids and labels → ids: :class:`Vocabulary`, :class:`TextEncoder`, :class:`LabelEncoder`.

A :class:`TextEncoder` is a tokenizer (:mod:`rnnkit.data.tokenizers`) plus a :class:`Vocabulary`
built from the training split only; its ``to_dict()`` is the content of a run folder's
``vocab.json``. A :class:`LabelEncoder` maps class names to indices; its ``names`` are
``labels.json``.

>>> enc = TextEncoder.fit(["the cat sat", "the dog sat"])
>>> enc.vocab.itos
['<pad>', '<unk>', 'sat', 'the', 'cat', 'dog']
>>> enc.encode("The bird sat.")
[3, 1, 2, 1]
>>> enc.decode([3, 4, 2])
'the cat sat'
>>> labels = LabelEncoder().fit(["sports", "world", "sports"])
>>> labels.names, labels.encode("world")
(['sports', 'world'], 1)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import DataError, RunFolderError
from .tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
CLASSIFY_SPECIALS = (PAD, UNK)
LM_SPECIALS = (PAD, UNK, BOS, EOS)
VOCAB_FORMAT = 1  # version of vocab.json's layout; bump it when the layout changes


class Vocabulary:
    """Token ↔ id, with the special tokens first: ``<pad>`` = 0, ``<unk>`` = 1 (then ``<bos>`` = 2,
    ``<eos>`` = 3 for language models).

    Args:
        itos: every token in id order, the specials first.
        lm: whether the vocabulary has ``<bos>`` and ``<eos>``.

    Raises:
        ValueError: ``itos`` does not start with the specials, or repeats a token.

    >>> v = Vocabulary.build([["a", "b", "a"], ["c", "a"]], lm=True)
    >>> v.itos, v.bos_id, v["a"], v["zebra"]
    (['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'b', 'c'], 2, 4, 1)
    """

    def __init__(self, itos: Sequence[str], *, lm: bool = False):
        specials = LM_SPECIALS if lm else CLASSIFY_SPECIALS
        if tuple(itos[: len(specials)]) != specials:
            raise ValueError(
                f"a vocabulary must start with {list(specials)}, got {list(itos[: len(specials)])}"
            )
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            repeated = [t for t, n in Counter(self.itos).items() if n > 1]
            raise ValueError(f"a vocabulary lists each token once; repeated: {repeated[:5]}")
        self.lm = lm
        self.pad_id = 0
        self.unk_id = 1
        self.bos_id: int | None = 2 if lm else None
        self.eos_id: int | None = 3 if lm else None

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Iterable[str]],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        lm: bool = False,
    ) -> Vocabulary:
        """Count tokens and keep the frequent ones, most frequent first (ties: by token, a stable order).

        Args:
            token_lists: the tokenized training texts.
            min_freq: keep tokens seen at least this many times.
            max_size: the largest vocabulary, specials included (``None``: no limit).
            lm: add ``<bos>`` and ``<eos>`` after ``<pad>`` and ``<unk>``.
        """
        specials = LM_SPECIALS if lm else CLASSIFY_SPECIALS
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        if max_size is not None and max_size < len(specials):
            raise ValueError(f"max_size must leave room for the {len(specials)} specials, got {max_size}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in specials:  # a text that spells "<pad>" must not get a second id for it
            counts.pop(special, None)
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_freq), key=lambda kv: (-kv[1], kv[0])
        )
        if max_size is not None:
            ranked = ranked[: max_size - len(specials)]
        return cls([*specials, *(token for token, _ in ranked)], lm=lm)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token``, or ``unk_id`` if it is not in the vocabulary."""
        return self.stoi.get(token, self.unk_id)

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens`` (unknown tokens → ``unk_id``)."""
        get, unk = self.stoi.get, self.unk_id
        return [get(token, unk) for token in tokens]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``. Raises ``ValueError`` for an id outside ``0..len-1``."""
        out = []
        for i in ids:
            if not 0 <= i < len(self.itos):
                raise ValueError(f"token id must be in 0..{len(self.itos) - 1}, got {i}")
            out.append(self.itos[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        """``{"lm": bool, "itos": [...]}``, JSON-ready."""
        return {"lm": self.lm, "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocabulary:
        """Rebuild from :meth:`to_dict`'s output."""
        return cls(d["itos"], lm=bool(d.get("lm", False)))

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, lm={self.lm})"


class TextEncoder:
    """A tokenizer and its vocabulary: text → ids → text.

    Args:
        tokenizer: splits text into tokens and joins them back.
        vocab: maps those tokens to ids.

    Attributes:
        vocab: the :class:`Vocabulary` (``.itos``, ``.stoi``, ``.pad_id``, ``.unk_id``, ``.bos_id``,
            ``.eos_id``).
        tokenizer: the :class:`~rnnkit.data.tokenizers.Tokenizer`.

    >>> enc = TextEncoder.fit(["hello", "help"], tokenizer="char", lm=True)
    >>> len(enc), enc.encode("hel")
    (9, [6, 5, 4])
    >>> enc.decode(enc.encode("hello!"))
    'hello<unk>'
    """

    def __init__(self, tokenizer: Tokenizer, vocab: Vocabulary):
        self.tokenizer = tokenizer
        self.vocab = vocab

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        tokenizer: str = "basic_english",
        min_freq: int = 1,
        max_size: int | None = None,
        lm: bool = False,
        bpe_vocab_size: int = 8000,
    ) -> TextEncoder:
        """Build the tokenizer (``bpe``: train it) and the vocabulary from the training texts.

        Args:
            texts: the training split's texts only, so no valid/test word leaks into the vocabulary.
            tokenizer: ``basic_english``, ``char`` or ``bpe``.
            min_freq: keep tokens seen at least this many times; rarer ones become ``<unk>``.
            max_size: the largest vocabulary, specials included.
            lm: language model: add ``<bos>`` and ``<eos>``.
            bpe_vocab_size: number of BPE pieces to learn (``bpe`` only).

        Raises:
            DataError: there are no texts.
            ConfigError: unknown tokenizer name.
        """
        texts = texts if isinstance(texts, Sequence) else list(texts)
        if len(texts) == 0:
            raise DataError("cannot build a vocabulary from 0 training texts")
        tok = build_tokenizer(tokenizer, texts, bpe_vocab_size=bpe_vocab_size)
        vocab = Vocabulary.build(tok.tokenize_many(texts), min_freq=min_freq, max_size=max_size, lm=lm)
        return cls(tok, vocab)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``, before the vocabulary (so rare words are still spelled out)."""
        return self.tokenizer.tokenize(text)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s tokens (unknown → ``vocab.unk_id``; no ``<bos>``/``<eos>`` added)."""
        return self.vocab.lookup(self.tokenizer.tokenize(text))

    def encode_many(self, texts: Iterable[str]) -> list[list[int]]:
        """:meth:`encode` for many texts (faster for ``bpe``, which tokenizes them in parallel)."""
        lookup = self.vocab.lookup
        return [lookup(tokens) for tokens in self.tokenizer.tokenize_many(texts)]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text from ids, joined the tokenizer's way (``char``: no separator; ``basic_english``: spaces).

        Args:
            ids: token ids, e.g. a model's output.
            skip_special: drop ``<pad>``, ``<bos>`` and ``<eos>`` (``<unk>`` is kept, as the text ``<unk>``).
        """
        ids = [int(i) for i in ids]
        if skip_special:
            dropped = {self.vocab.pad_id, self.vocab.bos_id, self.vocab.eos_id}
            ids = [i for i in ids if i not in dropped]
        return self.tokenizer.detokenize(self.vocab.tokens(ids))

    def __len__(self) -> int:
        return len(self.vocab)

    def to_dict(self) -> dict[str, Any]:
        """The content of ``vocab.json``: ``{"format", "tokenizer": {...}, "vocab": {"lm", "itos"}}``."""
        return {"format": VOCAB_FORMAT, "tokenizer": self.tokenizer.to_dict(), "vocab": self.vocab.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextEncoder:
        """Rebuild from ``vocab.json``'s content.

        Raises:
            RunFolderError: the dict is not a ``vocab.json`` this version can read.
        """
        if not isinstance(d, dict) or d.get("format") != VOCAB_FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise RunFolderError(f"vocab.json: expected format {VOCAB_FORMAT}, got {got!r}")
        try:
            return cls(tokenizer_from_dict(d["tokenizer"]), Vocabulary.from_dict(d["vocab"]))
        except (KeyError, TypeError, ValueError) as e:
            raise RunFolderError(f"vocab.json: cannot rebuild the text encoder: {e}") from e

    def __repr__(self) -> str:
        return f"TextEncoder({self.tokenizer!r}, {self.vocab!r})"


class LabelEncoder:
    """Class names ↔ indices, fitted on the training labels.

    The indices follow the sorted order of the names — numerically if every name is an integer ("2"
    before "10"), else by string — so the same label set always gets the same indices, whatever order
    the rows came in.

    Args:
        names: class names in index order (e.g. from ``labels.json``); empty until :meth:`fit`.

    >>> enc = LabelEncoder().fit(["10", "2", "1", "2"])
    >>> enc.names
    ['1', '2', '10']
    >>> enc.encode("Sports")
    Traceback (most recent call last):
    rnnkit.errors.DataError: label 'Sports' was not seen in training (known labels: 1, 2, 10)
    """

    def __init__(self, names: Sequence[str] = ()):
        if len(set(names)) != len(names):
            raise ValueError(f"label names must be unique, got {list(names)}")
        self.names: list[str] = list(names)
        self._index = {name: i for i, name in enumerate(self.names)}

    def fit(self, labels: Iterable[str | None]) -> LabelEncoder:
        """Learn the class names from the training labels; returns ``self``.

        Raises:
            DataError: a label is missing (``None``), or there are no labels at all.
        """
        counts = Counter(labels)
        if None in counts:
            raise DataError(
                f"classification needs a label on every training example; {counts[None]} have none"
            )
        if not counts:
            raise DataError("cannot learn labels from 0 training examples")
        names = list(counts)
        if all(_is_int(name) for name in names):
            names.sort(key=int)
        else:
            names.sort()
        self.__init__(names)
        return self

    def encode(self, label: str, *, path: str | None = None, line: int | None = None) -> int:
        """The index of ``label``.

        Args:
            label: a class name.
            path, line: where the label came from, for the error message.

        Raises:
            DataError: ``label`` was not among the training labels.
        """
        try:
            return self._index[label]
        except KeyError:
            raise DataError(
                f"label {label!r} was not seen in training (known labels: {_preview(self.names)})", path, line
            ) from None

    def decode(self, index: int) -> str:
        """The class name of ``index``."""
        if not 0 <= index < len(self.names):
            raise ValueError(f"label index must be in 0..{len(self.names) - 1}, got {index}")
        return self.names[index]

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"LabelEncoder({_preview(self.names)})"


def _is_int(name: str) -> bool:
    try:
        int(name)
    except ValueError:
        return False
    return True


def _preview(names: Sequence[str], limit: int = 10) -> str:
    """``a, b, c`` — or the first ``limit`` names and how many more."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, … and {len(names) - limit} more"
