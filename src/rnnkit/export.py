"""Export a trained classifier to ONNX or TorchScript, check it equals eager, and run it.

An export is one model file that describes itself: the graph ``(ids [N, L] int64, lengths [N] int64) ->
probs [N, C] float32`` and, embedded in the same file, everything that turns text into its inputs — the
run's tokenizer and vocabulary (``TextEncoder.from_dict``), the class names in index order, the run's
config and the equality check's result, with a SHA-256 over vocabulary and labels that loading verifies.
ONNX keeps it in the model's metadata (``metadata_props["rnnkit"]``, readable with ONNX Runtime's
``session.get_modelmeta().custom_metadata_map``), TorchScript in an extra file of the archive
(``rnnkit.json``). So two exports written into one folder can never pick up each other's vocabulary.

Both axes are dynamic (any batch size, any length). Recurrent networks are a known trap here: exporting
``pack_padded_sequence`` fails or silently computes the wrong thing, so it is never exported. The layers'
padded fast path (:mod:`rnnkit.nn.fused`) is traced instead: a fixed graph of tensor operations around
PyTorch's fused kernels, which ONNX export turns into ONNX ``LSTM`` / ``GRU`` / ``RNN`` nodes, and in
which the ``lengths`` input keeps ragged and bidirectional batches exact (padded steps are frozen, and
each sequence's final state is read at its own last real token). :func:`check_export` proves it on
ragged batches that include one-token texts, and ``export_model(..., check=True)`` fails unless the
largest probability difference to eager PyTorch is at most ``1e-4``.

ONNX uses PyTorch's TorchScript-based exporter (``dynamo=False``): on torch 2.13 it exports the fused
kernels as single ONNX recurrent nodes in well under a second, where the ``torch.export`` path takes
several seconds for the same graph.

>>> import torch
>>> from rnnkit.models.classifier import TextClassifier
>>> model = TextClassifier(vocab_size=12, num_classes=3, cell="gru", hidden_dim=4, embed_dim=4,
...                        bidirectional=True)
>>> blob = export_bytes(model, "onnx")
>>> runner = OnnxRunner(blob)
>>> ids, lengths = torch.tensor([[5, 6, 7], [8, 0, 0]]), torch.tensor([3, 1])
>>> probs = runner(ids.numpy(), lengths.numpy())
>>> probs.shape
(2, 3)
>>> eager = torch.softmax(model.eval()(ids, lengths), dim=-1).detach().numpy()
>>> bool(abs(probs - eager).max() <= 1e-4)
True
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from ._io import atomic_write_bytes
from .errors import ConfigError, RunFolderError

logger = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "BACKENDS",
    "TOLERANCE",
    "ExportCheckError",
    "ExportResult",
    "ExportedClassifier",
    "OnnxRunner",
    "TorchScriptRunner",
    "ProbabilityModel",
    "export_model",
    "export_bytes",
    "check_export",
    "sample_texts",
    "load_exported",
    "load_predictor",
    "exported_from_run",
    "is_run_folder",
    "is_export",
    "find_export",
    "detect_format",
    "describe",
    "ExportError",
    "format_predictions",
    "pad_batch",
]

FORMATS = ("onnx", "torchscript")
BACKENDS = ("eager", "onnx", "torchscript")  # what `predict --backend` and `serve --backend` accept
TOLERANCE = 1e-4  # largest absolute probability difference to eager that --check accepts
ONNX_OPSET = 17
METADATA_KEY = "rnnkit"  # ONNX metadata_props key holding the export's description (JSON)
TORCHSCRIPT_EXTRA = "rnnkit.json"  # the TorchScript archive's extra file holding the same JSON
LEGACY_INFO = "export.json"  # written beside the model by rnnkit before exports described themselves
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
INPUTS = ("ids", "lengths")
OUTPUT = "probs"
BATCH_SIZE = 256  # texts per forward pass of an exported model
BATCH_TOKENS = 16_384  # padded tokens per forward pass (long texts go in smaller batches)
_EXAMPLE_LENGTHS = (3, 1, 2)  # the traced batch is ragged, so the padded (exportable) path is recorded


class ExportCheckError(RuntimeError):
    """The exported model's probabilities differ from eager PyTorch's by more than the tolerance."""


class ExportError(RunFolderError):
    """An export that cannot be used: not an export, another format than asked for, corrupt, or its
    embedded vocabulary and labels do not match the model (printed as one line, exit code 2)."""


class ProbabilityModel(nn.Module):
    """A classifier as the export sees it: ``(ids, lengths) -> probabilities``.

    Args:
        classifier: a :class:`~rnnkit.models.classifier.TextClassifier` (any module mapping
            ``(ids, lengths)`` to logits).

    Shapes:
        ids ``[N, L]`` int64 (padding after each text), lengths ``[N]`` int64 in ``1..L``
        → probs ``[N, C]`` float32.
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(ids, lengths).float(), dim=-1)  # (N, C)


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        path: the model file.
        format: ``"onnx"`` or ``"torchscript"``.
        files: every file written (model, vocab.json, labels.json, export.json).
        max_abs_diff: the largest probability difference to eager on the check texts (None: not checked).
        checked_texts: how many texts the check ran on.
    """

    path: Path
    format: str
    files: list[Path]
    max_abs_diff: float | None = None
    checked_texts: int = 0


# ---------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------
def _example_inputs(vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A small ragged batch ``(ids [3, 3], lengths [3])`` to trace with."""
    lengths = torch.tensor(_EXAMPLE_LENGTHS)
    token = min(2, vocab_size - 1)  # a real token (ids 0 and 1 are padding and unknown)
    ids = torch.full((len(_EXAMPLE_LENGTHS), max(_EXAMPLE_LENGTHS)), token, dtype=torch.int64)
    ids[torch.arange(ids.shape[1])[None, :] >= lengths[:, None]] = 0
    return ids, lengths


