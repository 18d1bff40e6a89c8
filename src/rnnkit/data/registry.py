"""Named datasets, and reading a data SPEC: a path, or a registered name with an optional split.

A SPEC is ``name[:split]`` for a registered dataset (``default``, ``default:test``, ``ag_news:test``,
``shakespeare:valid``; without a split, the training split) or a path to a file or class folder. A
spec naming an existing file or folder is always that path, even if it is also a registered name.

==============  ========  =====================  ==================================================
name            task      splits                 where
==============  ========  =====================  ==================================================
``default``     classify  train, valid, test     bundled: WordNet 3.0 glosses by lexicographer file
``shakespeare`` lm        train, valid           bundled: Tiny Shakespeare, characters
``ag_news``     classify  train, test            downloaded once into the cache (see ``download``)
==============  ========  =====================  ==================================================

>>> split_spec("ag_news:test"), split_spec("shakespeare")
(('ag_news', 'test'), ('shakespeare', 'train'))
>>> companion_split("default", "valid"), companion_split("ag_news", "valid")
('default:valid', None)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from . import download
from .readers import Column, Example, iter_file, read_text

BUILTIN_DIR = Path(__file__).parent / "builtin"
"""Folder of the datasets shipped inside the package."""


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: what it is, its splits, and where its files live."""

    name: str  # registered name, e.g. "ag_news"
    task: str  # "classify" (labelled texts) or "lm" (one character corpus per split)
    description: str  # one line, shown by `rnnkit datasets`
    splits: tuple[str, ...]  # split names; the first is the training split
    files: Mapping[str, str]  # split -> file name, in BUILTIN_DIR (bundled) or the cache (downloaded)
    downloaded: bool = False  # True: fetched once into the cache; False: shipped in the package
    known_sizes: Mapping[str, int] = field(default_factory=dict)  # split -> examples, known without reading

    @property
    def unit(self) -> str:
        """What :meth:`size` counts: ``"examples"`` or ``"characters"``."""
        return "characters" if self.task == "lm" else "examples"

    @property
    def folder(self) -> Path:
        """Where the files are: the package's ``builtin/`` folder, or this dataset's cache folder."""
        return download.cache_dir() / self.name if self.downloaded else BUILTIN_DIR

    def path(self, split: str) -> Path:
        """The local file of ``split`` (it may not exist yet for a downloaded dataset)."""
        self._check_split(split)
        return self.folder / self.files[split]

    def available(self, split: str | None = None) -> bool:
        """Whether ``split`` (default: every split) can be read without the network."""
        return all(self.path(s).is_file() for s in ([split] if split else self.splits))

    def size(self, split: str) -> int | None:
        """Examples (or characters, for ``lm``) in ``split``; ``None`` if unknown without a download."""
        if split in self.known_sizes:
            return self.known_sizes[split]
        path = self.path(split)
        if not path.is_file():
            return None
        return _count(str(path), path.stat().st_mtime_ns, self.task)

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            splits = ", ".join(self.splits)
            raise DataError(f"dataset {self.name!r} has no split {split!r}; its splits: {splits}")


_REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="default",
            task="classify",
            description="WordNet 3.0 glosses labelled by lexicographer file (noun.animal, verb.motion, ...)",
            splits=("train", "valid", "test"),
            files={s: f"default_{s}.csv.gz" for s in ("train", "valid", "test")},
        ),
        DatasetInfo(
            name="shakespeare",
            task="lm",
            description="Tiny Shakespeare, a character corpus for language models (public domain)",
            splits=("train", "valid"),
            files={s: f"shakespeare_{s}.txt.gz" for s in ("train", "valid")},
        ),
        DatasetInfo(
            name="ag_news",
            task="classify",
            description="AG News topics: World, Sports, Business, Sci/Tech (the lesson's dataset)",
            splits=("train", "test"),
            files={s: f"{s}.csv" for s in ("train", "test")},
            downloaded=True,
            known_sizes=download.AG_NEWS_SIZES,
        ),
    )
}


@functools.lru_cache(maxsize=16)
def _count(path: str, mtime_ns: int, task: str) -> int:
    # Keyed by modification time too, so a rebuilt bundled file is counted again.
    if task == "lm":
        return len(read_text(path))
    return sum(1 for _ in iter_file(path))


def get_dataset(name: str) -> DatasetInfo:
    """The registered dataset called ``name``.

    Raises:
        DataError: no dataset has that name (the message lists the known ones).

    >>> get_dataset("ag_news").splits
    ('train', 'test')
    """
    if name not in _REGISTRY:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def list_datasets() -> list[dict]:
    """One summary per registered dataset, for ``rnnkit datasets``.

    Returns:
        Dicts with ``name``, ``task``, ``description``, ``splits``, ``sizes`` (split → count, or
        ``None`` when unknown), ``unit`` (``"examples"`` / ``"characters"``), ``where`` (folder),
        ``bundled`` (shipped in the package), ``available`` (the splits readable without network) and
        ``offline`` (all of them are).

    >>> [d["name"] for d in list_datasets()]
    ['default', 'shakespeare', 'ag_news']
    """
    return [
        {
            "name": info.name,
            "task": info.task,
            "description": info.description,
            "splits": list(info.splits),
            "sizes": {s: info.size(s) for s in info.splits},
            "unit": info.unit,
            "where": str(info.folder),
            "bundled": not info.downloaded,
            "available": [s for s in info.splits if info.available(s)],
            "offline": info.available(),
        }
        for info in _REGISTRY.values()
    ]


