"""What every task's pipeline shares: starting a run folder, naming the device, checking loaded weights."""

from __future__ import annotations

import logging

import torch

from .. import __version__
from ..config import Config
from ..errors import RunFolderError
from ..training import checkpoint as ck
from ..training.checkpoint import RunFolder

logger = logging.getLogger("rnnkit.api")

_LEFT_BY_A_RUN = (ck.WEIGHTS, ck.TRAINER_STATE, ck.METRICS, ck.REPORT, ck.CURVES, ck.CONFUSION, ck.LABELS)


def start_run_folder(run: RunFolder, cfg: Config, encoder, labels=None) -> None:
    """Write config, vocab (and labels, for classifiers); remove what an earlier run in the folder left."""
    if run.exists(ck.CONFIG):
        logger.warning(f"replacing the run in {run.path}")
    run.remove_temp_files()
    for name in _LEFT_BY_A_RUN:
        run.file(name).unlink(missing_ok=True)
    run.write_json(ck.CONFIG, {"rnnkit_version": __version__, "task": cfg.task, "config": cfg.to_dict()})
    run.write_json(ck.VOCAB, encoder.to_dict())
    if labels is not None:
        run.write_json(ck.LABELS, labels.names)


def device_name(device: torch.device, cfg: Config) -> str:
    """``"cuda (NVIDIA H100 …)"`` or ``"cpu (2 threads)"``, for reports."""
    from ..training.loop import cpu_threads

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = cpu_threads(cfg.train)
    return f"cpu ({n} thread{'' if n == 1 else 's'})"


def check_weights(
    run: RunFolder, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], described: str
) -> None:
    """Raise :class:`RunFolderError` unless ``found`` has exactly ``expected``'s names and shapes.

    ``described`` names the other files the shapes come from, e.g. ``"vocab.json (812 tokens)"``.
    """
    from ..limits import check_shapes

    shapes = {name: list(tensor.shape) for name, tensor in expected.items()}
    check_shapes(run.file(ck.WEIGHTS), shapes, {name: list(t.shape) for name, t in found.items()}, described)


def build_checked_model(run: RunFolder, build, device: torch.device, described: str):
    """The model ``build()`` makes, with the run folder's weights — checked before anything is allocated.

    The weights file is untrusted input: its header's names, shapes and dtypes are compared with the model
    ``config.json`` describes (built on the ``meta`` device, no memory), and the memory that model needs
    with what is available, before the real model is built; after loading, every tensor must be finite.
    ``described`` names the other files the shapes come from, e.g. ``"vocab.json (812 tokens)"``.
    """
    from ..limits import (
        check_finite,
        check_model_memory,
        check_weights_header,
        model_on_meta,
        parameter_count,
    )

    try:
        expected = model_on_meta(build).state_dict()
    except (ValueError, TypeError) as e:  # the settings in config.json describe no model
        raise RunFolderError(f"{run.file(ck.CONFIG)}: describes a model that cannot be built ({e})") from None
    check_weights_header(run.file(ck.WEIGHTS), expected, described)
    check_model_memory(parameter_count(expected), training=False, device=device)
    model = build()
    weights = run.load_weights()
    check_weights(run, model.state_dict(), weights, described)
    check_finite(run.file(ck.WEIGHTS), weights)
    model.load_state_dict(weights)
    return model


def check_trainable(build, device: torch.device) -> None:
    """Raise :class:`~rnnkit.errors.ConfigError` if the model ``build()`` makes cannot be trained in the
    memory available (counted on the ``meta`` device: nothing is allocated)."""
    from ..limits import check_model_memory, model_on_meta, parameter_count

    parameters = parameter_count(model_on_meta(build).state_dict())
    hint = "lower --hidden-dim, --embed-dim, --layers or --max-vocab"
    check_model_memory(parameters, training=True, device=device, hint=hint)


def begin_training(run: RunFolder, cfg: Config, encoder, labels=None, *, resume: bool) -> None:
    """The moment a run folder changes, once everything has been checked and training is about to start:
    a new run replaces the folder's files; a resumed one only loses the temp files a kill left."""
    if resume:
        run.remove_temp_files()
    else:
        start_run_folder(run, cfg, encoder, labels)


def notify(callbacks, hook: str, *args) -> None:
    """Call ``hook(*args)`` on every callback that has it (the progress display's on_stage / on_data)."""
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if method is not None:
            method(*args)


def vectors_report(info) -> dict:
    """What ``report.json["vectors"]`` says about pretrained vectors loaded into a model's embedding."""
    return {
        "path": info.path,
        "coverage": round(info.coverage, 4),
        "token_coverage": round(info.token_coverage or 0.0, 4),
        "found": info.found,
        "words": info.words,
    }