def export_bytes(model: nn.Module, format: str = "onnx", metadata: dict[str, Any] | None = None) -> bytes:
    """The exported model file's bytes, traced on CPU in eval mode.

    Args:
        model: a :class:`~rnnkit.models.classifier.TextClassifier` (its ``embedding`` gives the
            vocabulary size).
        format: ``"onnx"`` or ``"torchscript"``.
        metadata: the description to embed (:func:`describe`); None embeds nothing.

    Returns:
        An ONNX model (inputs ``ids``, ``lengths``; output ``probs``), or a TorchScript archive
        (``torch.jit.load`` it and call ``module(ids, lengths)``).

    Raises:
        ConfigError: an unknown format.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {format!r}")
    # A copy: tracing needs the model on the CPU in eval mode, and the caller's model stays as it was.
    wrapped = ProbabilityModel(copy.deepcopy(model)).to("cpu").eval()
    example = _example_inputs(model.embedding.num_embeddings)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about every Python int it meets; the dynamic-shape test proves none matter.
        warnings.simplefilter("ignore")
        if format == "onnx":
            torch.onnx.export(
                wrapped,
                example,
                buffer,
                dynamo=False,
                input_names=list(INPUTS),
                output_names=[OUTPUT],
                dynamic_axes={
                    "ids": {0: "batch", 1: "length"},
                    "lengths": {0: "batch"},
                    OUTPUT: {0: "batch"},
                },
                opset_version=ONNX_OPSET,
            )
        else:
            traced = torch.jit.trace(wrapped, example, check_trace=False)
            extra = {} if metadata is None else {TORCHSCRIPT_EXTRA: json.dumps(metadata, ensure_ascii=False)}
            torch.jit.save(traced, buffer, _extra_files=extra)
    if format == "onnx" and metadata is not None:
        return embed_onnx_metadata(buffer.getvalue(), metadata)
    return buffer.getvalue()


def embed_onnx_metadata(blob: bytes, metadata: dict[str, Any]) -> bytes:
    """The ONNX model ``blob`` with ``metadata`` as JSON under ``metadata_props["rnnkit"]``."""
    import onnx

    proto = onnx.load_from_string(blob)
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata, ensure_ascii=False)
    return proto.SerializeToString()


def _fingerprint(vocab: Any, labels: Sequence[str]) -> str:
    """SHA-256 of the vocabulary and labels (canonical JSON): what loading checks the pair against."""
    import hashlib

    text = json.dumps({"vocab": vocab, "labels": list(labels)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe(loaded: Any, format: str, check: dict[str, Any] | None = None) -> dict[str, Any]:
    """The description an export embeds: format, inputs/outputs, vocabulary, labels, config, check."""
    vocab = loaded.encoder.to_dict()
    labels = list(loaded.labels)
    return {
        "format": format,
        "task": "classify",
        "rnnkit_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "opset": ONNX_OPSET if format == "onnx" else None,
        "inputs": {
            "ids": "[batch, length] int64, padded with 0 after each text",
            "lengths": "[batch] int64, each text's length in tokens (1..length)",
        },
        "outputs": {OUTPUT: "[batch, classes] float32 probabilities, in labels order"},
        "labels": labels,
        "vocab": vocab,
        "sha256": _fingerprint(vocab, labels),
        "source_run": str(getattr(loaded, "path", "") or ""),
        "config": loaded.config.to_dict(),
        "check": check,
    }


def export_model(
    run: str | os.PathLike | Any,
    out: str | os.PathLike,
    *,
    format: str = "onnx",
    check: bool = False,
    texts: Sequence[str] | None = None,
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Export a trained classifier to one self-describing file (vocabulary and labels embedded).

    Args:
        run: a run folder, or a run loaded by :func:`rnnkit.load`.
        out: the model file to write (``.onnx`` for ONNX, ``.pt`` for TorchScript).
        format: ``"onnx"`` or ``"torchscript"``.
        check: run the export on ``texts`` (default: :func:`sample_texts`) and raise unless every
            probability is within ``tolerance`` of eager PyTorch's.
        texts: texts to check on.
        tolerance: the largest absolute probability difference ``check`` accepts.

    Returns:
        An :class:`ExportResult`.

    Raises:
        RunFolderError: ``run`` is not a complete classifier run folder.
        ConfigError: an unknown format, a file name that does not fit it, or a run whose task cannot
            be exported.
        ExportCheckError: ``check`` found a larger difference (the file is written all the same, its
            embedded check saying it failed, for inspection).
    """
    if format not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {format!r}")
    out = Path(out)
    if out.is_dir():
        raise ConfigError(
            f"--out must be a file path (e.g. {out / ('model' + SUFFIXES[format])}), got the folder {out}"
        )
    if out.suffix.lower() != SUFFIXES[format]:
        raise ConfigError(f"a {format} export is a {SUFFIXES[format]} file; got --out {out}")
    loaded = _load_run(run)
    result = ExportResult(out, format, [out])
    check_info = None
    if check:
        runner = _RUNNERS[format](export_bytes(loaded.model, format))
        exported = ExportedClassifier(
            runner, loaded.encoder, loaded.labels, backend=format, config=loaded.config
        )
        texts = list(texts) if texts is not None else sample_texts(loaded.encoder)
        diff = check_export(exported, loaded, texts, tolerance=None)
        result.max_abs_diff, result.checked_texts = diff, len(texts)
        passed = diff <= tolerance
        check_info = {"max_abs_diff": diff, "tolerance": tolerance, "texts": len(texts), "passed": passed}
    atomic_write_bytes(out, export_bytes(loaded.model, format, describe(loaded, format, check_info)))
    if check and result.max_abs_diff > tolerance:
        raise ExportCheckError(
            f"{out}: the {format} export differs from eager PyTorch by {result.max_abs_diff:.3g} "
            f"(largest absolute probability difference on {len(texts)} texts), more than {tolerance:g}"
        )
    return result


