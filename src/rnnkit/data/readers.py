"""Readers for users' text files: CSV/TSV, JSONL, plain text, and a folder with one sub-folder per class.

Every reader streams: it reads one row at a time from the (possibly gzip-compressed) file, so a file
larger than memory can be iterated, and the bytes are never held twice. Files are decoded as UTF-8 with
an optional byte-order mark; bytes that are not UTF-8 are replaced by U+FFFD and reported in one warning
naming the first line where it happened. Bad data raises :class:`rnnkit.errors.DataError` naming the
file and line.

Limits keep a damaged or hostile file from turning into an unbounded allocation: a line of more than
:data:`MAX_LINE_CHARS` characters, a table field or example of more than :data:`MAX_FIELD_CHARS`, and
JSON nested deeper than :data:`MAX_JSON_DEPTH` and a NUL byte are errors naming the file and line. A quoted
table field that is never closed (it would swallow the rest of the file) is reported with the line where it
started.

Formats, chosen by the file's suffix (``.gz`` is stripped first):

- ``.csv`` / ``.tsv``: a table. With a header, ``text_cols`` / ``label_col`` name columns (several text
  columns are joined with a space); without one, they are 0-based column indices (``2`` or ``"2"``).
- ``.jsonl``: one JSON object per line; ``text_cols`` / ``label_col`` are keys.
- ``.txt``: one unlabelled example per line (see :func:`read_text` for a whole corpus).
- a folder ``root/<label>/*.txt``: one example per file, labelled by its sub-folder.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "news.csv"
>>> _ = path.write_text('label,title,body\\nsport,"Win","A team won\\nthe cup"\\n', encoding="utf-8")
>>> read_file(path, text_cols=("title", "body"))
[Example(text='Win A team won\\nthe cup', label='sport')]
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError, DataError

logger = logging.getLogger(__name__)

Column = str | int
"""A column: a header name (or JSON key), or a 0-based index for a headerless table."""

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}
"""File suffix (after stripping ``.gz``) → format name."""

_DELIMITERS = {"csv": ",", "tsv": "\t"}
_TEXT_SUFFIXES = (".txt", ".txt.gz")  # the files a class folder's examples are read from
_BAD_GZIP = (gzip.BadGzipFile, EOFError, zlib.error)  # what reading a truncated or corrupt .gz raises

MAX_FIELD_CHARS = 2**20  # longest table field, .txt line or class-folder file (characters): 1 Mi
MAX_LINE_CHARS = 4 * MAX_FIELD_CHARS  # longest physical line of a table, JSONL or .txt file
MAX_JSON_DEPTH = 64  # deepest nesting of arrays/objects on a JSONL line
_EOF = "\ue000rnnkit end of file\ue000"  # after the last line: a quote never closed swallows it


@dataclass(frozen=True, slots=True)
class Example:
    """One text and its label (``None`` when unlabelled, e.g. for prediction).

    ``path`` and ``line`` say where it was read from, so that a later error about it (e.g. a label
    training never saw) can name them; they are left out of comparisons and the repr.
    """

    text: str
    label: str | None = None
    path: str | None = field(default=None, compare=False, repr=False)  # file it came from
    line: int | None = field(default=None, compare=False, repr=False)  # 1-based line where its row starts


def parse_column(value: str | int) -> Column:
    """A column as the user typed it: digits become a 0-based index, anything else is a name.

    >>> parse_column("2"), parse_column("title")
    (2, 'title')
    """
    if isinstance(value, int):
        return value
    return int(value) if value.strip().isdigit() else value


def detect_format(path: str | os.PathLike) -> str:
    """``"csv"``, ``"tsv"``, ``"jsonl"``, ``"txt"`` or ``"folder"``, from the path's suffix.

    Raises:
        DataError: the suffix is none of the supported ones.

    >>> detect_format("news.tsv.gz")
    'tsv'
    """
    path = Path(path)
    if path.is_dir():
        return "folder"
    name = path.name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix not in FORMATS:
        raise DataError(
            f"unsupported file type {suffix or '(no suffix)'!r}; expected .csv, .tsv, .jsonl or .txt "
            "(optionally .gz), or a folder with one sub-folder per class",
            path=path,
        )
    return FORMATS[suffix]


def open_text(path: str | os.PathLike, newline: str | None = None) -> TextIO:
    """Open a (possibly ``.gz``) file as UTF-8 text: BOM dropped, undecodable bytes replaced by U+FFFD.

    ``newline=""`` keeps line endings as they are (what the ``csv`` module needs); ``None`` turns
    ``\\r\\n`` and ``\\r`` into ``\\n``.
    """
    path = Path(path)
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline=newline)
    return open(path, encoding="utf-8-sig", errors="replace", newline=newline)


def check_file(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it is an existing, non-empty file or a folder; else :class:`DataError`."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError("file is empty", path=path)
    return path


def _decoded_lines(f: TextIO, path: Path) -> Iterator[str]:
    """The lines of ``f``; warns once at the first undecodable byte; a broken ``.gz`` or a line longer than
    :data:`MAX_LINE_CHARS` is a DataError (the line is never read whole)."""
    warned = False
    line_no = 0
    try:
        while line := f.readline(MAX_LINE_CHARS + 1):
            line_no += 1
            if len(line) > MAX_LINE_CHARS:
                raise DataError(f"line longer than {MAX_LINE_CHARS:,} characters (the limit)", path, line_no)
            if "\x00" in line:
                raise DataError("NUL byte in the text (is this a binary file?)", path, line_no)
            if not warned and "\ufffd" in line:
                warned = True
                _warn_undecodable(path, line_no)
            yield line
    except _BAD_GZIP as e:
        raise _corrupt_gzip(path, e) from None


def _corrupt_gzip(path: Path, error: Exception) -> DataError:
    return DataError(f"cannot decompress ({error}); the .gz file is truncated or corrupt", path=path)


def _warn_undecodable(path: Path, line: int) -> None:
    logger.warning(
        "%s:%d: bytes that are not valid UTF-8 were replaced by U+FFFD (first at this line; "
        "is the file in another encoding, e.g. Latin-1?)",
        path,
        line,
    )


def _raise_csv_field_limit() -> None:
    # The csv module refuses fields over 128 KiB by default; a long document is a legitimate field, up to
    # MAX_FIELD_CHARS (a field of 50 MB is a broken file, not a document, and costs gigabytes downstream).
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_CHARS))


def iter_rows(path: str | os.PathLike, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Stream a CSV/TSV file as ``(line, fields)``, ``line`` being where the row starts (1-based).

    Blank lines are skipped; quoted fields may hold newlines, delimiters and doubled quotes.

    Raises:
        DataError: the file is missing or empty, or a row is malformed (e.g. a NUL byte).
    """
    path = check_file(path)
    _raise_csv_field_limit()
    with open_text(path, newline="") as f:
        reader = csv.reader(_with_end_marker(_decoded_lines(f, path)), delimiter=delimiter)
        end = 0
        while True:
            start = end + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                message = str(e)
                if "field larger than field limit" in message:
                    message = (f"a field longer than {MAX_FIELD_CHARS:,} characters (the limit) in the row "
                               "starting here; is a closing quote missing?")  # fmt: skip
                    raise DataError(message, path=path, line=start) from None
                raise DataError(f"malformed row: {message}", path=path, line=reader.line_num) from None
            end = reader.line_num
            if fields == [_EOF]:
                return
            if fields and _EOF in fields[-1]:
                raise DataError(
                    "unterminated quoted field: the quote opened in the row starting at this line is never "
                    "closed, so the field runs to the end of the file",
                    path=path,
                    line=start,
                )
            if fields:
                yield start, fields


