"""What ``rnnkit predict`` labels: one rule for telling a file from a text, and no silent guesses.

The rule (documented in docs/cli.md): an INPUT argument is read as a file when it is ``-`` (standard
input) or names an existing file; any other argument is a text to label — except one that looks like a
file name (one word ending in ``.txt``, ``.csv``, ``.tsv``, ``.jsonl``, ``.json`` or ``.gz``), which is an
error, since it is almost always a misspelled path. ``--text`` marks a text explicitly (even one that
happens to be a file's name).

A file is read like training data: the text column(s) of a ``.csv`` / ``.tsv`` / ``.jsonl`` table by
:func:`rnnkit.data.read_examples` (the label column, if any, is ignored), otherwise one text per line
(empty lines skipped).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "news.csv").write_text("label,text\\nsport,Goal!\\ntech,New chip\\n", encoding="utf-8")
>>> texts_to_label([str(folder / "news.csv"), "Stocks rallied"])
['Goal!', 'New chip', 'Stocks rallied']
>>> texts_to_label(["news_tset.csv"])
Traceback (most recent call last):
...
rnnkit.errors.DataError: news_tset.csv: no such file (to label the words, give --text 'news_tset.csv')
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import TextIO

from .errors import DataError

TABLES = (".csv", ".tsv", ".jsonl", ".ndjson")  # read by their text column(s), as in training
_LOOKS_LIKE_A_FILE = re.compile(r"\S+\.(txt|csv|tsv|jsonl|ndjson|json|gz)", re.IGNORECASE)


def looks_like_a_file(arg: str) -> bool:
    """One word with a data file's suffix, e.g. ``news_test.csv`` (not ``see results.csv``).

    >>> looks_like_a_file("texts.txt"), looks_like_a_file("Stocks rallied."), looks_like_a_file("a b.csv")
    (True, False, False)
    """
    return bool(_LOOKS_LIKE_A_FILE.fullmatch(arg))


def texts_to_label(
    inputs: Sequence[str],
    texts: Sequence[str] = (),
    *,
    text_cols: Sequence[str] = ("text",),
    stdin: TextIO | None = None,
) -> list[str]:
    """The texts that INPUT arguments and ``--text`` options stand for, in the order given.

    Args:
        inputs: INPUT arguments: ``-``, an existing file, or a text (see the module docstring).
        texts: ``--text`` values, always texts; they come after the inputs' texts.
        text_cols: the column(s) holding the text in a table (the run's ``text_col``).
        stdin: where ``-`` reads from (default ``sys.stdin``).

    Raises:
        DataError: an argument that looks like a missing file; an unreadable file.
    """
    out: list[str] = []
    for arg in inputs:
        if arg == "-":
            out += read_lines(stdin or sys.stdin)
        elif os.path.isfile(arg):
            out += read_file_texts(arg, text_cols)
        elif os.path.isdir(arg):
            raise DataError("is a folder; give a file of texts (one a line, or a .csv/.tsv/.jsonl)", path=arg)
        elif looks_like_a_file(arg):
            raise DataError(f"no such file (to label the words, give --text {arg!r})", path=arg)
        else:
            out.append(arg)
    return out + list(texts)


def read_lines(f: TextIO) -> list[str]:
    """One text per non-empty line, stripped."""
    return [line.strip() for line in f if line.strip()]


def read_file_texts(path: str | os.PathLike, text_cols: Sequence[str] = ("text",)) -> list[str]:
    """The texts of a file: a table's text column(s), else one text per non-empty line."""
    from .data import read_examples
    from .data.readers import open_text

    name = os.fspath(path).lower().removesuffix(".gz")
    if name.endswith(TABLES):
        return [e.text for e in read_examples(path, text_cols=tuple(text_cols), label_col=None)]
    try:
        with open_text(path) as f:
            return read_lines(f)
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror or e})", path=path) from None