def _load_run(run: Any):
    """A loaded classifier run on CPU (the export is traced there)."""
    if isinstance(run, (str, os.PathLike)):
        from .api import load

        run = load(run, device="cpu")
    if getattr(run, "labels", None) is None or not hasattr(run, "model"):
        raise ConfigError(
            f"only classifier runs can be exported, got {type(run).__name__} "
            f"(task {getattr(getattr(run, 'config', None), 'task', '?')!r})"
        )
    return run


# ---------------------------------------------------------------------------------------------------
# the equality check
# ---------------------------------------------------------------------------------------------------
def sample_texts(encoder: Any, *, seed: int = 0) -> list[str]:
    """Texts for the equality check: ragged lengths from 1 to 34 tokens, an empty text and unicode.

    The words are drawn (seeded) from the vocabulary, so the model sees known tokens.

    >>> from rnnkit.data import TextEncoder
    >>> texts = sample_texts(TextEncoder.fit(["a b c d"]))
    >>> [len(t.split()) for t in texts[:6]]
    [1, 2, 3, 5, 8, 1]
    """
    rng = random.Random(seed)
    vocab = encoder.vocab
    specials = {vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id}
    ids = [i for i in range(len(vocab)) if i not in specials] or [vocab.unk_id]
    lengths = (1, 2, 3, 5, 8, 1, 13, 21, 2, 34)
    texts = [encoder.decode([rng.choice(ids) for _ in range(n)]) for n in lengths]
    return [t for t in texts if t.strip()] + ["", "naïve café 東京 🙂 — ünïcödé"]


