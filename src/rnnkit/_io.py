"""Atomic file writes: a killed process never leaves a half-written file behind.

Write to a temporary file in the same folder, flush it to disk, then rename it over the target
(``os.replace`` is atomic on POSIX and Windows).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.json", '{"x": 1}')
>>> (d / "a.json").read_text()
'{"x": 1}'
>>> sorted(p.name for p in d.iterdir())   # no temporary files left over
['a.json']
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``, on error it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # the place is wrong, not the program: one line (OutputError is an InputError)
        from .errors import OutputError

        raise OutputError(f"{path}: cannot be written there ({_why(path, e)})") from None
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the user's umask like open()
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _why(path: Path, error: OSError) -> str:
    for parent in path.parents:
        if parent.is_file():
            return f"{parent} is a file"
        if parent.is_dir():
            break
    return error.strerror or str(error)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def json_line(obj: Any) -> str:
    """``obj`` as one line of strict JSON: NaN and infinities (which ``json.dumps`` writes as the invalid
    ``NaN`` / ``Infinity``) become ``null``.

    >>> json_line({"p": float("nan"), "q": [1.5, float("inf")], "t": "é"})
    '{"p": null, "q": [1.5, null], "t": "é"}'
    """
    return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
