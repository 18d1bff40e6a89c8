"""Pretrained word vectors (GloVe / word2vec text format, or rnnkit's bundled GloVe) for an embedding table.

A text file holds one word per line followed by its numbers (``the 0.418 0.24968 ...``); word2vec's text
format adds a first line ``<count> <dim>``, which is recognised and skipped. ``.gz`` files are read
as they are. Only the words of the vocabulary are kept, so a large file costs one pass and little memory.

rnnkit ships GloVe 6B 50d (the 100,000 most frequent words, float16) inside the package, so a fresh
install starts word-level classifiers from pretrained vectors with no download: ``vectors="auto"`` (the
``default`` recipe) resolves to it for word tokenizers, ``"glove.6B.50d"`` names it, ``"none"`` turns
vectors off (:func:`resolve_vectors`). A ``.safetensors`` file in its layout (a ``vectors`` tensor, the
words newline-joined under the metadata key ``words``) can be given as a path too.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "vectors.txt"
>>> _ = path.write_text("2 3\\ncat 1 2 3\\ndog 4 5 6\\n", encoding="utf-8")
>>> found = read_vectors(path, ["<pad>", "<unk>", "cat", "bird"])
>>> sorted(found), found["cat"].tolist()
(['cat'], [1.0, 2.0, 3.0])
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, DataError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "data" / "builtin"
BUNDLED_VECTORS = {"glove.6B.50d": BUILTIN_DIR / "glove.6B.50d.safetensors"}
WORD_TOKENIZERS = ("basic_english",)  # tokenizers whose tokens are lower-cased English words, as GloVe's


def resolve_vectors(spec: str | None, tokenizer: str) -> str | None:
    """The vectors file a ``vectors`` setting means, or None for no vectors.

    ``None`` / ``"none"``: no vectors. ``"auto"``: the bundled GloVe for word tokenizers, none for
    ``char`` / ``bpe`` (their tokens are not words). A bundled name (``"glove.6B.50d"``): its file.
    Anything else: a path, used as given.

    >>> resolve_vectors("auto", "char") is None, resolve_vectors("none", "basic_english") is None
    (True, True)
    >>> resolve_vectors("auto", "basic_english").endswith("glove.6B.50d.safetensors")
    True
    >>> resolve_vectors("glove.6B.50d", "bpe")
    Traceback (most recent call last):
    ...
    rnnkit.errors.ConfigError: --vectors glove.6B.50d holds word vectors, for --tokenizer basic_english ...
    """
    if spec is None or spec.lower() == "none":
        return None
    if spec == "auto":
        return str(BUNDLED_VECTORS["glove.6B.50d"]) if tokenizer in WORD_TOKENIZERS else None
    if spec in BUNDLED_VECTORS:
        if tokenizer not in WORD_TOKENIZERS:
            raise ConfigError(f"--vectors {spec} holds word vectors, for --tokenizer basic_english "
                              "(or use --vectors none)")  # fmt: skip
        return str(BUNDLED_VECTORS[spec])
    return spec


def _read_safetensors(path: Path) -> tuple[list[str], torch.Tensor]:
    """Words and their vectors ``[V, E]`` (float32) from a bundled-layout safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            words = (f.metadata() or {}).get("words")
            if words is None or "vectors" not in f.keys():  # noqa: SIM118 (safe_open has no __contains__)
                raise DataError("not a vectors file: needs a 'vectors' tensor and 'words' metadata", path)
            vectors = f.get_tensor("vectors").float()
    except (SafetensorError, OSError) as e:
        raise DataError(f"cannot read vectors file ({e})", path=path) from None
    words_list = words.split("\n")
    if vectors.dim() != 2 or vectors.shape[0] != len(words_list):
        raise DataError(f"{len(words_list)} words but vectors of shape {list(vectors.shape)}", path=path)
    return words_list, vectors


@dataclass
class VectorsInfo:
    """How much of a vocabulary a vectors file covered."""

    path: str  # the vectors file
    dim: int  # size of each vector
    found: int  # vocabulary words that had a vector
    words: int  # vocabulary words, special tokens excluded
    token_coverage: float | None = None  # share of training tokens whose word had a vector

    @property
    def coverage(self) -> float:
        """Share of the vocabulary's words found in the file."""
        return self.found / self.words if self.words else 0.0


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")