def check_export(
    exported: ExportedClassifier, eager: Any, texts: Sequence[str], *, tolerance: float | None = TOLERANCE
) -> float:
    """The largest absolute probability difference between an export and eager PyTorch.

    Both run the same padded batches: all ``texts`` at once in the given (unsorted) order, so
    short texts sit beside long ones, and then each text alone.

    Args:
        exported: the loaded export (:func:`load_exported`).
        eager: the loaded run (:func:`rnnkit.load`), whose ``model`` is the reference.
        texts: texts to compare on.
        tolerance: raise :class:`ExportCheckError` above it (None: only measure).

    Returns:
        The largest absolute difference over every text and class.
    """
    if not texts:
        raise ValueError("check_export needs at least one text, got none")
    encoded = exported.encode(texts)
    batches = [pad_batch(encoded)] + [pad_batch([ids]) for ids in encoded]
    # All eager batches first, then all exported ones: the two thread pools never take turns.
    expected = _eager_probabilities(eager.model, batches)
    got = [exported.run(ids, lengths) for ids, lengths in batches]
    worst = max(float(np.abs(g - e).max()) for g, e in zip(got, expected, strict=True))
    if tolerance is not None and worst > tolerance:
        raise ExportCheckError(
            f"the {exported.backend} model differs from eager PyTorch by {worst:.3g} "
            f"(largest absolute probability difference on {len(texts)} texts), more than {tolerance:g}"
        )
    return worst


def _eager_probabilities(model: nn.Module, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Eager PyTorch's probabilities ``[N, C]`` for each padded ``(ids, lengths)`` batch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = []
        with torch.inference_mode():
            for ids, lengths in batches:
                logits = model(torch.from_numpy(ids).to(device), torch.from_numpy(lengths))  # (N, C)
                out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
        return out
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------------------------------
# running an export
# ---------------------------------------------------------------------------------------------------
class OnnxRunner:
    """ONNX Runtime on one exported model: ``runner(ids, lengths) -> probs`` (NumPy in and out).

    Args:
        model: the ``.onnx`` file's path or bytes.
        threads: intra-op threads for ONNX Runtime (None: its default, every core).
    """

    backend = "onnx"

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.metadata = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)

    def __call__(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        # A model that ignores lengths (use_lengths=False) has no `lengths` input after export.
        feeds = {"ids": ids, "lengths": lengths}
        return self.session.run([OUTPUT], {name: feeds[name] for name in self.input_names})[0]


class TorchScriptRunner:
    """A TorchScript export: ``runner(ids, lengths) -> probs`` (NumPy in and out).

    Args:
        model: the file's path or bytes.
        threads: unused (torch's thread count is process-wide; set it with ``torch.set_num_threads``).
    """

    backend = "torchscript"

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None):
        source = io.BytesIO(model) if isinstance(model, bytes) else str(model)
        extra = {TORCHSCRIPT_EXTRA: ""}
        with warnings.catch_warnings():
            # torch 2.13 marks TorchScript deprecated in favour of torch.export; the format still loads
            # and runs, and it is the one a C++ or mobile runtime without Python reads.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(source, map_location="cpu", _extra_files=extra).eval()
        text = extra[TORCHSCRIPT_EXTRA]
        self.metadata = (text.decode("utf-8") if isinstance(text, bytes) else text) or None

    def __call__(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(ids), torch.from_numpy(lengths)).numpy()