def _with_end_marker(lines: Iterator[str]) -> Iterator[str]:
    """``lines``, then a marker line: a reader still inside a quoted field at the end takes it into the field
    (the quote was never closed), one that is not reads it as a row of its own."""
    last = ""
    for last in lines:
        yield last
    if last and not last.endswith(("\n", "\r")):
        yield "\n"
    yield _EOF + "\n"


def _normalise_columns(text_cols: Column | Sequence[Column]) -> tuple[Column, ...]:
    cols = (text_cols,) if isinstance(text_cols, str | int) else tuple(text_cols)
    if not cols:
        raise ConfigError("text_cols must name at least one column, got none")
    return cols


def _join(parts: Iterable[str]) -> str:
    return " ".join(p for p in (part.strip() for part in parts) if p)


def _iter_table(
    path: Path,
    delimiter: str,
    text_cols: tuple[Column, ...],
    label_col: Column | None,
    header: bool | None,
) -> Iterator[Example]:
    source = str(path)
    cols = text_cols if label_col is None else (*text_cols, label_col)
    if header is None:
        header = any(isinstance(c, str) for c in cols)
    if not header and any(isinstance(c, str) for c in cols):
        raise ConfigError(
            f"columns {[c for c in cols if isinstance(c, str)]} are names, but the table has no header "
            "line; give 0-based column indices instead"
        )
    rows = iter_rows(path, delimiter)
    width = None
    if header:
        first = next(rows, None)
        if first is None:
            raise DataError("file is empty (expected a header line)", path=path)
        line, names = first
        names = [n.strip() for n in names]
        width = len(names)
        index = {c: _header_index(c, names, path, line, delimiter) for c in cols}
    for line, fields in rows:
        if width is None:
            width = len(fields)
            index = {c: _column_index(c, width, path, line) for c in cols}
        if len(fields) != width:
            where = "the header" if header else "the first row"
            message = f"wrong column count: expected {width} (as in {where}), got {len(fields)}"
            raise DataError(message, path, line)
        text = _join(fields[index[c]] for c in text_cols)
        label = None if label_col is None else fields[index[label_col]].strip()
        yield Example(text, label, source, line)


