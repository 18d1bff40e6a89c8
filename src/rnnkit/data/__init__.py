"""The text data pipeline: read examples, tokenise and encode them, batch them by length.

- Reading (:mod:`~rnnkit.data.readers`, :mod:`~rnnkit.data.registry`, :mod:`~rnnkit.data.download`):
  ``read_examples(spec)`` / ``iter_examples(spec)`` for labelled texts and ``read_corpus(spec)`` for
  language models, where ``spec`` is a path (``.csv``, ``.tsv``, ``.jsonl``, ``.txt``, optionally ``.gz``,
  or a folder ``root/<label>/*.txt``) or a registered dataset (``default``, ``shakespeare``, ``ag_news``,
  with an optional ``:split``). See ``docs/data.md``.
- Encoding (:mod:`~rnnkit.data.text`, :mod:`~rnnkit.data.tokenizers`): ``TextEncoder`` (tokenizer +
  vocabulary), ``LabelEncoder``.
- Batching (:mod:`~rnnkit.data.batching`, :mod:`~rnnkit.data.split`): ``BucketBatchSampler``, ``collate``,
  ``Batch``, ``train_valid_split``.

>>> from rnnkit.data import get_dataset
>>> get_dataset("shakespeare").task
'lm'
"""

from __future__ import annotations

import importlib

from .download import cache_dir, clean_ag_news, fetch_ag_news, iter_ag_news
from .readers import Example, iter_file, parse_column, read_file, read_text
from .registry import (
    DatasetInfo,
    companion_split,
    fetch_dataset,
    get_dataset,
    iter_examples,
    list_datasets,
    read_corpus,
    read_examples,
    split_spec,
)

# Encoding and batching load on first use: they import torch and tokenizers, which reading
# files (and `rnnkit datasets`) does not need.
_LAZY = {
    "Vocabulary": "text",
    "TextEncoder": "text",
    "LabelEncoder": "text",
    "Tokenizer": "tokenizers",
    "build_tokenizer": "tokenizers",
    "tokenizer_from_dict": "tokenizers",
    "BucketBatchSampler": "batching",
    "collate": "batching",
    "Batch": "batching",
    "train_valid_split": "split",
}

__all__ = [
    "Example",
    "DatasetInfo",
    "read_examples",
    "iter_examples",
    "read_corpus",
    "read_file",
    "iter_file",
    "read_text",
    "parse_column",
    "get_dataset",
    "list_datasets",
    "split_spec",
    "companion_split",
    "fetch_dataset",
    "cache_dir",
    "fetch_ag_news",
    "iter_ag_news",
    "clean_ag_news",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