_RUNNERS: dict[str, Callable[..., Any]] = {"onnx": OnnxRunner, "torchscript": TorchScriptRunner}


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(ids [N, L] int64, lengths [N] int64)`` from id lists (each at least one id long).

    >>> ids, lengths = pad_batch([[4, 5, 6], [7]])
    >>> ids.tolist(), lengths.tolist()
    ([[4, 5, 6], [7, 0, 0]], [3, 1])
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    return ids, lengths


class ExportedClassifier:
    """An exported classifier with its vocabulary and labels: ``predict(texts)`` like :func:`rnnkit.load`'s.

    Attributes:
        path: the model file (None when built from bytes).
        backend: ``"onnx"`` or ``"torchscript"``.
        encoder: the :class:`~rnnkit.data.TextEncoder` from ``vocab.json``.
        labels: class names in index order.
        config: the run's :class:`~rnnkit.config.Config` (from ``export.json``), or None.
        run: the ``runner(ids, lengths) -> probs`` function (NumPy arrays).
    """

    task = "classify"

    def __init__(
        self,
        run: Callable[[np.ndarray, np.ndarray], np.ndarray],
        encoder: Any,
        labels: Sequence[str],
        *,
        backend: str,
        config: Any = None,
        path: Path | None = None,
    ):
        self.run = run
        self.encoder = encoder
        self.labels = list(labels)
        self.backend = backend
        self.config = config
        self.path = path
        self.max_len = config.data.max_len if config is not None else None

    def __repr__(self) -> str:
        where = f"{str(self.path)!r}, " if self.path else ""
        return f"ExportedClassifier({where}backend={self.backend!r}, labels={len(self.labels)})"

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, whole (the model reads a long one's head and tail); an empty encoding becomes
        one ``<unk>``."""
        unk = self.encoder.vocab.unk_id
        return [ids or [unk] for ids in self.encoder.encode_many(list(texts))]  # the model cuts long texts

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities ``[n, C]`` in the texts' order (run sorted by length, in bounded batches)."""
        encoded = self.encode(texts)
        probs = np.empty((len(encoded), len(self.labels)), dtype=np.float32)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        start = 0
        while start < len(order):
            end = start + 1
            while (
                end < len(order)
                and end - start < BATCH_SIZE
                and (end - start + 1) * len(encoded[order[end]]) <= BATCH_TOKENS
            ):
                end += 1
            chosen = order[start:end]
            probs[chosen] = self.run(*pad_batch([encoded[i] for i in chosen]))
            start = end
        return probs

    def predict(self, texts: str | Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """Label and probabilities for each text; the same dicts as ``rnnkit.load(run).predict``.

        Args:
            texts: one text or a list of texts.
            top_k: keep only the ``top_k`` most likely labels in ``probs`` (None: all labels).

        Returns:
            One dict per text: ``{"text", "label", "probability", "probs": {label: p}}``, ``probs``
            from most to least likely.
        """
        if isinstance(texts, str):
            texts = [texts]
        if top_k is not None and top_k < 1:
            raise ConfigError(f"--top-k must be ≥ 1, got {top_k}")
        if not texts:
            return []
        return format_predictions(texts, self.predict_proba(texts), self.labels, top_k)


def format_predictions(
    texts: Sequence[str], probs: np.ndarray, labels: Sequence[str], top_k: int | None = None
) -> list[dict[str, Any]]:
    """``{"text", "label", "probability", "probs"}`` per text, ``probs`` most likely first.

    >>> format_predictions(["hi"], np.array([[0.2, 0.8]]), ["a", "b"], top_k=1)
    [{'text': 'hi', 'label': 'b', 'probability': 0.8, 'probs': {'b': 0.8}}]
    """
    k = len(labels) if top_k is None else min(top_k, len(labels))
    results = []
    for text, row in zip(texts, probs, strict=True):
        best = np.argsort(-row, kind="stable")[:k]
        ranked = {labels[i]: round(float(row[i]), 6) for i in best}
        results.append(
            {
                "text": text,
                "label": labels[best[0]],
                "probability": round(float(row[best[0]]), 6),
                "probs": ranked,
            }
        )
    return results


def detect_format(path: str | os.PathLike) -> str:
    """``"torchscript"`` (a zip archive) or ``"onnx"`` (anything else), from the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    return "torchscript" if head == b"PK\x03\x04" else "onnx"


def find_export(path: str | os.PathLike) -> Path:
    """The export file at ``path``: the file itself, or the one ``.onnx`` / ``.pt`` file in a folder.

    Raises:
        ExportError: nothing there, an export from before exports described themselves, or a folder
            holding several model files.
    """
    path = Path(path)
    if path.is_dir():
        if (path / LEGACY_INFO).is_file():
            raise ExportError(
                f"{path}: an export written by an older rnnkit (vocab.json and labels.json beside the model "
                f"can be mixed up); export the run again with `rnnkit export RUN --out FILE`"
            )
        found = sorted(p for p in path.iterdir() if p.suffix in (".onnx", ".pt") and p.is_file())
        if len(found) != 1:
            names = ", ".join(p.name for p in found)
            what = f"{len(found)} model files ({names})" if found else "no .onnx or .pt file"
            raise ExportError(f"{path}: expected one exported model file, found {what}; name the file")
        return found[0]
    if not path.is_file():
        raise ExportError(f"{path}: exported model not found")
    return path


def is_export(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like an export (a file, or a folder without a run's ``config.json``)."""
    path = Path(path)
    return path.is_file() or (path.is_dir() and not is_run_folder(path) and any(
        p.suffix in (".onnx", ".pt") for p in path.iterdir()))  # fmt: skip


_NAMES = {"onnx": "an ONNX", "torchscript": "a TorchScript"}


def load_exported(
    path: str | os.PathLike, *, backend: str | None = None, threads: int | None = None
) -> ExportedClassifier:
    """Load an export written by :func:`export_model`: the model file, or a folder holding one.

    The format is read from the file's first bytes and checked against ``backend`` before any loader
    runs; then the embedded vocabulary and labels are checked against their SHA-256 and the model's
    number of classes.

    Args:
        path: the ``.onnx`` / TorchScript file, or its folder.
        backend: the format expected (None: whichever the file is).
        threads: ONNX Runtime intra-op threads (None: its default).

    Raises:
        ExportError: missing, another format than ``backend``, unreadable, without rnnkit's embedded
        description, or a vocabulary or labels that do not match the model.
        ConfigError: an unknown backend.
    """
    from .config import Config
    from .data import TextEncoder

    if backend is not None and backend not in FORMATS:
        raise ConfigError(f"backend must be one of {', '.join(FORMATS)} for an export, got {backend!r}")
    path = find_export(path)
    try:
        format = detect_format(path)
    except OSError as e:
        raise ExportError(f"{path}: cannot read the export ({e.strerror or e})") from None
    if backend is not None and format != backend:
        raise ExportError(f"{path} is {_NAMES[format]} export, but --backend {backend} was given")
    if format == "onnx":
        from .errors import require_extra

        require_extra("export", "onnxruntime")
    try:
        runner = _RUNNERS[format](path, threads=threads)
    except Exception as e:  # ONNX Runtime and TorchScript raise their own types for a corrupt file
        detail = " ".join(str(e).split())[:200]
        raise ExportError(f"{path}: not a readable {format} model ({type(e).__name__}: {detail})") from None
    info = _metadata(runner.metadata, path)
    try:
        encoder = TextEncoder.from_dict(info["vocab"])
        config = Config.from_dict(info["config"]) if isinstance(info.get("config"), dict) else None
    except (ValueError, TypeError, KeyError) as e:
        raise ExportError(f"{path}: the embedded vocabulary or config is unreadable ({e})") from None
    exported = ExportedClassifier(runner, encoder, info["labels"], backend=format, config=config, path=path)
    _check_classes(exported)
    return exported


def _metadata(text: str | None, path: Path) -> dict[str, Any]:
    """The embedded description, checked: labels a list of names, and vocabulary + labels as hashed."""
    if not text:
        raise ExportError(
            f"{path}: no rnnkit description embedded (exported by an older rnnkit or another tool); "
            f"export the run again with `rnnkit export`"
        )
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: the embedded description is not JSON ({e})") from None
    labels = info.get("labels") if isinstance(info, dict) else None
    if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels) or "vocab" not in info:
        raise ExportError(f"{path}: the embedded description lacks a vocabulary or a list of labels")
    if info.get("sha256") != _fingerprint(info["vocab"], labels):
        raise ExportError(
            f"{path}: the embedded vocabulary and labels do not match the checksum written with the model "
            f"(the file was changed after export); export the run again"
        )
    return info


def _check_classes(exported: ExportedClassifier) -> None:
    """The model's output has one probability per label (run once on one unknown token)."""
    try:
        probs = exported.run(*pad_batch([[exported.encoder.vocab.unk_id]]))
    except Exception as e:
        raise ExportError(f"{exported.path}: the model does not run ({type(e).__name__})") from None
    if probs.shape != (1, len(exported.labels)):
        raise ExportError(
            f"{exported.path}: the model gives {probs.shape[-1]} probabilities, but its labels name "
            f"{len(exported.labels)} classes"
        )


def load_predictor(
    path: str | os.PathLike, backend: str = "eager", *, device: str = "auto", threads: int | None = None
) -> Any:
    """Whatever can ``predict(texts, top_k)``: a run on eager PyTorch, ONNX Runtime or TorchScript.

    Args:
        path: a run folder, or an export (its file or folder). A run folder given to the ``onnx`` /
            ``torchscript`` backends is exported in memory and checked against eager on
            :func:`sample_texts` first.
        backend: ``"eager"``, ``"onnx"``, ``"torchscript"``, or None: eager for a run folder, the
            export's own format for an export.
        device: eager's device (exports run on the CPU).
        threads: ONNX Runtime intra-op threads.

    Returns:
        A :class:`~rnnkit.api.ClassifierRun` (or another task's run) for eager, else an
        :class:`ExportedClassifier`.

    Raises:
        ConfigError: an unknown backend; RunFolderError: nothing loadable at ``path``;
        ExportCheckError: the in-memory export differs from eager.
    """
    from .api import load

    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if is_run_folder(path):
        if backend in (None, "eager"):
            return load(path, device=device)
        return exported_from_run(load(path, device="cpu"), backend, threads=threads)
    if backend == "eager" and is_export(path):
        exported = find_export(path)
        raise ConfigError(
            f"{exported} is {_NAMES[detect_format(exported)]} export; eager PyTorch runs a run folder "
            f"(leave --backend out to run the export as it is)"
        )
    if not Path(path).exists() or (backend is None and not is_export(path)):
        return load(path, device=device)  # its error says what a run folder needs
    return load_exported(path, backend=backend, threads=threads)


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a training run folder rather than an export."""
    from .api import is_run

    return is_run(path)


def exported_from_run(
    run: Any, backend: str, *, threads: int | None = None, tolerance: float = TOLERANCE
) -> ExportedClassifier:
    """Export a loaded run in memory and load it on ``backend``, checked against eager first.

    Args:
        run: a classifier run from :func:`rnnkit.load`.
        backend: ``"onnx"`` or ``"torchscript"``.
        threads: ONNX Runtime intra-op threads.
        tolerance: see :func:`check_export`.

    Raises:
        ExportCheckError: the export differs from eager on :func:`sample_texts`.
    """
    run = _load_run(run)
    if backend not in _RUNNERS:
        raise ConfigError(f"backend must be one of {', '.join(FORMATS)} to export, got {backend!r}")
    runner = _RUNNERS[backend](export_bytes(run.model, backend), threads=threads)
    exported = ExportedClassifier(runner, run.encoder, run.labels, backend=backend, config=run.config)
    check_export(exported, run, sample_texts(run.encoder), tolerance=tolerance)
    return exported