def _header_index(col: Column, names: list[str], path: Path, line: int, delimiter: str) -> int:
    if isinstance(col, int):
        return _column_index(col, len(names), path, line)
    if col in names:
        return names.index(col)
    hint = ""
    if len(names) == 1 and any(d in names[0] for d in "\t;,|" if d != delimiter):
        hint = " — is the delimiter different? (.csv is read with commas, .tsv with tabs)"
    have = ", ".join(map(repr, names))
    raise DataError(f"missing column {col!r}; the header has: {have}{hint}", path, line)


def _column_index(col: int, width: int, path: Path, line: int) -> int:
    if not 0 <= col < width:
        message = f"column index {col} is out of range: rows have {width} columns (0..{width - 1})"
        raise DataError(message, path, line)
    return col


def _iter_jsonl(path: Path, text_keys: tuple[Column, ...], label_key: Column | None) -> Iterator[Example]:
    source = str(path)
    keys = text_keys if label_key is None else (*text_keys, label_key)
    if any(not isinstance(k, str) for k in keys):
        raise ConfigError(f"JSONL columns are keys (names), got {list(keys)}")
    with open_text(path) as f:
        for line, raw in enumerate(_decoded_lines(f, path), start=1):
            if not raw.strip():
                continue
            try:
                obj = _load_json_line(raw)
            except json.JSONDecodeError as e:
                raise DataError(f"invalid JSON: {e.msg} at column {e.colno}", path, line) from None
            except (RecursionError, ValueError) as e:
                raise DataError(f"invalid JSON: {e}", path, line) from None
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object on each line, got {type(obj).__name__}", path, line)
            for key in keys:
                if key not in obj:
                    have = ", ".join(map(repr, obj))
                    raise DataError(f"missing key {key!r}; this line has: {have}", path, line)
            text = _join(_json_str(obj[k], k, path, line) for k in text_keys)
            label = None if label_key is None else _json_str(obj[label_key], label_key, path, line).strip()
            yield Example(text, label, source, line)


def _load_json_line(raw: str) -> object:
    """One JSONL line; integers are kept as their digits (a label of any length), nesting deeper than
    :data:`MAX_JSON_DEPTH` is refused before parsing (``json`` would recurse)."""
    if raw.count("[") + raw.count("{") <= MAX_JSON_DEPTH:  # cannot be too deep: skip the scan
        return json.loads(raw, parse_int=str)
    depth = 0
    in_string = escaped = False
    for ch in raw:  # a bracket inside a string does not count
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels (the limit)")
        elif ch in "]}":
            depth -= 1
    return json.loads(raw, parse_int=str)


def _json_str(value: object, key: str, path: Path, line: int) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    kind = "a number" if isinstance(value, float) else type(value).__name__
    message = f"key {key!r} must be a string (or an integer label), got {kind}"
    raise DataError(message, path, line)


def _iter_lines(path: Path) -> Iterator[Example]:
    source = str(path)
    with open_text(path) as f:
        for line, raw in enumerate(_decoded_lines(f, path), start=1):
            if len(raw) > MAX_FIELD_CHARS:
                raise DataError(f"line longer than {MAX_FIELD_CHARS:,} characters, the limit for one example",
                                path, line)  # fmt: skip
            yield Example(raw.strip(), None, source, line)


def _iter_folder(root: Path) -> Iterator[Example]:
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        message = "expected one sub-folder per class (root/<label>/*.txt), found no sub-folders"
        raise DataError(message, path=root)
    empty = []
    for folder in classes:
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.name.lower().endswith(_TEXT_SUFFIXES))
        if not files:
            empty.append(folder.name)
        for file in files:
            yield Example(_read_whole(file, MAX_FIELD_CHARS).strip(), folder.name, str(file))
    if empty:
        logger.warning("%s: class folders with no .txt files: %s", root, ", ".join(empty))