def split_spec(spec: str | os.PathLike) -> tuple[str, str | None]:
    """Split a SPEC into ``(name, split)`` for a registered dataset, or ``(path, None)`` for anything else.

    A registered name without a split gets its training split. An existing path wins over a name.

    Raises:
        DataError: a registered name with a split it does not have.
    """
    spec = str(spec)
    if os.path.exists(spec):
        return spec, None
    name, colon, split = spec.partition(":")
    if name not in _REGISTRY:
        return spec, None
    info = _REGISTRY[name]
    if not colon:
        return name, info.splits[0]
    info._check_split(split)
    return name, split


def companion_split(spec: str | os.PathLike, which: str) -> str | None:
    """For a registered training split, the spec of its ``which`` (``"valid"`` / ``"test"``) split, if any.

    Returns ``None`` for paths, non-training splits, and datasets without that split (then the
    caller holds out part of the training data, or has no test set).
    """
    if which not in ("valid", "test"):
        raise ValueError(f"which must be 'valid' or 'test', got {which!r}")
    name, split = split_spec(spec)
    if split is None:
        return None
    info = _REGISTRY[name]
    if split != info.splits[0] or which not in info.splits:
        return None
    return f"{name}:{which}"


def fetch_dataset(name: str, *, progress: download.Progress | None = None) -> dict[str, Path]:
    """Make every split of a registered dataset available offline (download it if needed).

    Args:
        name: a registered name, e.g. ``"ag_news"``.
        progress: ``progress(bytes_done, bytes_total)`` during each download (restarting at 0 per file).

    Returns:
        Split → local file.

    Raises:
        DataError: unknown name, or a download that fails (see :func:`rnnkit.data.download.fetch_ag_news`).
    """
    info = get_dataset(name)
    return {split: _registered_file(info, split, progress) for split in info.splits}


def _missing_path(spec: str) -> DataError:
    looks_like_name = not any(c in spec for c in "./\\" + os.sep)
    if looks_like_name:
        return DataError(
            f"unknown dataset {spec.partition(':')[0]!r} and no such file or folder; "
            f"known datasets: {', '.join(_REGISTRY)}"
        )
    return DataError("no such file or folder", path=spec)


def _registered_file(info: DatasetInfo, split: str, progress: download.Progress | None) -> Path:
    if info.name == "ag_news":
        return download.fetch_ag_news(split, progress=progress)
    path = info.path(split)
    if not path.is_file():
        raise DataError(f"bundled file of dataset {info.name!r} is missing; reinstall rnnkit", path=path)
    return path


def iter_examples(
    spec: str | os.PathLike,
    *,
    text_cols: Column | Sequence[Column] = ("text",),
    label_col: Column | None = "label",
    header: bool | None = None,
    strict: bool = False,
    progress: download.Progress | None = None,
) -> Iterator[Example]:
    """Stream the labelled (or unlabelled) texts of a SPEC: a file, a class folder, or a registered name.

    Args:
        spec: a path (see :func:`rnnkit.data.readers.iter_file` for the formats) or ``name[:split]``.
        text_cols, label_col, header, strict: as for :func:`~rnnkit.data.readers.iter_file`; ignored
            for registered datasets, whose columns are known.
        progress: ``progress(bytes_done, bytes_total)`` while a dataset downloads.

    Raises:
        DataError: unknown name or missing file, bad data, a language-model corpus, or a failed download.
    """
    name, split = split_spec(spec)
    if split is None:
        if not os.path.exists(name):
            raise _missing_path(name)
        return iter_file(name, text_cols=text_cols, label_col=label_col, header=header, strict=strict)
    info = _REGISTRY[name]
    if info.task != "classify":
        raise DataError(f"dataset {name!r} is a corpus for language models (task lm), not labelled examples")
    path = _registered_file(info, split, progress)
    if info.name == "ag_news":
        return download.iter_ag_news(path)
    return iter_file(path, text_cols="text", label_col="label", strict=strict)


def read_examples(spec: str | os.PathLike, **options) -> list[Example]:
    """All examples of a SPEC as a list; the options are :func:`iter_examples`'s.

    Empty texts are skipped with one warning (a :class:`DataError` with ``strict=True``).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reviews.jsonl"
    >>> _ = path.write_text('{"text": "great", "label": "pos"}\\n', encoding="utf-8")
    >>> read_examples(path)
    [Example(text='great', label='pos')]
    """
    return list(iter_examples(spec, **options))


def read_corpus(spec: str | os.PathLike, *, progress: download.Progress | None = None) -> str:
    """The whole text of a language-model corpus: a text file, or a registered corpus such as ``shakespeare``.

    Raises:
        DataError: unknown name or missing/empty file, or a registered dataset that is not a corpus.
    """
    name, split = split_spec(spec)
    if split is None:
        if not os.path.exists(name):
            raise _missing_path(name)
        return read_text(name)
    info = _REGISTRY[name]
    if info.task != "lm":
        raise DataError(f"dataset {name!r} holds labelled examples (task classify), not a corpus (task lm)")
    return read_text(_registered_file(info, split, progress))
