"""Run folder I/O: every file a run writes, written atomically, read back with clear errors.

A run folder describes itself (config, vocabulary, labels, weights) and holds no pickles:
weights are safetensors, everything else JSON, and ``trainer_state.pt`` — the optimizer and RNG
states needed by ``--resume`` — is loaded with ``torch.load(weights_only=True)``.

>>> import tempfile
>>> run = RunFolder(tempfile.mkdtemp())
>>> run.write_json(CONFIG, {"task": "classify"})
>>> run.read_json(CONFIG)
{'task': 'classify'}
>>> run.read_json(LABELS)
Traceback (most recent call last):
...
rnnkit.errors.RunFolderError: .../labels.json: missing from the run folder
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..errors import RunFolderError

CONFIG = "config.json"
VOCAB = "vocab.json"
LABELS = "labels.json"
WEIGHTS = "model.safetensors"
TRAINER_STATE = "trainer_state.pt"
METRICS = "metrics.jsonl"
REPORT = "report.json"
CURVES = "curves.png"
CONFUSION = "confusion.png"


class RunFolder:
    """The files of one run, under ``path``.

    Args:
        path: the run folder (created on the first write).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """Path of one file of the run."""
        return self.path / name

    def exists(self, name: str) -> bool:
        """Whether the run holds file ``name``."""
        return self.file(name).is_file()

    def require(self, *names: str) -> None:
        """Raise :class:`RunFolderError` unless the folder exists and holds every file in ``names``."""
        if not self.path.is_dir():
            raise RunFolderError(f"{self.path}: run folder not found (`rnnkit train --out DIR` makes one)")
        missing = [n for n in names if not self.exists(n)]
        if missing:
            raise RunFolderError(f"{self.path}: not a complete run folder, missing {', '.join(missing)}")

    def remove_temp_files(self) -> list[str]:
        """Delete the ``.*.tmp`` files an interrupted atomic write left (a killed process cannot clean up);
        return their names. Called when a run starts or resumes, never by a command that only reads."""
        if not self.path.is_dir():
            return []
        removed = []
        for tmp in self.path.glob(".*.tmp"):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                removed.append(tmp.name)
        return removed

    # JSON ------------------------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> None:
        """Write ``obj`` as JSON, atomically."""
        atomic_write_json(self.file(name), obj)

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the run; a missing or unparsable file raises :class:`RunFolderError`."""
        path = self.file(name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing from the run folder") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunFolderError(f"{path}: corrupted JSON ({e})") from None
        except RecursionError:
            raise RunFolderError(f"{path}: corrupted JSON (nested too deeply)") from None
        except ValueError as e:  # e.g. an integer of over 4300 digits
            raise RunFolderError(f"{path}: corrupted JSON ({e})") from None

    # weights ---------------------------------------------------------------------------------------
    def save_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Write ``model.safetensors`` (tensors are copied to CPU and made contiguous)."""
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
        atomic_write_bytes(self.file(WEIGHTS), save_safetensors(tensors))

    def load_weights(self) -> dict[str, torch.Tensor]:
        """Read ``model.safetensors``; a missing or corrupted file raises :class:`RunFolderError`."""
        path = self.file(WEIGHTS)
        try:
            return load_safetensors(path.read_bytes())
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing from the run folder") from None
        except (SafetensorError, OSError, ValueError) as e:
            raise RunFolderError(f"{path}: corrupted weights file ({e})") from None

    # trainer state ---------------------------------------------------------------------------------
    def save_trainer_state(self, state: dict[str, Any]) -> None:
        """Write ``trainer_state.pt`` (tensors, numbers, strings, lists and dicts only)."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.file(TRAINER_STATE), buffer.getvalue())

    def load_trainer_state(self) -> dict[str, Any]:
        """Read ``trainer_state.pt`` with ``weights_only=True`` (no code runs on load)."""
        path = self.file(TRAINER_STATE)
        try:
            return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing, so there is nothing to resume") from None
        except Exception as e:  # torch raises several types for a damaged or foreign file
            raise RunFolderError(f"{path}: unreadable trainer state ({type(e).__name__}: {e})") from None

    # metrics ---------------------------------------------------------------------------------------
    def write_metrics(self, records: Iterable[dict[str, Any]]) -> None:
        """Rewrite ``metrics.jsonl`` with ``records``, one JSON object per line, atomically."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        atomic_write_text(self.file(METRICS), text)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (empty if the file does not exist yet)."""
        path = self.file(METRICS)
        if not path.is_file():
            return []
        records = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise RunFolderError(f"{path}:{number}: corrupted metrics line ({e})") from None
        return records