def read_vectors(path: str | os.PathLike, words: Sequence[str]) -> dict[str, torch.Tensor]:
    """The vectors of ``words`` that the file has.

    Args:
        path: a GloVe / word2vec text file, optionally ``.gz``.
        words: the words wanted (e.g. the vocabulary's ``itos``).

    Returns:
        ``{word: float32 tensor [E]}`` for the words found (the first occurrence wins).

    Raises:
        DataError: missing or unreadable file, a line with a different number of values than the
            others, or a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("vectors file not found", path=path)
    wanted = set(words)
    if path.suffix == ".safetensors":
        names, table = _read_safetensors(path)
        return {w: table[i] for i, w in reversed(list(enumerate(names))) if w in wanted}
    found: dict[str, torch.Tensor] = {}
    dim = None
    try:
        with _open(path) as f:
            for number, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    dim = int(parts[1])  # word2vec header: count, dim
                    continue
                if len(parts) < 2:
                    continue
                if dim is None:
                    dim = len(parts) - 1
                if len(parts) - 1 != dim:
                    message = f"expected a word and {dim} numbers, got {len(parts) - 1} values"
                    raise DataError(message, path, number)
                word = parts[0]
                if word in wanted and word not in found:
                    try:
                        found[word] = torch.tensor([float(x) for x in parts[1:]], dtype=torch.float32)
                    except ValueError:
                        message = f"vector of {word!r} holds a value that is not a number"
                        raise DataError(message, path, number) from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read vectors file ({e})", path=path) from None
    if dim is None:
        raise DataError("vectors file holds no vectors", path=path)
    return found


def vectors_dim(path: str | os.PathLike) -> int:
    """The vector size of a vectors file, from its first data line.

    Raises:
        DataError: missing, unreadable or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("vectors file not found", path=path)
    if path.suffix == ".safetensors":
        return int(_read_safetensors(path)[1].shape[1])
    try:
        with _open(path) as f:
            for number, line in enumerate(f, start=1):
                parts = line.rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    return int(parts[1])
                if len(parts) >= 2:
                    return len(parts) - 1
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read vectors file ({e})", path=path) from None
    raise DataError("vectors file holds no vectors", path=path)


def load_vectors_into(
    embedding: torch.nn.Embedding,
    path: str | os.PathLike,
    itos: Sequence[str],
    specials: Sequence[int] = (),
    token_counts: Mapping[int, int] | None = None,
) -> VectorsInfo:
    """Copy the file's vectors into the rows of ``embedding`` for the words of ``itos`` that it has.

    Words the file lacks keep random vectors, rescaled to the spread of the loaded ones so both kinds
    start on the same scale; the rows in ``specials`` (padding, unknown) are left as they are.

    Args:
        embedding: table ``[V, E]``; ``E`` must equal the file's vector size.
        path: the vectors file.
        itos: the vocabulary, id → word (V of them).
        specials: ids of special tokens, excluded from the coverage count.
        token_counts: id → occurrences in the training data, to report the share of tokens covered.

    Returns:
        :class:`VectorsInfo` (``found`` / ``words`` is the coverage).

    Raises:
        DataError: the file's vectors are not ``E`` long, or the file cannot be read.
    """
    found = read_vectors(path, itos)
    weight = embedding.weight
    if found:
        dim = next(iter(found.values())).numel()
        if dim != weight.shape[1]:
            message = f"vectors are {dim}-dimensional but the embedding is {weight.shape[1]}"
            raise DataError(message, path=path)
    special = set(specials)
    with torch.no_grad():
        if found:
            loaded = torch.stack(list(found.values()))
            missing = [i for i, w in enumerate(itos) if w not in found and i not in special]
            if missing:
                rows = weight[missing]
                weight[missing] = rows / rows.std().clamp_min(1e-8) * loaded.std()
            for i, word in enumerate(itos):
                if word in found:
                    weight[i] = found[word]
    words = sum(1 for i in range(len(itos)) if i not in special)
    info = VectorsInfo(str(path), int(weight.shape[1]), len(found), words)
    if token_counts:
        covered = sum(n for i, n in token_counts.items() if itos[i] in found)
        info.token_coverage = covered / sum(token_counts.values())
    return info
