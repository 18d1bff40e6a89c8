"""Tokenizers: text → list of token strings, and back.

Three tokenizers, each one class with ``tokenize``, ``detokenize``, ``to_dict`` and ``from_dict``
(the dict is the ``"tokenizer"`` object inside ``vocab.json``, so a run folder rebuilds exactly the
tokenizer it was trained with):

- ``basic_english``: lower-cases and splits punctuation off the way torchtext's ``basic_english`` did (the
  tokenizer the lesson used): ``'`` ``.`` ``,`` ``(`` ``)`` ``!`` ``?`` become tokens of their own, ``"`` is
  dropped, ``;`` ``:`` and ``<br />`` become spaces, then the text is split on whitespace.
- ``char``: every character is a token (language models, e.g. Tiny Shakespeare).
- ``bpe``: byte-level byte-pair encoding from Hugging Face ``tokenizers``, trained on the training
  texts. It keeps case and, being byte-level, can spell any text; a space before a word is part of
  its token (``Ġworld``), and a space is put before the first word too, so "Hello" at the start and
  " Hello" later are the same token.

>>> BasicEnglishTokenizer().tokenize('He said "Don\\'t!" (twice).')
['he', 'said', 'don', "'", 't', '!', '(', 'twice', ')', '.']
>>> CharTokenizer().tokenize("to be")
['t', 'o', ' ', 'b', 'e']
>>> tok = tokenizer_from_dict(build_tokenizer("char").to_dict())
>>> tok.detokenize(tok.tokenize("to be"))
'to be'
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from ..errors import ConfigError


class Tokenizer(ABC):
    """Base class: ``tokenize(text) -> tokens``, ``detokenize(tokens) -> text``, and a dict form."""

    name: ClassVar[str]

    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """Split one text into token strings."""

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        """Tokenize many texts (the BPE tokenizer does it in parallel)."""
        return [self.tokenize(text) for text in texts]

    @abstractmethod
    def detokenize(self, tokens: Sequence[str]) -> str:
        """Join tokens back into text."""

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer, JSON-ready: ``{"name": ...}`` plus settings."""
        return {"name": self.name}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tokenizer:
        """Rebuild from :meth:`to_dict`'s output."""
        return cls()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BasicEnglishTokenizer(Tokenizer):
    """torchtext's ``basic_english``: lower-case, split punctuation off, split on whitespace.

    torchtext applied these regex substitutions in order, then ``str.split()``:
    ``'`` → ``" '  "``, ``"`` → ``""``, ``.`` → ``" . "``, ``<br />`` → ``" "``, ``,`` → ``" , "``,
    ``(`` → ``" ( "``, ``)`` → ``" ) "``, ``!`` → ``" ! "``, ``?`` → ``" ? "``, ``;`` → ``" "``,
    ``:`` → ``" "``, whitespace runs → ``" "``. This class gives the same tokens with plain string
    operations (none of the later substitutions can create or break a match of an earlier one, except
    that dropping ``"`` can complete a ``<br />``, which is why ``"`` goes first here as it did there).

    >>> BasicEnglishTokenizer().tokenize("Wall St. Bears Claw Back Into the Black (Reuters)")
    ['wall', 'st', '.', 'bears', 'claw', 'back', 'into', 'the', 'black', '(', 'reuters', ')']
    >>> BasicEnglishTokenizer().detokenize(["the", "black", "."])
    'the black .'
    """

    name = "basic_english"
    _SPACED = str.maketrans({c: f" {c} " for c in ".,()!?"} | {"'": " '  ", ";": " ", ":": " "})

    def tokenize(self, text: str) -> list[str]:
        text = text.lower().replace('"', "").replace("<br />", " ")
        return text.translate(self._SPACED).split()

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens)


class CharTokenizer(Tokenizer):
    """Every character is a token; nothing is changed or dropped.

    >>> CharTokenizer().detokenize(["h", "i", "\\n"])
    'hi\\n'
    """

    name = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)


class BPETokenizer(Tokenizer):
    """Byte-level BPE (Hugging Face ``tokenizers``), trained with :meth:`train` on the training texts.

    Args:
        hf_tokenizer: a trained ``tokenizers.Tokenizer`` with a byte-level pre-tokenizer and decoder.

    >>> tok = BPETokenizer.train(["the cat sat", "the cat ran"] * 10, vocab_size=300)
    >>> tok.tokenize("the cat")
    ['Ġthe', 'Ġcat']
    >>> tok.detokenize(tok.tokenize("the rat sat"))
    'the rat sat'
    >>> BPETokenizer.from_dict(tok.to_dict()).tokenize("the cat")
    ['Ġthe', 'Ġcat']
    """

    name = "bpe"

    def __init__(self, hf_tokenizer):
        self._tokenizer = hf_tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> BPETokenizer:
        """Learn merges from ``texts`` until there are ``vocab_size`` pieces (256 bytes + merges).

        Args:
            texts: the training texts (only the training split: never valid or test).
            vocab_size: the number of BPE pieces to learn, at least 256 + 1.
            min_frequency: a pair of pieces is merged only if it occurs at least this often.
        """
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if vocab_size <= 256:
            raise ConfigError(f"bpe_vocab_size must be more than the 256 single bytes, got {vocab_size}")
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        hf.train_from_iterator(texts, trainer)
        return cls(hf)

    def tokenize(self, text: str) -> list[str]:
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.tokens for e in encodings]

    def detokenize(self, tokens: Sequence[str]) -> str:
        text = self._tokenizer.decoder.decode(list(tokens))
        return text[1:] if text.startswith(" ") else text  # the space added before the first word

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": json.loads(self._tokenizer.to_str())}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        if not isinstance(d.get("model"), dict):
            raise ValueError("a bpe tokenizer's dict needs its Hugging Face tokenizer JSON under 'model'")
        return cls(HFTokenizer.from_str(json.dumps(d["model"])))

    def __repr__(self) -> str:
        return f"BPETokenizer(pieces={self._tokenizer.get_vocab_size()})"


TOKENIZERS: dict[str, type[Tokenizer]] = {
    cls.name: cls for cls in (BasicEnglishTokenizer, CharTokenizer, BPETokenizer)
}


def _check_name(name: str) -> type[Tokenizer]:
    if name not in TOKENIZERS:
        raise ConfigError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]


def build_tokenizer(name: str, texts: Iterable[str] = (), *, bpe_vocab_size: int = 8000) -> Tokenizer:
    """The tokenizer called ``name``; ``bpe`` is trained on ``texts`` (the others ignore them).

    Raises:
        ConfigError: ``name`` is not one of ``basic_english``, ``char``, ``bpe``.

    >>> build_tokenizer("basic_english")
    BasicEnglishTokenizer()
    >>> build_tokenizer("words")
    Traceback (most recent call last):
    rnnkit.errors.ConfigError: unknown tokenizer 'words'; choose one of: basic_english, char, bpe
    """
    cls = _check_name(name)
    if cls is BPETokenizer:
        return BPETokenizer.train(texts, vocab_size=bpe_vocab_size)
    return cls()


def tokenizer_from_dict(d: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from its ``to_dict()`` form (the ``"tokenizer"`` object of ``vocab.json``)."""
    if not isinstance(d, dict) or "name" not in d:
        raise ValueError(f"a tokenizer dict needs a 'name' key, got {d!r:.80}")
    return _check_name(d["name"]).from_dict(d)
