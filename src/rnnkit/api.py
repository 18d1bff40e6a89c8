"""The Python API: ``rnnkit.train(...)`` trains into a run folder, ``rnnkit.load(run_dir)`` loads one back.

The command line is a thin shell over these two functions::

    run = rnnkit.train("news.csv", preset="default", out="runs/news")   # -> Path("runs/news")
    clf = rnnkit.load(run)
    clf.predict(["Stocks rallied as rates fell"], top_k=2)
    clf.evaluate("news_test.csv")["accuracy"]

``train`` dispatches on the task to a pipeline (:mod:`rnnkit.pipelines`) registered in :data:`PIPELINES`,
``load`` to a loader registered in :data:`LOADERS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .config import Config, resolve_config
from .errors import ConfigError, RunFolderError
from .pipelines.classify import ClassifierRun, load_classifier, train_classifier
from .pipelines.common import check_weights
from .pipelines.language_model import LanguageModelRun, load_language_model, train_language_model
from .training import checkpoint as ck
from .training.checkpoint import RunFolder

__all__ = [
    "train", "load", "is_run", "ClassifierRun", "LanguageModelRun", "check_weights", "PIPELINES", "LOADERS",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------------
def train(
    data: str | os.PathLike | None = None,
    *,
    preset: str | None = None,
    config: str | os.PathLike | dict | Config | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    callbacks: Sequence[Any] = (),
    progress: bool | Callable[[dict[str, Any]], Any] | Any = True,
    init_from: str | os.PathLike | None = None,
    **overrides: Any,
) -> Path:
    """Train a model and write its run folder; return the folder's path.

    Args:
        data: training data SPEC (a file, a class folder, or a registered name such as ``"default"``).
        preset: a preset name from :data:`rnnkit.config.PRESETS`.
        config: a JSON config file (or a run's ``config.json``), a dict, or a :class:`~rnnkit.config.Config`.
        out: the run folder (default ``runs/<preset or task>``). An existing run there is replaced,
            unless ``resume``.
        resume: continue the interrupted (or finished) run in ``out`` with its saved settings; ``epochs``,
            ``max_steps``, ``patience``, ``time_budget``, ``device`` and ``threads`` may change, so a
            finished run can be extended (``resume=True, epochs=8``).
        callbacks: progress hooks (see :class:`rnnkit.training.loop.Callback`).
        progress: True shows progress on standard error (a live bar on a terminal or in a notebook, one
            line per evaluation otherwise; :class:`rnnkit.progress.TrainProgress`); False shows nothing;
            a function is called with each step's logs (step, loss, lr, tokens_per_s, …); any other
            object is used as a callback.
        init_from: a trained run to start from: a classifier's weights, vocabulary, labels and model
            settings (fine-tuning on ``data``; labels new in ``data`` get new output rows), or a language
            model's (``rnnkit pretrain``) vocabulary, embedding and recurrent layers. See
            :mod:`rnnkit.pipelines.init_from`.
        **overrides: any setting by field name (``epochs=3``, ``hidden_dim=128``, ``valid="dev.csv"``).

    Returns:
        ``Path`` of the run folder.

    Raises:
        ConfigError: bad settings; DataError: bad data; RunFolderError: nothing to resume.
    """
    if data is not None:
        overrides["data"] = str(data)
    callbacks = [*callbacks, *_progress_callbacks(progress)]
    if isinstance(config, Config):
        cfg = resolve_config(preset=preset, config_dict=config.to_dict(), overrides=overrides)
    elif isinstance(config, dict):
        cfg = resolve_config(preset=preset, config_dict=config, overrides=overrides)
    else:
        cfg = resolve_config(preset=preset, config_file=config, overrides=overrides)
    if not resume:
        config_folder = Path(config).parent if isinstance(config, (str, os.PathLike)) else None
        cfg = _absolute_paths(cfg, config_folder, overrides)
    if init_from is not None and not resume:
        from .pipelines.init_from import with_source_settings

        if cfg.task != "classify":
            raise ConfigError(f"--init-from starts a classifier from a trained run, not --task {cfg.task}")
        if overrides.get("pretrain"):
            raise ConfigError("--pretrain trains the language model to start from; leave out --init-from")
        if cfg.train.pretrain:  # the preset's (ulmfit): the run starts from the given model instead
            cfg = resolve_config(config_dict=cfg.to_dict(), overrides={"pretrain": False})
        cfg = with_source_settings(cfg, read_config(RunFolder(init_from)), overrides)
    out_dir = Path(out) if out is not None else Path("runs") / (cfg.preset or cfg.task)
    from .limits import check_out_dir
    from .training import distributed

    if distributed.is_main_process():  # rank 0 alone writes the run folder
        check_out_dir(out_dir)  # before any data is read: a bad --out fails at once, harming nothing
        if not resume:
            _check_replaceable(out_dir)

    dist = distributed.init(cfg.train.device)  # one of several processes (torchrun): join the others
    try:
        if resume and dist is not None:  # rank 0 alone has the run folder
            cfg = dist.run_on_main(lambda: _resume_config(out_dir, cfg, overrides))
        elif resume:
            cfg = _resume_config(out_dir, cfg, overrides)
        if cfg.task not in PIPELINES:
            raise ConfigError(f"task {cfg.task!r} is not available in this installation")
        if dist is not None and cfg.task not in DISTRIBUTED_TASKS:
            raise ConfigError(
                f"distributed training (torchrun, --nproc) is available for {', '.join(DISTRIBUTED_TASKS)}, "
                f"not --task {cfg.task}; train it in one process"
            )
        extra = {"init_from": str(init_from)} if init_from is not None else {}
        out_dir = PIPELINES[cfg.task](cfg, out_dir, resume=resume, callbacks=callbacks, **extra)
        if dist is not None:
            dist.barrier()  # leave together: the other ranks wait while rank 0 writes the report
        return out_dir
    finally:
        if dist is not None:
            dist.close()


RESUME_CHANGEABLE = ("epochs", "max_steps", "patience", "time_budget", "device", "threads")
"""Settings a resumed run may change (the rest must be the saved ones)."""


def _progress_callbacks(progress: Any) -> list[Any]:
    from .progress import FunctionProgress, TrainProgress

    if progress is True:
        return [TrainProgress()]
    if progress is False or progress is None:
        return []
    if callable(progress) and not any(hasattr(progress, h) for h in ("on_step_end", "on_evaluate")):
        return [FunctionProgress(progress)]
    return [progress]


def _resume_config(out_dir: Path, cfg: Config, overrides: dict[str, Any]) -> Config:
    """The saved config of the run to resume, with only :data:`RESUME_CHANGEABLE` settings changed."""
    run = RunFolder(out_dir)
    run.require(ck.CONFIG, ck.TRAINER_STATE)
    saved = read_config(run)
    given = {k: v for k, v in overrides.items() if v is not None}
    changed = [k for k in given if k not in RESUME_CHANGEABLE and _value(saved, k) != _value(cfg, k)]
    if changed:
        raise ConfigError(
            f"--resume continues {out_dir} with its saved settings; these differ: {', '.join(changed)} "
            f"(only {', '.join(RESUME_CHANGEABLE)} may change)"
        )
    keep = {k: given[k] for k in given if k in RESUME_CHANGEABLE}
    return resolve_config(config_dict=saved.to_dict(), overrides=keep)


PATH_SETTINGS = (
    ("data", "data"), ("data", "valid"), ("data", "test"), ("data", "unlabeled"), ("model", "vectors"),
)  # fmt: skip
"""Settings that may name a file or folder (else a registered dataset or bundled vectors)."""


def _absolute_paths(cfg: Config, config_folder: Path | None, given: dict[str, Any]) -> Config:
    """``cfg`` with its relative data and vector paths made absolute, so that ``config.json`` works from any
    folder: a path from a ``--config`` file is read against the file's folder (falling back to the current
    one, as older run folders meant), a path given as an option or argument against the current folder.
    Names of registered datasets, and paths that do not exist, are left as they are."""
    changes = {}
    for section, name in PATH_SETTINGS:
        value = getattr(getattr(cfg, section), name)
        if not value or os.path.isabs(value):
            continue
        from_file = config_folder is not None and given.get(name) is None
        candidates = [config_folder / value, Path(value)] if from_file else [Path(value)]
        found = next((c for c in candidates if c.exists()), None)
        if found is not None:
            changes[name] = str(found.resolve())
    return resolve_config(config_dict=cfg.to_dict(), overrides=changes) if changes else cfg


def _check_replaceable(out_dir: Path) -> None:
    """A new run may replace an rnnkit run folder or fill an empty (or missing) folder, nothing else.
    A folder holding only the temp files of a run killed while writing its first file counts as empty."""
    if not out_dir.is_dir() or all(_is_leftover(p) or _is_pretrain_stage(p) for p in out_dir.iterdir()):
        return  # empty, or what a --pretrain run stopped in its language-model stage left
    try:
        raw = RunFolder(out_dir).read_json(ck.CONFIG) if is_run(out_dir) else None
    except RunFolderError:
        raw = None
    if not (isinstance(raw, dict) and isinstance(raw.get("config"), dict) and "task" in raw):
        raise ConfigError(
            f"--out {out_dir}: the folder holds files but is not an rnnkit run folder, so it is not "
            f"replaced; choose a new or empty folder"
        )


def _is_leftover(path: Path) -> bool:
    """Whether ``path`` is a temp file an atomic write of a run file left (``.config.json.x1y2.tmp``)."""
    names = (ck.CONFIG, ck.VOCAB, ck.LABELS, ck.WEIGHTS, ck.TRAINER_STATE, ck.METRICS, ck.REPORT)
    prefixes = tuple(f".{n}." for n in names)
    return path.is_file() and path.name.endswith(".tmp") and path.name.startswith(prefixes)


def _is_pretrain_stage(path: Path) -> bool:
    """Whether ``path`` is the language-model run folder of a ``--pretrain`` run (``<out>/pretrain``)."""
    from .pipelines.pretrain import PRETRAIN_FOLDER

    if path.name != PRETRAIN_FOLDER or not path.is_dir():
        return False
    if not any(path.iterdir()) or all(_is_leftover(p) for p in path.iterdir()):
        return True
    try:
        raw = RunFolder(path).read_json(ck.CONFIG) if is_run(path) else None
    except RunFolderError:
        return False
    return isinstance(raw, dict) and raw.get("task") == "lm"


def _value(cfg: Config, name: str) -> Any:
    for part in (cfg.model, cfg.data, cfg.train):
        if hasattr(part, name):
            return getattr(part, name)
    return getattr(cfg, name, None)


def read_config(run: RunFolder) -> Config:
    """The :class:`Config` in a run folder's ``config.json`` (:class:`RunFolderError` if unreadable)."""
    raw = run.read_json(ck.CONFIG)
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise RunFolderError(f"{run.file(ck.CONFIG)}: expected an object with a 'config' object")
    try:
        return Config.from_dict(raw["config"])
    except ConfigError as e:
        raise RunFolderError(f"{run.file(ck.CONFIG)}: {e}") from None


