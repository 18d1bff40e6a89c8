"""Settings: one dataclass per component, named presets, and how they combine.

A run's settings come from four layers, later ones winning: the dataclass defaults, a ``--preset``,
a ``--config`` JSON file, and explicit command-line flags (or keyword arguments to ``rnnkit.train``).
The command-line options are generated from the dataclass fields below — the comment after each field
is its ``--help`` text — so the CLI, the config file and ``config.json`` can never disagree.

>>> cfg = resolve_config(preset="lesson-lstm", overrides={"epochs": 1})
>>> cfg.model.cell, cfg.model.use_lengths, cfg.train.epochs
('lstm', False, 1)
>>> Config.from_dict(cfg.to_dict()) == cfg
True
>>> resolve_config(overrides={"pool": "median"})
Traceback (most recent call last):
...
rnnkit.errors.ConfigError: pool (--pool) must be one of last, mean, max, attention, concat; got 'median'
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

Cell = Literal["rnn", "lstm", "gru"]
Pool = Literal["last", "mean", "max", "attention", "concat"]
Schedule = Literal["constant", "linear", "cosine", "slanted"]
ClassWeight = Literal["none", "balanced"]


@dataclass
class ModelConfig:
    """The network: embedding → recurrent encoder → pooling → dropout → linear."""

    cell: Cell = "lstm"  # recurrent cell: rnn (Elman, tanh), lstm or gru
    embed_dim: int = 64  # embedding size E (with --vectors: the size of the vectors in the file)
    hidden_dim: int = 64  # hidden size H of each direction of each layer
    layers: int = 1  # number of stacked recurrent layers
    bidirectional: bool = False  # also read each text right to left and join both directions
    dropout: float = 0.0  # dropout between stacked layers and on the pooled vector
    embed_dropout: float = 0.0  # dropout on the embedded tokens
    embed_mean: float = 0.0  # mean of the N(mean, 1) random embedding init (the lesson's LSTMs: -0.5)
    pool: Pool = "last"  # outputs → one vector: last, mean, max, attention, concat (last+max+mean)
    use_lengths: bool = True  # tell the encoder each text's length; off runs over padding like the notebook
    vectors: str | None = None  # word vectors: auto (bundled GloVe 6B 50d for words), none, or a GloVe file
    freeze_vectors: bool = False  # keep the pretrained vectors fixed during training
    ngrams: bool = False  # add a TF-IDF word + word-pair linear path beside the RNN, mixed by validation
    ngram_buckets: int = 0  # hash rows for word pairs in the n-gram path (0: chosen from the data)
    weight_drop: float = 0.0  # DropConnect on the hidden-to-hidden weights, a new mask per batch (AWD-LSTM)
    locked_dropout: bool = False  # --dropout masks shared by all steps of a text, and whole words dropped
    input_dropout: float = 0.0  # dropout on the embedded tokens, one mask per text for all steps (AWD-LSTM)
    tie_projection: bool = False  # language models: tie the output to the embedding via an H→E projection
    chunk_len: int = 0  # classifiers: read texts in chunks of this many tokens, state carried (BPT3C)


@dataclass
class DataConfig:
    """Where the examples come from and how they become id sequences."""

    data: str = "default"  # training data: a file, a folder, or a registered name (see `rnnkit datasets`)
    valid: str | None = None  # validation data; default: the dataset's own split, else part of train
    test: str | None = None  # test data for the final report; default: the dataset's own test split, if any
    text_col: str = "text"  # column(s) holding the text; several are joined with spaces (e.g. title,body)
    label_col: str = "label"  # column holding the label
    tokenizer: str = "basic_english"  # tokenizer: basic_english, char or bpe
    min_freq: int = 1  # drop words seen fewer times than this from the vocabulary
    max_vocab: int | None = None  # keep at most this many words (the most frequent)
    max_len: int | None = None  # tokens the RNN reads per text: longer ones as head + tail (None: all)
    valid_fraction: float = 0.1  # share of train held out for validation when there is no validation data
    bucket: bool = True  # batch texts of similar length together (less padding, faster)
    unlabeled: str | None = None  # more text for a language model: a file (a text per line) or a folder


@dataclass
class TrainConfig:
    """The optimisation: how long, how fast, when to evaluate and stop."""

    epochs: int = 5  # passes over the training data (0: planned from the data's size; early stopping decides)
    max_steps: int | None = None  # stop after this many optimizer steps (overrides --epochs)
    time_budget: float | None = None  # stop after this many seconds of training, then evaluate and save
    batch_size: int = 64  # examples per batch (language models: parallel token streams)
    bptt: int = 100  # language models: tokens per truncated-backpropagation chunk; the state carries on
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay (not applied to biases or embeddings)
    schedule: Schedule = "constant"  # after warmup: constant, linear / cosine decay to 0, or slanted (ULMFiT)
    warmup: float = 0.0  # fraction of the steps spent warming the learning rate up from zero
    clip_norm: float | None = 1.0  # clip the gradient norm to this value (None: no clipping)
    eval_every: int = 0  # evaluate every N steps (0: at each epoch's end only)
    patience: int = 0  # stop after N evaluations without improvement (0: never stop early)
    lr_decay: float = 1.0  # each layer group below the top learns this times the rate above (ULMFiT 0.38)
    unfreeze: float = 0.0  # layer groups thaw one by one, top down, over this fraction of the steps
    ar: float = 0.0  # language models: activation regularisation α·mean(h²) of the dropped output (AWD: 2)
    tar: float = 0.0  # language models: temporal activation regularisation β·mean((h_t − h_t−1)²)
    pretrain: bool = False  # classifiers: a language model on the texts (+ --unlabeled) first, then from it
    class_weight: ClassWeight = "none"  # weigh each class's loss: none, or balanced (n / (classes × count))
    sparse_embeddings: bool = False  # sparse embedding gradients and SparseAdam (pays for big vocabularies)
    seed: int = 0  # seed for initialisation, shuffling and dropout
    threads: int | None = None  # CPU threads for torch (None: min(cores, 8))
    device: str = "auto"  # auto, cpu, cuda or cuda:N (auto picks CUDA when present)
    amp: bool = True  # bfloat16 mixed precision on CUDA (ignored on CPU)


@dataclass
class Config:
    """All settings of a run; ``config.json`` holds ``Config.to_dict()``."""

    task: Literal["classify", "lm"] = "classify"  # what to train: a text classifier or a language model
    preset: str | None = None  # the preset these settings started from, if any
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Inverse of :meth:`to_dict`; unknown keys and bad values raise :class:`ConfigError`.

        A run folder's settings are read as written: its preset's values are not applied again, so a field
        added to a preset later (or missing from an older ``config.json``) keeps its dataclass default.
        """
        return resolve_config(config_dict=d, presets=False)


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}

