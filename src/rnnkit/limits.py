"""Checks that run before anything is allocated or written: the memory a model needs, the output location,
and the weights file of a run folder read as untrusted input.

A setting can be in range and still describe a model this machine cannot hold (``--hidden-dim 65536
--layers 64``); a run folder's ``config.json`` can say anything. These checks turn both into one clear
:class:`~rnnkit.errors.InputError` before a single large tensor is built:

- :func:`model_on_meta` builds a model on PyTorch's ``meta`` device (shapes only, no memory) so its
  parameter count and expected weights can be known for free;
- :func:`check_model_memory` compares parameters × bytes with the memory available;
- :func:`check_out_dir` makes sure ``--out`` can be written before a run folder is replaced;
- :func:`read_safetensors_header` reads a weights file's names, dtypes and shapes without its tensors,
  so :func:`check_weights_header` can compare them with the model ``config.json`` describes.

>>> human_bytes(3 * 2**30)
'3.0 GiB'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, RunFolderError, check_text  # noqa: F401 (check_text: one of the limits)

# Bytes per parameter while training with AdamW in float32: weights, gradients, two moments, and the copy
# of the best weights the Trainer keeps.
TRAIN_BYTES_PER_PARAMETER = 5 * 4
# Loading a run: the weights file's bytes and the model's tensors.
LOAD_BYTES_PER_PARAMETER = 2 * 4
MAX_HEADER_BYTES = 100 * 2**20  # a safetensors header larger than this is not a weights file of ours


def human_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory this process may still use: the smaller of the machine's available memory
    (``/proc/meminfo``) and the container's limit (cgroup), or None where neither can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < 2**60:
                used = int(Path(usage_file).read_text().strip())
                found.append(max(0, int(limit) - used))
                break
        except (OSError, ValueError):
            continue
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(found)


def model_on_meta(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Run ``build()`` on the ``meta`` device: the model's shapes and dtypes without allocating its memory.

    >>> m = model_on_meta(lambda: torch.nn.Linear(100_000, 100_000))
    >>> sum(p.numel() for p in m.parameters()), m.weight.device.type
    (10000100000, 'meta')
    """
    with torch.device("meta"):
        return build()


def check_model_memory(
    parameters: int, *, training: bool, device: torch.device | None = None, hint: str = ""
) -> None:
    """Raise :class:`~rnnkit.errors.ConfigError` if a model of ``parameters`` parameters cannot fit.

    Args:
        parameters: the model's parameter count (see :func:`model_on_meta`).
        training: training needs weights, gradients, optimizer moments and a best copy
            (:data:`TRAIN_BYTES_PER_PARAMETER`); loading, the file and the weights.
        device: on CUDA the device's free memory is checked as well.
        hint: what to change, appended to the message (e.g. ``"lower --hidden-dim or --layers"``).

    >>> check_model_memory(1000, training=True)
    >>> check_model_memory(10**15, training=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rnnkit.errors.ConfigError: the model has 1,000,000,000,000,000 parameters and needs about 17.8 PiB ...
    """
    per = TRAIN_BYTES_PER_PARAMETER if training else LOAD_BYTES_PER_PARAMETER
    need = parameters * per
    doing = "to train" if training else "to load"
    where: list[tuple[str, int | None]] = [("this machine", available_memory())]
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # a device that cannot answer is checked when used
            where.append((f"{device}", torch.cuda.mem_get_info(device)[0]))
    for name, free in where:
        if free is not None and need > free:
            raise ConfigError(
                f"the model has {parameters:,} parameters and needs about {human_bytes(need)} {doing}, "
                f"but {name} has {human_bytes(free)} available" + (f"; {hint}" if hint else "")
            )