def _read_whole(path: Path, limit: int | None = None) -> str:
    """The whole text of a file; with ``limit``, more than ``limit`` characters is a DataError."""
    with open_text(path) as f:
        try:
            text = f.read() if limit is None else f.read(limit + 1)
        except _BAD_GZIP as e:
            raise _corrupt_gzip(path, e) from None
    if limit is not None and len(text) > limit:
        raise DataError(f"longer than {limit:,} characters, the limit for one example", path=path)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise DataError("NUL byte in the text (is this a binary file?)", path=path, line=line)
    bad = text.find("\ufffd")
    if bad >= 0:
        _warn_undecodable(path, text.count("\n", 0, bad) + 1)
    return text


def _keep_nonempty(examples: Iterator[Example], path: Path, strict: bool) -> Iterator[Example]:
    """Yield examples; skip empty texts (one warning at the end) or raise in strict mode."""
    kept = skipped = 0
    first_empty = None
    for example in examples:
        if not example.text:
            if strict:
                raise DataError("empty text (read with strict=True)", example.path, example.line)
            skipped += 1
            first_empty = first_empty or example
            continue
        if example.label == "":
            raise DataError("empty label", example.path, example.line)
        kept += 1
        yield example
    if skipped:
        where, line = first_empty.path, first_empty.line
        first = f"line {line}" if line is not None else where
        logger.warning(
            "%s: skipped %d example(s) with empty text (the first at %s)",
            path,
            skipped,
            first,
        )
    if not kept:
        detail = f": all {skipped} had empty text" if skipped else ""
        raise DataError(f"no examples found{detail}", path=path)


def iter_file(
    path: str | os.PathLike,
    *,
    text_cols: Column | Sequence[Column] = ("text",),
    label_col: Column | None = "label",
    header: bool | None = None,
    strict: bool = False,
) -> Iterator[Example]:
    """Stream the examples of a file or class folder (see the module docstring for the formats).

    Args:
        path: a ``.csv``, ``.tsv``, ``.jsonl`` or ``.txt`` file (optionally ``.gz``), or a folder
            ``root/<label>/*.txt``.
        text_cols: the column(s) or key(s) holding the text; several are joined with a space. For a
            table, ints and digit strings (``2``, ``"2"``) are 0-based column indices.
        label_col: the label's column or key; ``None`` reads unlabelled examples. Ignored for ``.txt``
            files and folders.
        header: whether a table's first line names its columns; ``None``: yes if any column is a name.
        strict: raise on an empty text instead of skipping it (skips are counted in one warning).

    Returns:
        An iterator of :class:`Example`; texts are stripped.

    Raises:
        DataError: the file is missing, empty or malformed (message names file and line).
        ConfigError: the column settings do not fit the format (e.g. names for a headerless table).
    """
    path = check_file(path)
    fmt = detect_format(path)
    if fmt == "folder":
        examples = _iter_folder(path)
    else:
        cols = _normalise_columns(text_cols)
        if fmt in _DELIMITERS:
            label = None if label_col is None else parse_column(label_col)
            examples = _iter_table(path, _DELIMITERS[fmt], tuple(map(parse_column, cols)), label, header)
        elif fmt == "jsonl":
            examples = _iter_jsonl(path, cols, label_col)
        else:
            examples = _iter_lines(path)
    return _keep_nonempty(examples, path, strict)


def read_file(path: str | os.PathLike, **options) -> list[Example]:
    """All examples of a file or class folder as a list; the options are :func:`iter_file`'s."""
    return list(iter_file(path, **options))


def read_text(path: str | os.PathLike) -> str:
    """The whole text of a (possibly ``.gz``) file with ``\\n`` line endings: a language model's corpus.

    Raises:
        DataError: the file is missing, empty or a folder.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "corpus.txt"
    >>> _ = path.write_bytes(b"\\xef\\xbb\\xbfTo be,\\r\\nor not.\\r\\n")
    >>> read_text(path)
    'To be,\\nor not.\\n'
    """
    path = check_file(path)
    if path.is_dir():
        raise DataError("expected a text file for a language-model corpus, got a folder", path=path)
    text = _read_whole(path)
    if not text.strip():
        raise DataError("file is empty (only whitespace)", path=path)
    return text