# The lesson's three models (dense Adam 1e-3, no clipping, batches of 16, as the notebook trained them; its
# LSTMs' embeddings start from randn - 0.5),
# and the strongest CPU recipe found by benchmarks/ag_news.py.
PRESETS: dict[str, dict[str, Any]] = {
    "lesson-rnn": dict(  # the notebook's first model: simple RNN, mean of its outputs
        cell="rnn", embed_dim=64, hidden_dim=32, pool="mean", batch_size=16, lr=1e-3, epochs=3,
        bucket=False, clip_norm=None,
    ),
    "lesson-lstm": dict(  # LSTM on padded batches without lengths: padding reaches the final state
        cell="lstm", embed_dim=64, hidden_dim=32, embed_mean=-0.5, pool="last", use_lengths=False,
        batch_size=16, lr=1e-3, epochs=3, bucket=False, clip_norm=None,
    ),
    "lesson-lstm-packed": dict(  # the same LSTM told each text's length (packed sequences)
        cell="lstm", embed_dim=64, hidden_dim=32, embed_mean=-0.5, pool="last", use_lengths=True,
        batch_size=16, lr=1e-3, epochs=3, bucket=False, clip_norm=None,
    ),
    "default": dict(  # bidirectional GRU on GloVe + TF-IDF n-gram path, epochs planned from the data
        cell="gru", embed_dim=64, hidden_dim=96, bidirectional=True, pool="concat", dropout=0.3,
        embed_dropout=0.1, batch_size=64, lr=4e-3, schedule="cosine", warmup=0.1, weight_decay=0.01,
        epochs=0, patience=3, bucket=True, max_len=256, time_budget=120.0, vectors="auto", ngrams=True,
    ),
    "ulmfit": dict(  # --pretrain: an AWD-LSTM language model on the texts first, then fine-tuned (ULMFiT)
        cell="lstm", embed_dim=256, hidden_dim=256, layers=1, bidirectional=False, pool="concat", dropout=0.3,
        embed_dropout=0.05, input_dropout=0.2, weight_drop=0.2, locked_dropout=True, batch_size=64, lr=4e-3,
        schedule="slanted", warmup=0.1, weight_decay=0.01, lr_decay=0.38, unfreeze=0.3, epochs=0, patience=3,
        bucket=True, max_len=None, chunk_len=70, time_budget=120.0, vectors="auto", ngrams=True, min_freq=2,
        pretrain=True,
    ),
    "awd-lm": dict(  # word-level AWD-LSTM language model (rnnkit pretrain): locked dropout, DropConnect, AR
        task="lm", data="shakespeare", tokenizer="basic_english", cell="lstm", embed_dim=256, hidden_dim=256,
        layers=1, dropout=0.3, input_dropout=0.3, embed_dropout=0.05, weight_drop=0.3, locked_dropout=True,
        ar=2.0, tar=1.0, batch_size=32, bptt=70, lr=3e-3, schedule="cosine", warmup=0.02, clip_norm=1.0,
        min_freq=2, max_vocab=12000, epochs=50, time_budget=120.0, eval_every=200, vectors="auto",
        tie_projection=True,
    ),
    "char-lm": dict(  # character language model (char-rnn); the default for --task lm, sized for 2 CPU cores
        task="lm", data="shakespeare", tokenizer="char", cell="lstm", embed_dim=64, hidden_dim=256, layers=2,
        batch_size=32, bptt=64, lr=4e-3, schedule="cosine", clip_norm=5.0, epochs=5, eval_every=200,
    ),
    "word-lm": dict(  # word language model, embedding tied to the output layer (embed_dim == hidden_dim)
        task="lm", data="shakespeare", tokenizer="basic_english", cell="lstm", embed_dim=256, hidden_dim=256,
        layers=2, dropout=0.3, embed_dropout=0.1, batch_size=32, bptt=35, lr=2e-3, schedule="cosine",
        clip_norm=1.0, epochs=5, eval_every=100,
    ),
}
DEFAULT_PRESETS: dict[str, str] = {"classify": "default", "lm": "char-lm"}  # task → preset when none is named
NO_PRESET = "none"  # --preset none: the dataclass defaults alone
PRETRAIN_PRESET = "ulmfit"  # the preset of a classifier run given --pretrain and no preset


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """The one-line comment after each field of a config dataclass (used as ``--help`` text).

    >>> field_help(TrainConfig)["batch_size"]
    'examples per batch (language models: parallel token streams)'
    """
    pattern = re.compile(r"^\s+(\w+):[^#]*#\s*(.+)$")
    found = (pattern.match(line) for line in inspect.getsource(cls).splitlines())
    return {m.group(1): m.group(2).strip() for m in found if m}


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass (strings under ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def flat_fields() -> dict[str, tuple[str, dataclasses.Field]]:
    """Every settable field by name → (section, field); names are unique across sections."""
    out: dict[str, tuple[str, dataclasses.Field]] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name in out:  # pragma: no cover - guards future edits
                raise RuntimeError(f"config field {f.name!r} is defined in two sections")
            out[f.name] = (section, f)
    return out


def option_name(name: str) -> str:
    """``hidden_dim`` → ``--hidden-dim``."""
    return "--" + name.replace("_", "-")


def coerce(name: str, value: Any, cls: type) -> Any:
    """Check ``value`` against the type of field ``name`` of ``cls``; return it (ints become floats)."""
    tp = field_types(cls)[name]
    label = f"{name} ({option_name(name)})"
    args = typing.get_args(tp)
    optional = type(None) in args
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{label} must be set, got null")
    if optional:
        (tp,) = [a for a in args if a is not type(None)]
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{label} must be one of {', '.join(choices)}; got {short_repr(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {short_repr(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{label} must be an integer, got {short_repr(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be a number, got {short_repr(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label} must be a string, got {short_repr(value)}")
        if "\x00" in value:
            raise ConfigError(f"{label} must not contain a NUL character, got {short_repr(value)}")
        return value
    raise TypeError(f"unsupported config field type {tp!r} for {name}")  # pragma: no cover


INF = float("inf")


def short_repr(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 5,000-digit number is shown by its length).

    >>> short_repr(10**50)
    'a 51-digit number'
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        if abs(value) >= 10**4000:
            return "a number of over 4000 digits"
        return f"a {len(str(abs(value)))}-digit number"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

# field → (lowest, highest, interval text): the allowed range of each number. The upper bounds keep a typo
# (--hidden-dim 1000000000) from becoming an allocation that cannot succeed; a model that passes them is
# still checked against the memory it would need (rnnkit.limits.check_model_memory).
MAX_DIM = 65_536  # embed_dim, hidden_dim
MAX_LAYERS = 64
MAX_COUNT = 1_000_000_000  # epochs, steps, evaluations, vocabulary sizes, lengths
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit
_RANGES: dict[str, tuple[float, float, str]] = {
    "embed_dim": (1, MAX_DIM, "≥ 1"),
    "hidden_dim": (1, MAX_DIM, "≥ 1"),
    "layers": (1, MAX_LAYERS, "≥ 1"),
    "dropout": (0.0, 1.0, "[0, 1)"),
    "embed_dropout": (0.0, 1.0, "[0, 1)"),
    "embed_mean": (-1000.0, 1000.0, "≥ -1000"),
    "min_freq": (1, MAX_COUNT, "≥ 1"),
    "max_vocab": (3, MAX_COUNT, "≥ 3"),
    "max_len": (2, MAX_COUNT, "≥ 2"),  # a long text is read as its head and its tail
    "valid_fraction": (0.0, 1.0, "(0, 1)"),
    "epochs": (0, MAX_COUNT, "≥ 0"),
    "ngram_buckets": (0, 1 << 24, "≥ 0"),
    "weight_drop": (0.0, 1.0, "[0, 1)"),
    "input_dropout": (0.0, 1.0, "[0, 1)"),
    "chunk_len": (0, MAX_COUNT, "≥ 0"),
    "lr_decay": (0.0, 1.0, "(0, 1]"),
    "unfreeze": (0.0, 1.0, "[0, 1]"),
    "ar": (0.0, 1e6, "≥ 0"),
    "tar": (0.0, 1e6, "≥ 0"),
    "max_steps": (1, MAX_COUNT, "≥ 1"),
    "time_budget": (0.0, 1e9, "> 0"),
    "batch_size": (1, 1_048_576, "≥ 1"),
    "lr": (0.0, 1e6, "> 0"),
    "weight_decay": (0.0, 1e6, "≥ 0"),
    "warmup": (0.0, 1.0, "[0, 1)"),
    "clip_norm": (0.0, 1e12, "> 0"),
    "eval_every": (0, MAX_COUNT, "≥ 0"),
    "patience": (0, MAX_COUNT, "≥ 0"),
    "seed": (0, MAX_SEED, "≥ 0"),
    "threads": (1, 1024, "≥ 1"),
    "bptt": (1, 1_000_000, "≥ 1"),
}


def _in_range(value: float, lo: float, hi: float, text: str) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    low_ok = value > lo if text.startswith(("(", ">")) else value >= lo
    high_ok = value < hi if text.endswith(")") else value <= hi
    return low_ok and high_ok


def _range_text(value: float, hi: float, text: str) -> str:
    """What a value out of range should have been: ``"≥ 1"``, ``"at most 65536"``, ``"a finite number"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"a finite number {text}"
    if value > hi and not text.endswith(")"):
        return f"at most {hi:g}" if isinstance(hi, float) else f"at most {hi}"
    return text


_DEVICE = re.compile(r"auto|cpu|cuda(:\d{1,4})?")


def validate(cfg: Config) -> Config:
    """Check ranges and combinations; raise :class:`ConfigError` naming the setting, or return ``cfg``."""
    values = {k: v for part in (cfg.model, cfg.data, cfg.train) for k, v in dataclasses.asdict(part).items()}
    for name, (lo, hi, text) in _RANGES.items():
        v = values[name]
        if v is not None and not _in_range(v, lo, hi, text):
            wanted = _range_text(v, hi, text)
            raise ConfigError(f"{name} ({option_name(name)}) must be {wanted}, got {short_repr(v)}")
    if not _DEVICE.fullmatch(cfg.train.device):
        raise ConfigError(f"device (--device) must be auto, cpu, cuda or cuda:N; got {cfg.train.device!r}")
    if cfg.model.freeze_vectors and cfg.model.vectors in (None, "none"):
        raise ConfigError("--freeze-vectors needs --vectors PATH (there are no pretrained vectors to freeze)")
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise ConfigError(f"unknown preset {cfg.preset!r}; choose one of {', '.join(PRESETS)}")
    if cfg.task == "lm" and cfg.model.bidirectional:
        raise ConfigError("--bidirectional does not apply to a language model, which reads left to right")
    if cfg.task == "lm" and cfg.data.max_vocab is not None and cfg.data.max_vocab < 5:
        raise ConfigError(
            f"max_vocab (--max-vocab) must be ≥ 5 for a language model (4 places go to <pad>, <unk>, <bos> "
            f"and <eos>), got {cfg.data.max_vocab}"
        )
    if cfg.task == "lm" and cfg.train.pretrain:
        raise ConfigError("--pretrain is for classifiers (a language model first); use rnnkit pretrain")
    if cfg.model.chunk_len and cfg.model.bidirectional:
        raise ConfigError("--chunk-len (BPT3C) carries the state left to right; it needs --no-bidirectional")
    return cfg


def _flatten(d: dict[str, Any], where: str) -> dict[str, Any]:
    """Accept a nested ``{"model": {...}, ...}`` dict, a flat one, or a run folder's ``config.json``."""
    if "config" in d and isinstance(d["config"], dict):  # a run folder's config.json
        d = d["config"]
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be an object, got {short_repr(value)}")
            for k, v in value.items():
                if k not in {f.name for f in dataclasses.fields(SECTIONS[key])}:
                    raise ConfigError(f"{where}: unknown setting {key}.{k}")
                flat[k] = v
        elif key == "rnnkit_version":
            continue
        else:
            flat[key] = value
    return flat


def _apply(flat: dict[str, Any], values: dict[str, Any], top: dict[str, Any], where: str) -> None:
    """Merge one layer of settings into ``values`` (fields) and ``top`` (task, preset)."""
    fields = flat_fields()
    for key, value in flat.items():
        if key in ("task", "preset"):
            top[key] = value
        elif key in fields:
            values[key] = value
        else:
            hint = did_you_mean(str(key), [*fields, "task", "preset"])
            raise ConfigError(f"{where}: unknown setting {key!r}{hint}")


def did_you_mean(name: str, known: list[str]) -> str:
    """`` (did you mean hidden_dim?)`` for a misspelled setting, or ``""`` when nothing is close.

    >>> did_you_mean("hiden_dim", list(flat_fields())), did_you_mean("--epoch", ["epochs"])
    (' (did you mean hidden_dim?)', ' (did you mean epochs?)')
    >>> did_you_mean("x", ["lr"])
    ''
    """
    import difflib

    key = name.replace("-", "_").strip("_")
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    config_dict: dict[str, Any] | None = None,
    presets: bool = True,
) -> Config:
    """Build a validated :class:`Config`: defaults ← preset ← config file/dict ← overrides.

    Args:
        preset: name of a preset in :data:`PRESETS` (or None). A preset named inside the config file is
            used when this is None.
        config_file: JSON file, either nested (``{"model": {...}, "train": {...}}``), flat
            (``{"hidden_dim": 128}``), or a run folder's ``config.json`` (reuse a run's settings).
        overrides: flat ``{field: value}``; ``None`` values mean "not given" and are skipped.
        config_dict: like ``config_file`` but already parsed.
        presets: apply the named preset's values (and, if none is named, the task's default preset:
            ``default`` for classifiers, ``char-lm`` for language models; ``"none"`` names no preset).
            False reads a run's saved settings as written.

    Returns:
        The resolved, validated config.

    Raises:
        ConfigError: unknown preset, unknown setting, a value of the wrong type or out of range.

    >>> resolve_config(preset="default").model.bidirectional
    True
    >>> resolve_config(overrides={"hidden_dim": 0})
    Traceback (most recent call last):
    ...
    rnnkit.errors.ConfigError: hidden_dim (--hidden-dim) must be ≥ 1, got 0
    """
    layers: list[tuple[dict[str, Any], str]] = []
    if config_file is not None:
        path = Path(config_file)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: not a readable JSON config ({e})") from None
        except RecursionError:
            raise ConfigError(f"{path}: not a JSON config (nested too deeply)") from None
        except ValueError as e:  # e.g. an integer of over 4300 digits
            raise ConfigError(f"{path}: not a readable JSON config ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config file must hold a JSON object, got {type(loaded).__name__}")
        layers.append((_flatten(loaded, str(path)), str(path)))
    if config_dict is not None:
        layers.append((_flatten(config_dict, "config"), "config"))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}

    top: dict[str, Any] = {}
    for flat, where in layers:
        _apply(flat, {}, top, where)  # find a preset named in the file
    name = preset
    if name is None and "preset" in top:  # a saved config's "preset": null means it had none
        name = NO_PRESET if top["preset"] is None else top["preset"]
    if name is None and presets:  # no preset named: the task's default (`default`; `char-lm` for --task lm)
        name = DEFAULT_PRESETS.get(given.get("task", top.get("task")) or "classify")
        if given.get("pretrain") and name == DEFAULT_PRESETS["classify"]:
            name = PRETRAIN_PRESET  # --pretrain alone: the ULMFiT recipe
    if name == NO_PRESET:
        name = None
    if name is not None and name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")

    values: dict[str, Any] = {}
    top = {"preset": name}
    if name is not None and presets:
        _apply(PRESETS[name], values, top, f"preset {name}")
    for flat, where in layers:
        _apply(flat, values, top, where)
    _apply(given, values, top, "option")
    top["preset"] = name

    sections: dict[str, Any] = {}
    fields = flat_fields()
    for section, cls in SECTIONS.items():
        kwargs = {k: coerce(k, v, cls) for k, v in values.items() if fields[k][0] == section}
        sections[section] = cls(**kwargs)
    task = top.get("task", "classify")
    if task not in ("classify", "lm"):
        raise ConfigError(f"task (--task) must be one of classify, lm; got {task!r}")
    return validate(Config(task=task, preset=name, **sections))