def check_out_dir(path: str | os.PathLike) -> None:
    """Raise :class:`~rnnkit.errors.ConfigError` unless a run folder can be written at ``path``.

    Nothing is created or changed: the nearest existing folder on the way must be a writable folder
    (tested with a temporary file, removed at once), and no part of the path may be a file.
    """
    out = Path(path)
    if "\x00" in str(out):
        raise ConfigError(f"--out {str(out)!r}: a path cannot contain a NUL character")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    probe = out
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"--out {out}: {probe} is a broken symbolic link")
        parent = probe.parent
        if parent == probe:
            break
        probe = parent
    if not probe.is_dir():
        raise ConfigError(f"--out {out}: {probe} is a file, so no folder can be made under it")
    try:
        fd, name = tempfile.mkstemp(prefix=".rnnkit-probe.", suffix=".tmp", dir=probe)
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write in {probe} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(name)


# --- weights files as untrusted input ----------------------------------------------------------------------
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors_header(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The tensors a ``.safetensors`` file holds, ``name → {"dtype": "F32", "shape": [..]}``, read from its
    header alone (no tensor is loaded). A damaged or foreign file raises :class:`RunFolderError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise RunFolderError(f"{path}: corrupted weights file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise RunFolderError(f"{path}: corrupted weights file (a header of {n:,} bytes in {size:,})")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing from the run folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise RunFolderError(f"{path}: corrupted weights file ({type(e).__name__})") from None
    if not isinstance(header, dict):
        raise RunFolderError(f"{path}: corrupted weights file (header is not an object)")
    tensors: dict[str, dict[str, Any]] = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        ok = (
            isinstance(info, dict)
            and isinstance(info.get("shape"), list)
            and isinstance(info.get("dtype"), str)
        )
        ok = ok and all(isinstance(d, int) and 0 <= d < 2**40 for d in info["shape"])
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        ok = (
            ok
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        )
        if not ok:
            raise RunFolderError(f"{path}: corrupted weights file (bad entry for {str(name)[:60]!r})")
        end = max(end, offsets[1])
        tensors[name] = {"dtype": info["dtype"], "shape": info["shape"]}
    if 8 + n + end > size:
        raise RunFolderError(
            f"{path}: truncated weights file ({size:,} bytes, the header needs {8 + n + end:,})"
        )
    return tensors


def check_shapes(where, expected: dict[str, list[int]], found: dict[str, list[int]], described: str) -> None:
    """Raise :class:`RunFolderError` unless ``found`` has exactly ``expected``'s names and shapes.

    ``described`` names the other files the shapes come from, e.g. ``"vocab.json (812 tokens)"``.
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise RunFolderError(
            f"{where}: does not match config.json (missing: {', '.join(missing[:5]) or 'none'}; "
            f"unexpected: {', '.join(str(u)[:60] for u in unexpected[:5]) or 'none'})"
        )
    for name, shape in expected.items():
        if list(found[name]) != list(shape):
            raise RunFolderError(
                f"{where}: {name} has shape {list(found[name])}, but config.json and {described} "
                f"need {list(shape)}"
            )


def check_weights_header(path: str | os.PathLike, expected: dict[str, torch.Tensor], described: str) -> None:
    """Compare a weights file's header with the state dict a config describes (on ``meta`` is enough):
    same names, shapes and dtypes. Raises :class:`RunFolderError` naming the first difference."""
    found = read_safetensors_header(path)
    shapes = {name: list(tensor.shape) for name, tensor in expected.items()}
    check_shapes(path, shapes, {name: info["shape"] for name, info in found.items()}, described)
    for name, tensor in expected.items():
        info = found[name]
        want = _NAMES.get(tensor.dtype, str(tensor.dtype))
        if info["dtype"] != want:
            raise RunFolderError(f"{path}: {name} is stored as {info['dtype']}, expected {want}")


def check_finite(path: str | os.PathLike, weights: dict[str, torch.Tensor]) -> None:
    """Raise :class:`RunFolderError` if a floating-point tensor holds NaN or infinity."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RunFolderError(f"{path}: {name} holds NaN or infinite values")


def parameter_count(expected: dict[str, torch.Tensor]) -> int:
    """Total elements of a state dict (works on ``meta`` tensors)."""
    return sum(math.prod(t.shape) for t in expected.values())
