"""Errors that mean "the input is wrong", as opposed to a bug.

The command line prints any :class:`InputError` as one line on stderr and exits with code 2;
anything else is unexpected and exits with code 1. All of them are ``ValueError`` subclasses, so
library users can keep catching ``ValueError``.

>>> str(DataError("missing column 'text' (columns: title, body)", path="news.csv", line=1))
"news.csv:1: missing column 'text' (columns: title, body)"
"""

from __future__ import annotations

from os import PathLike


class InputError(ValueError):
    """Bad input from the user: a setting, a file, a run folder. Printed as one line; exit code 2."""


class ConfigError(InputError):
    """A setting is unknown, out of range, or contradicts another one."""


class RunFolderError(InputError):
    """A run folder is missing, incomplete, or its files disagree with each other."""


class DistributedError(InputError):
    """The processes of a distributed run cannot meet, or disagree: an unreachable master, a rank that
    never came, different training data or vocabularies on different ranks."""


class MissingExtraError(InputError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class OutputError(InputError):
    """A file cannot be written where it was asked to go (a folder that is a file, no permission, /proc)."""


class TrainingError(RuntimeError):
    """Training cannot go on (the loss became NaN or infinite). Not the input's fault as such, so the command
    line prints it as one line and exits with code 1; the last good checkpoint is kept."""


def require_extra(extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` unless every module (top-level name) can be imported.

    >>> require_extra("serve", "json")
    >>> require_extra("serve", "nope")
    Traceback (most recent call last):
    ...
    rnnkit.errors.MissingExtraError: this needs the 'serve' extra: pip install 'rnnkit[serve]' (missing: nope)
    """
    import importlib

    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"this needs the {extra!r} extra: pip install 'rnnkit[{extra}]' (missing: {', '.join(missing)})"
        )


class DataError(InputError):
    """Bad data, located by file and (when known) line: ``path:line: message``.

    Args:
        message: what is wrong, naming the expected and the received value.
        path: the file (or folder) the data came from, if any.
        line: 1-based line number in that file, if known.
    """

    def __init__(self, message: str, path: str | PathLike | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


def check_text(text: str, what: str) -> None:
    """Raise :class:`~rnnkit.errors.ConfigError` if ``text`` holds a lone surrogate (``"\\ud800"``, or the
    ``\\udcff`` Python makes of a command-line argument that is not UTF-8): it cannot be tokenized back
    into bytes, printed, or sent as JSON.

    >>> check_text("café", "--prime")
    >>> check_text("a" + chr(0xDCFF) + "b", "--prime")
    Traceback (most recent call last):
    ...
    rnnkit.errors.ConfigError: --prime is not valid UTF-8 text (a lone surrogate at character 2)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        where = f"a lone surrogate at character {e.start + 1}"
        raise ConfigError(f"{what} is not valid UTF-8 text ({where})") from None