PIPELINES: dict[str, Callable[..., Path]] = {"classify": train_classifier, "lm": train_language_model}
"""task → ``pipeline(cfg, out_dir, *, resume, callbacks) -> Path``."""

DISTRIBUTED_TASKS: tuple[str, ...] = ("classify",)
"""Tasks whose pipeline trains data-parallel under torchrun (see :mod:`rnnkit.training.distributed`)."""


LOADERS: dict[str, Callable[[RunFolder, Config, torch.device], Any]] = {
    "classify": load_classifier,
    "lm": load_language_model,
}
"""task → ``loader(run_folder, config, device)``."""


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder that ``rnnkit train`` wrote (it holds ``config.json``)."""
    return RunFolder(path).exists(ck.CONFIG)


def load(run_dir: str | os.PathLike, *, device: str | torch.device = "auto"):
    """Load a trained run folder, or an export (``rnnkit export``'s ``.onnx`` / ``.pt`` file).

    Args:
        run_dir: the folder ``rnnkit train`` wrote, or an exported model file (or a folder holding one).
        device: where to run the model (``"auto"``: CUDA when present; exports run on the CPU).

    Returns:
        For a classifier, a :class:`ClassifierRun` with ``.predict(texts, top_k=None)`` and
        ``.evaluate(data)``; for a language model, a :class:`LanguageModelRun` with ``.generate(prime)``,
        ``.stream(prime)`` and ``.evaluate(data)``; for an export, an
        :class:`~rnnkit.export.ExportedClassifier` with the same ``.predict``.

    Raises:
        RunFolderError: the folder is missing, incomplete, or its files disagree with each other; an
        export is unreadable or its vocabulary and labels do not match the model.
    """
    from .utils import resolve_device

    if not is_run(run_dir):
        from .export import is_export, load_exported

        if is_export(run_dir):
            return load_exported(run_dir)
    run = RunFolder(run_dir)
    run.require(ck.CONFIG)
    config = read_config(run)
    raw_task = run.read_json(ck.CONFIG).get("task", config.task)
    if raw_task not in LOADERS:
        raise RunFolderError(f"{run.file(ck.CONFIG)}: task {raw_task!r} cannot be loaded by this version")
    return LOADERS[raw_task](run, config, resolve_device(device))
