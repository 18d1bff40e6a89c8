"""``--pretrain``: ULMFiT's three stages in one classifier run (Howard & Ruder 2018).

1. A language model learns to predict the next word of the training texts (and of ``--unlabeled`` text):
   an AWD-LSTM (:data:`LM_PRESET`) with the classifier's tokenizer and architecture. It is a run folder of
   its own, ``<out>/pretrain/`` (``rnnkit generate`` and ``rnnkit eval`` work on it).
2. The classifier starts from it (:mod:`rnnkit.pipelines.init_from`): the language model's vocabulary and
   vectors, its recurrent layers, a new pooling and head.
3. The classifier is fine-tuned with the run's own settings — in the ``ulmfit`` preset, discriminative
   learning rates, a slanted triangular schedule and gradual unfreezing (:mod:`rnnkit.training.loop`).

The language model never reads the validation or test split of the classification data given with
``--valid`` / ``--test``; it holds out its own share of the texts to measure perplexity. Its time budget
is the classifier's ``time_budget``, so a ``--pretrain`` run takes up to twice that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Config, resolve_config
from ..errors import ConfigError

LM_PRESET = "awd-lm"  # the language model stage's settings, before the classifier's own are applied
PRETRAIN_FOLDER = "pretrain"  # the language model's run folder, inside the classifier's
_SHARED_MODEL = ("cell", "embed_dim", "hidden_dim", "layers", "vectors")  # the architecture both stages share
_SHARED_DATA = ("data", "text_col", "unlabeled", "tokenizer", "min_freq", "max_vocab")
_SHARED_TRAIN = ("seed", "threads", "device", "amp", "time_budget")

__all__ = ["LM_PRESET", "PRETRAIN_FOLDER", "language_model_config", "pretrain"]


def language_model_config(cfg: Config) -> Config:
    """The language model stage's settings for classifier settings ``cfg``: :data:`LM_PRESET`, with the
    classifier's data, tokenizer, vocabulary limits, architecture, seed, device and time budget.

    >>> cfg = resolve_config(preset="ulmfit", overrides={"data": "reviews.csv", "hidden_dim": 128})
    >>> lm = language_model_config(cfg)
    >>> lm.task, lm.data.data, lm.model.hidden_dim, lm.model.weight_drop > 0
    ('lm', 'reviews.csv', 128, True)
    """
    shared: dict[str, Any] = {k: getattr(cfg.model, k) for k in _SHARED_MODEL}
    shared.update({k: getattr(cfg.data, k) for k in _SHARED_DATA})
    shared.update({k: getattr(cfg.train, k) for k in _SHARED_TRAIN})
    if cfg.data.max_vocab is None:
        shared.pop("max_vocab")  # the preset's cap keeps the softmax affordable
    return resolve_config(preset=LM_PRESET, overrides={"task": "lm", **shared})


def pretrain(cfg: Config, out_dir: Path, callbacks) -> tuple[Path, dict[str, Any]]:
    """Train the language model of a ``--pretrain`` run in ``out_dir / "pretrain"``; return its folder and
    what its report says (perplexity, seconds, texts)."""
    from ..training import distributed
    from ..training.checkpoint import REPORT, RunFolder
    from .common import notify
    from .language_model import train_language_model

    if distributed.current() is not None:
        raise ConfigError("--pretrain is not available in distributed training yet; use one process")
    lm_cfg = language_model_config(cfg)
    folder = Path(out_dir) / PRETRAIN_FOLDER
    notify(callbacks, "on_stage", f"pretraining a language model on the texts of {cfg.data.data}")
    train_language_model(lm_cfg, folder, resume=False, callbacks=callbacks)
    report = RunFolder(folder).read_json(REPORT)
    keep = ("perplexity", "loss", "train_seconds", "steps", "epochs", "vocab_size", "tokens_per_s", "sources")
    return folder, {"run": str(folder), **{k: report[k] for k in keep if k in report}}
