"""``--init-from RUN``: start a new classifier run from a trained one's weights (fine-tuning on new data).

The new run keeps the source run's model settings, tokenizer and vocabulary (words it never saw stay
``<unk>``, as they did for the source) and its labels in their order; labels that only the new training
data has are appended, and their output rows start from the new model's own seeded initialisation. Every
other weight is copied. Training settings (epochs, learning rate, schedule, data) are the new run's own.

The option names a *source* so that it can grow: today the source is a classifier run folder; a
pretrained language model is the next kind (its encoder would be copied the same way).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from ..config import Config, resolve_config
from ..errors import ConfigError, RunFolderError

__all__ = ["load_source", "with_source_settings", "source_vocabulary", "copy_weights"]

_KEPT_DATA = ("tokenizer", "min_freq", "max_vocab")  # how the source's vocabulary was made


def load_source(path: str | os.PathLike) -> Any:
    """The source run, loaded on the CPU; a :class:`RunFolderError` unless it is a classifier run folder."""
    from ..api import is_run, load

    if not is_run(path):
        raise RunFolderError(f"{path}: --init-from needs a trained classifier's run folder (no config.json)")
    source = load(path, device="cpu")
    if getattr(source, "labels", None) is None or getattr(source.config, "task", None) != "classify":
        task = getattr(getattr(source, "config", None), "task", "?")
        raise ConfigError(f"--init-from {path}: a {task} run; only a classifier run can start a classifier")
    return source


def with_source_settings(cfg: Config, source_cfg: Config, given: dict[str, Any]) -> Config:
    """``cfg`` with the source's model settings and vocabulary settings; a setting given explicitly that
    differs from the source's raises :class:`ConfigError` (the weights could not be copied)."""
    model = dataclasses.asdict(source_cfg.model)
    kept = {**model, **{k: getattr(source_cfg.data, k) for k in _KEPT_DATA}}
    differ = [k for k, v in given.items() if k in kept and v is not None and v != kept[k]]
    if differ:
        raise ConfigError(
            f"--init-from keeps the source run's model and vocabulary; these settings differ from it: "
            f"{', '.join(sorted(differ))}"
        )
    settings = cfg.to_dict()
    settings["model"] = model
    settings["data"].update({k: kept[k] for k in _KEPT_DATA})
    return resolve_config(config_dict=settings)


def source_vocabulary(source: Any, train_labels: list[str]):
    """``(encoder, labels)``: the source's vocabulary, and its labels followed by any new ones (sorted)."""
    from ..data import LabelEncoder

    known = list(source.labels)
    new = sorted({label for label in train_labels if label is not None} - set(known))
    return source.encoder, LabelEncoder(known + new)


def copy_weights(model: torch.nn.Module, source: Any) -> list[str]:
    """Copy the source model's weights into ``model``; output rows of new labels are left as initialised.

    Returns:
        The names of the parameters only partly copied (the output layer when labels were added).
    """
    target = model.state_dict()
    weights = source.model.state_dict()
    partial = []
    with torch.no_grad():
        for name, tensor in target.items():
            if name not in weights:
                raise RunFolderError(f"--init-from: the source run has no {name} (a different model)")
            got = weights[name]
            if got.shape == tensor.shape:
                tensor.copy_(got)
            elif got.shape[1:] == tensor.shape[1:] and got.shape[0] < tensor.shape[0]:
                tensor[: got.shape[0]].copy_(got)  # rows of the source's labels; new labels keep their init
                partial.append(name)
            else:
                raise RunFolderError(
                    f"--init-from: {name} has shape {list(got.shape)} in the source run, the model needs "
                    f"{list(tensor.shape)}"
                )
    model.load_state_dict(target)
    return partial
