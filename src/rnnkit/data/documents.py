"""Texts for a language model that come as a set of documents rather than one running corpus.

A language model is usually trained on one long text (``shakespeare``, a ``.txt`` file read whole: see
:func:`rnnkit.data.read_corpus`). To pretrain the model a classifier will start from (ULMFiT), it reads the
*texts* of a classification dataset instead — its labels dropped — and any amount of unlabelled text:

- a labelled dataset (a registered name such as ``ag_news``, a ``.csv`` / ``.tsv`` / ``.jsonl`` file or a
  class folder ``root/<label>/*.txt``): the text column(s) of every row (:func:`is_document_set`);
- ``--unlabeled FILE``: a ``.txt`` file holds one text per line; a table or JSONL file its text column(s);
- ``--unlabeled FOLDER``: every ``.txt`` (or ``.txt.gz``) file below the folder is one text.

The model reads the documents one after another, each followed by ``<eos>``, so it learns where a text
ends and never treats the next text as a continuation of the previous sentence.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("first text", encoding="utf-8")
>>> (folder / "more").mkdir(); _ = (folder / "more" / "b.txt").write_text("second\\ntext", encoding="utf-8")
>>> read_unlabeled(folder)
['first text', 'second\\ntext']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import DataError
from .readers import _TEXT_SUFFIXES, MAX_FIELD_CHARS, _read_whole, detect_format, iter_file
from .registry import get_dataset, iter_examples, split_spec

__all__ = ["is_document_set", "read_documents", "read_unlabeled"]


def is_document_set(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a set of texts (a labelled dataset or a folder) rather than one corpus.

    >>> is_document_set("ag_news"), is_document_set("shakespeare"), is_document_set("story.txt")
    (True, False, False)
    """
    name, split = split_spec(spec)
    if split is not None:
        return get_dataset(name).task == "classify"
    path = Path(name)
    if path.is_dir():
        return True
    try:
        return detect_format(path) in ("csv", "tsv", "jsonl")
    except DataError:
        return False


def read_documents(spec: str | os.PathLike, text_cols: Sequence[str] = ("text",)) -> list[str]:
    """The texts of a labelled dataset, file or class folder, labels ignored (see :func:`is_document_set`).

    Raises:
        DataError: unreadable data, or no texts.
    """
    name, split = split_spec(spec)
    if split is None and Path(name).is_dir() and not _has_class_folders(Path(name)):
        return read_unlabeled(name)
    label_col = "label" if split is not None else None  # a registered dataset knows its own columns
    texts = [e.text for e in iter_examples(spec, text_cols=tuple(text_cols), label_col=label_col)]
    if not texts:
        raise DataError("no texts", path=spec)
    return texts


def read_unlabeled(spec: str | os.PathLike, text_cols: Sequence[str] = ("text",)) -> list[str]:
    """The texts of ``--unlabeled``: a file (a text per line, or per row of a table) or a folder (per file).

    Raises:
        DataError: a missing path, a folder without ``.txt`` files, or no texts.
    """
    path = Path(spec)
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    if path.is_dir():
        files = sorted(
            f for f in path.rglob("*")
            if f.is_file() and f.name.lower().endswith(_TEXT_SUFFIXES) and not _hidden(f, path)
        )  # fmt: skip
        if not files:
            raise DataError("no .txt files in this folder (one text per file)", path=path)
        texts = [t for t in (_read_whole(f, MAX_FIELD_CHARS).strip() for f in files) if t]
    else:
        texts = [e.text for e in iter_file(path, text_cols=tuple(text_cols), label_col=None)]
    if not texts:
        raise DataError("no texts", path=path)
    return texts


def _has_class_folders(root: Path) -> bool:
    """A class folder has sub-folders (one per label) and no loose ``.txt`` files of its own."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    loose = any(p.is_file() and p.name.lower().endswith(_TEXT_SUFFIXES) for p in entries)
    return not loose and any(p.is_dir() for p in entries)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
