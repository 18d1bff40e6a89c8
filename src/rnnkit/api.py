"""The Python API: ``rnnkit.train(...)`` trains into a run folder, ``rnnkit.load(run_dir)`` loads one back.

The command line is a thin shell over these two functions::

    run = rnnkit.train("news.csv", preset="default", out="runs/news")   # -> Path("runs/news")
    clf = rnnkit.load(run)
    clf.predict(["Stocks rallied as rates fell"], top_k=2)
    clf.evaluate("news_test.csv")["accuracy"]

``train`` dispatches on the task (``"classify"`` here); another task registers its own pipeline in
:data:`PIPELINES` and loader in :data:`LOADERS`.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import Config, resolve_config
from .errors import ConfigError, DataError, RunFolderError
from .training import checkpoint as ck
from .training.checkpoint import RunFolder

logger = logging.getLogger(__name__)

EVAL_BATCH_TOKENS = 16_384  # padded tokens per evaluation batch (bucketed evaluation)


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
    **overrides: Any,
) -> Path:
    """Train a model and write its run folder; return the folder's path.

    Args:
        data: training data SPEC (a file, a class folder, or a registered name such as ``"default"``).
        preset: a preset name from :data:`rnnkit.config.PRESETS`.
        config: a JSON config file (or a run's ``config.json``), a dict, or a :class:`~rnnkit.config.Config`.
        out: the run folder (default ``runs/<preset or task>``). An existing run there is replaced,
            unless ``resume``.
        resume: continue the interrupted run in ``out`` with its saved settings.
        callbacks: progress hooks (see :class:`rnnkit.training.loop.Callback`).
        **overrides: any setting by field name (``epochs=3``, ``hidden_dim=128``, ``valid="dev.csv"``).

    Returns:
        ``Path`` of the run folder.

    Raises:
        ConfigError: bad settings; DataError: bad data; RunFolderError: nothing to resume.
    """
    if data is not None:
        overrides["data"] = str(data)
    if isinstance(config, Config):
        cfg = resolve_config(preset=preset, config_dict=config.to_dict(), overrides=overrides)
    elif isinstance(config, dict):
        cfg = resolve_config(preset=preset, config_dict=config, overrides=overrides)
    else:
        cfg = resolve_config(preset=preset, config_file=config, overrides=overrides)
    out_dir = Path(out) if out is not None else Path("runs") / (cfg.preset or cfg.task)
    from .training import distributed

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
        out_dir = PIPELINES[cfg.task](cfg, out_dir, resume=resume, callbacks=callbacks)
        if dist is not None:
            dist.barrier()  # leave together: the other ranks wait while rank 0 writes the report
        return out_dir
    finally:
        if dist is not None:
            dist.close()


RESUME_CHANGEABLE = ("time_budget", "device", "threads")  # settings a resumed run may change


def _resume_config(out_dir: Path, cfg: Config, overrides: dict[str, Any]) -> Config:
    """The saved config of the run to resume, with only :data:`RESUME_CHANGEABLE` settings changed."""
    run = RunFolder(out_dir)
    run.require(ck.CONFIG, ck.TRAINER_STATE)
    saved = _read_config(run)
    given = {k: v for k, v in overrides.items() if v is not None}
    changed = [k for k in given if k not in RESUME_CHANGEABLE and _value(saved, k) != _value(cfg, k)]
    if changed:
        raise ConfigError(
            f"--resume continues {out_dir} with its saved settings; these differ: {', '.join(changed)} "
            f"(only {', '.join(RESUME_CHANGEABLE)} may change)"
        )
    keep = {k: given[k] for k in given if k in RESUME_CHANGEABLE}
    return resolve_config(config_dict=saved.to_dict(), overrides=keep)


def _value(cfg: Config, name: str) -> Any:
    for part in (cfg.model, cfg.data, cfg.train):
        if hasattr(part, name):
            return getattr(part, name)
    return getattr(cfg, name, None)


def _read_config(run: RunFolder) -> Config:
    raw = run.read_json(ck.CONFIG)
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise RunFolderError(f"{run.file(ck.CONFIG)}: expected an object with a 'config' object")
    try:
        return Config.from_dict(raw["config"])
    except ConfigError as e:
        raise RunFolderError(f"{run.file(ck.CONFIG)}: {e}") from None


def _text_cols(cfg: Config) -> tuple[str, ...]:
    return tuple(c.strip() for c in cfg.data.text_col.split(",") if c.strip())


def _read(spec: str, cfg: Config, progress: Callable | None = None) -> list:
    from .data import read_examples

    options: dict[str, Any] = {"text_cols": _text_cols(cfg), "label_col": cfg.data.label_col}
    if progress is not None:
        options["progress"] = progress
    examples = read_examples(spec, **options)
    if not examples:
        raise DataError("no examples", path=spec)
    return examples


@dataclass
class Splits:
    """The examples of a classification run and where each split came from."""

    train: list
    valid: list
    test: list | None
    sources: dict[str, str] = field(default_factory=dict)


def load_splits(cfg: Config) -> Splits:
    """Train / valid / test examples: given specs, else the dataset's own splits, else a held-out part.

    ``--valid`` given: used. Not given: the registered dataset's ``valid`` split, else a stratified
    ``valid_fraction`` of train (seeded). ``--test`` likewise, without the hold-out (no test → None).
    """
    from .data import companion_split, train_valid_split

    d = cfg.data
    train_examples = _read(d.data, cfg)
    sources = {"train": d.data}
    valid_spec = d.valid or companion_split(d.data, "valid")
    if valid_spec:
        valid_examples = _read(valid_spec, cfg)
        sources["valid"] = valid_spec
    else:
        train_examples, valid_examples = train_valid_split(train_examples, d.valid_fraction, cfg.train.seed)
        sources["valid"] = f"{d.valid_fraction:g} of {d.data} (stratified, seed {cfg.train.seed})"
    test_spec = d.test or companion_split(d.data, "test")
    test_examples = _read(test_spec, cfg) if test_spec else None
    if test_spec:
        sources["test"] = test_spec
    return Splits(train_examples, valid_examples, test_examples, sources)


def _encode(examples: list, encoder, labels, spec: str | None) -> list[tuple[list[int], int | None]]:
    """``(ids, label id)`` items; a text with no tokens becomes one ``<unk>``."""
    texts = [e.text for e in examples]
    ids = encoder.encode_many(texts)
    unk = encoder.vocab.unk_id
    items = []
    for example, seq in zip(examples, ids, strict=True):
        label = None if labels is None or example.label is None else labels.encode(example.label, path=spec)
        items.append((seq or [unk], label))
    return items


def _sampler(items: list, cfg: Config, *, train: bool):
    """Training: shuffled batches (bucketed by length if ``bucket``). Evaluation: sorted by length
    (large batches) when bucketing, else the file's order in batches of ``batch_size``."""
    from .data import BucketBatchSampler

    max_len = cfg.data.max_len
    lengths = [min(len(ids), max_len or len(ids)) for ids, _ in items]
    if train:
        pool = 50 if cfg.data.bucket else 1  # a pool of one batch = plain random batches
        return BucketBatchSampler(
            lengths, cfg.train.batch_size, shuffle=True, seed=cfg.train.seed, pool_batches=pool
        )
    if cfg.data.bucket:
        return BucketBatchSampler(
            lengths, max(cfg.train.batch_size, 256), max_tokens=EVAL_BATCH_TOKENS, shuffle=False
        )
    size = cfg.train.batch_size
    return [list(range(i, min(i + size, len(items)))) for i in range(0, len(items), size)]


def _loader(items: list, cfg: Config, pad_id: int, *, train: bool, dist=None):
    """Batches of ``items``; in a distributed run (``dist``), this rank's rows of every training batch."""
    from functools import partial

    from .data import collate
    from .training.distributed import ShardedBatches
    from .training.loop import BatchLoader

    collate_fn = partial(collate, pad_id=pad_id, max_len=cfg.data.max_len)
    if dist is not None and train:
        sampler = _sampler(items, cfg, train=True)
        return ShardedBatches(items, sampler, collate_fn, num_replicas=dist.world_size, rank=dist.rank)
    return BatchLoader(items, _sampler(items, cfg, train=train), collate_fn)


@dataclass
class Encoded:
    """A classification run's vocabulary, labels and encoded ``(ids, label)`` items per split."""

    encoder: Any
    labels: Any
    train: list
    valid: list
    report: list  # the data of the final report: test, else valid
    report_split: str  # "test" or "valid"


def _encode_splits(cfg: Config, splits: Splits, run: RunFolder, resume: bool) -> tuple[Config, Encoded]:
    """Fit (or, on resume, read back) the vocabulary and labels, and encode every split.

    Everything is encoded before training starts, so an unseen validation or test label stops the run at
    once. With ``--vectors``, ``embed_dim`` becomes the vectors' size.
    """
    cfg, encoder, labels = _vocabulary(cfg, splits, run, resume)
    return cfg, _encode_all(splits, encoder, labels)


def _vocabulary(cfg: Config, splits: Splits, run: RunFolder, resume: bool):
    """``(cfg, encoder, labels)``: fitted on the training split, or read back from the run on resume."""
    from .data import LabelEncoder, TextEncoder
    from .models.embedding import vectors_dim

    if resume:
        encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
        labels = LabelEncoder(_read_labels(run))
    else:
        texts = [e.text for e in splits.train]
        d = cfg.data
        encoder = TextEncoder.fit(texts, tokenizer=d.tokenizer, min_freq=d.min_freq, max_size=d.max_vocab)
        labels = LabelEncoder().fit(e.label for e in splits.train)
        if len(labels) < 2:
            raise DataError(f"classification needs at least 2 labels in training, got {labels.names}")
        if cfg.model.vectors and (dim := vectors_dim(cfg.model.vectors)) != cfg.model.embed_dim:
            logger.warning(f"embed_dim set to {dim}, the size of the vectors in {cfg.model.vectors}")
            cfg = resolve_config(config_dict=cfg.to_dict(), overrides={"embed_dim": dim})
    return cfg, encoder, labels


def _encode_all(splits: Splits, encoder, labels) -> Encoded:
    train = _encode(splits.train, encoder, labels, splits.sources["train"])
    valid = _encode(splits.valid, encoder, labels, splits.sources["valid"])
    report, split = valid, "valid"
    if splits.test is not None:
        report, split = _encode(splits.test, encoder, labels, splits.sources["test"]), "test"
    return Encoded(encoder, labels, train, valid, report, split)


def _prepare_distributed(dist, cfg: Config, run: RunFolder, resume: bool) -> tuple[Splits, Config, Encoded]:
    """:func:`load_splits` + :func:`_encode_splits` + the run folder's start, for one rank of several.

    Every rank reads its copy of the data; rank 0 alone fits (or reads back) the vocabulary and labels
    and sends them to the others; every rank checks that all encoded the same training data; rank 0
    alone writes the run folder. A failure on any rank stops every rank with its message.
    """
    from .data import LabelEncoder, TextEncoder
    from .training.distributed import check_world_size, items_fingerprint

    splits = dist.collectively(lambda: load_splits(cfg), "reading the data")

    def build() -> tuple[dict, dict, list[str]]:
        built_cfg, encoder, labels = _vocabulary(cfg, splits, run, resume)
        return built_cfg.to_dict(), encoder.to_dict(), labels.names

    cfg_dict, encoder_dict, names = dist.run_on_main(build)
    cfg, encoder = Config.from_dict(cfg_dict), TextEncoder.from_dict(encoder_dict)
    labels = LabelEncoder(names)
    data = dist.collectively(lambda: _encode_all(splits, encoder, labels), "encoding the data")
    tokens = sum(len(ids) for ids, _ in data.train)
    described = f"{len(data.train):,} examples, {tokens:,} tokens"
    dist.check_same(
        {
            "rnnkit version": (__version__, __version__),
            "vocabulary": (encoder_dict, f"{len(encoder):,} tokens"),
            "training data": (items_fingerprint(data.train), described),
        },
        hint="every process must read the same data files (copy them to every machine, or use a shared "
        "file system) with the same rnnkit installed",
    )
    check_world_size(dist.world_size, cfg.train.batch_size, len(data.train))
    if not resume:
        dist.run_on_main(lambda: _start_run_folder(run, cfg, encoder, labels))
    return splits, cfg, data


def _build_classifier(cfg: Config, data: Encoded, resume: bool):
    """The seeded model, with pretrained vectors loaded (not on resume: the checkpoint has them)."""
    from .models.classifier import TextClassifier
    from .models.embedding import load_vectors_into
    from .utils import set_seed

    vocab = data.encoder.vocab
    set_seed(cfg.train.seed)
    sparse = cfg.train.sparse_embeddings and not cfg.model.freeze_vectors
    n_labels = len(data.labels)
    model = TextClassifier.from_config(cfg.model, len(vocab), n_labels, pad_id=vocab.pad_id, sparse=sparse)
    vectors_info = None
    if cfg.model.vectors and not resume:
        counts = Counter(i for ids, _ in data.train for i in ids)
        vectors_info = load_vectors_into(
            model.embedding, cfg.model.vectors, vocab.itos, [vocab.pad_id, vocab.unk_id], token_counts=counts
        )
    if cfg.model.freeze_vectors:
        model.embedding.weight.requires_grad_(False)
    return model, vectors_info


def _train_classifier(cfg: Config, out_dir: Path, *, resume: bool, callbacks: Sequence[Any]) -> Path:
    """The classification pipeline: data → vocabulary → model → Trainer → report and plots."""
    from .models.classifier import ClassificationTask
    from .training import distributed
    from .training.loop import Trainer
    from .utils import resolve_device

    run = RunFolder(out_dir)
    dist = distributed.current()  # set in one of several processes (rnnkit.training.distributed)
    if dist is None:
        device = resolve_device(cfg.train.device)
        splits = load_splits(cfg)
        cfg, data = _encode_splits(cfg, splits, run, resume)
        if not resume:
            _start_run_folder(run, cfg, data.encoder, data.labels)
    else:
        device = dist.device
        splits, cfg, data = _prepare_distributed(dist, cfg, run, resume)
    model, vectors_info = _build_classifier(cfg, data, resume)
    pad = data.encoder.vocab.pad_id
    task = ClassificationTask(device)
    trainer = Trainer(
        model if dist is None else dist.wrap(model),
        task if dist is None else distributed.ShardedTask(task),
        _loader(data.train, cfg, pad, train=True, dist=dist),
        _loader(data.valid, cfg, pad, train=False),
        config=cfg.train,
        out_dir=out_dir,
        callbacks=callbacks,
        is_main=dist is None or dist.is_main,
        device=device,
        distributed=dist,
    )
    result = trainer.fit(resume=resume)
    if dist is not None and not dist.is_main:
        return out_dir  # rank 0 writes the report

    t0 = time.perf_counter()
    report = _report(model, data.report, data.labels.names, cfg, device)
    report.update(
        split=data.report_split,
        data=splits.sources[data.report_split],
        eval_seconds=round(time.perf_counter() - t0, 3),
        train_seconds=round(result.train_seconds, 3),
        tokens_per_s=round(result.tokens_per_s, 1),
        parameters=sum(p.numel() for p in model.parameters()),
        device=_device_name(device, cfg) + (f" × {dist.world_size} processes" if dist else ""),
        steps=result.step,
        epochs=round(result.epoch, 4),
        stop_reason=result.stop_reason,
        best_valid=result.best_metrics,
        sources=splits.sources,
    )
    vectors = _vectors_report(vectors_info) if vectors_info is not None else None
    if vectors is None and resume and run.exists(ck.REPORT):  # the interrupted session measured them
        vectors = run.read_json(ck.REPORT).get("vectors")
    if vectors is not None:
        report["vectors"] = vectors
    run.write_json(ck.REPORT, report)
    _plot(run, trainer.state.history, report)
    return out_dir


def _vectors_report(info) -> dict[str, Any]:
    return {
        "path": info.path,
        "coverage": round(info.coverage, 4),
        "token_coverage": round(info.token_coverage or 0.0, 4),
        "found": info.found,
        "words": info.words,
    }


def _start_run_folder(run: RunFolder, cfg: Config, encoder, labels) -> None:
    """Write config, vocab and labels; remove what an earlier run in the same folder left behind."""
    if run.exists(ck.CONFIG):
        logger.warning(f"replacing the run in {run.path}")
    for name in (ck.WEIGHTS, ck.TRAINER_STATE, ck.METRICS, ck.REPORT, ck.CURVES, ck.CONFUSION):
        run.file(name).unlink(missing_ok=True)
    run.write_json(ck.CONFIG, {"rnnkit_version": __version__, "task": cfg.task, "config": cfg.to_dict()})
    run.write_json(ck.VOCAB, encoder.to_dict())
    run.write_json(ck.LABELS, labels.names)


def _read_labels(run: RunFolder) -> list[str]:
    names = run.read_json(ck.LABELS)
    valid = isinstance(names, list) and all(isinstance(n, str) for n in names)
    if not valid or len(set(names)) != len(names):
        raise RunFolderError(f"{run.file(ck.LABELS)}: expected a list of distinct class names")
    return names


def _device_name(device: torch.device, cfg: Config) -> str:
    from .training.loop import cpu_threads

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_threads(cfg.train)} threads)"


def _predict_items(model, items: list, cfg: Config, pad_id: int, device) -> torch.Tensor:
    """Probabilities ``[n, C]`` in the items' order (batches are sorted by length for speed)."""
    from .data import BucketBatchSampler, collate
    from .models.classifier import predict_proba

    lengths = [min(len(ids), cfg.data.max_len or len(ids)) for ids, _ in items]
    sampler = BucketBatchSampler(lengths, 256, max_tokens=EVAL_BATCH_TOKENS, shuffle=False)
    order = [i for batch in sampler for i in batch]
    batches = (collate([items[i] for i in b], pad_id=pad_id, max_len=cfg.data.max_len) for b in sampler)
    probs = predict_proba(model, batches, device)
    out = torch.empty_like(probs)
    out[torch.tensor(order)] = probs
    return out


def _report(model, items: list, names: list[str], cfg: Config, device) -> dict[str, Any]:
    from .training.metrics import classification_report

    probs = _predict_items(model, items, cfg, 0, device)
    y_true = [label for _, label in items]
    return classification_report(y_true, probs.argmax(dim=1).tolist(), names)


def _plot(run: RunFolder, history: list[dict], report: dict) -> None:
    from .training.plots import plot_confusion, plot_curves

    plot_curves(history, run.file(ck.CURVES))
    plot_confusion(report["confusion"], report["labels"], run.file(ck.CONFUSION))


PIPELINES: dict[str, Callable[..., Path]] = {"classify": _train_classifier}
"""task → ``pipeline(cfg, out_dir, *, resume, callbacks) -> Path``."""

DISTRIBUTED_TASKS: tuple[str, ...] = ("classify",)
"""Tasks whose pipeline trains data-parallel under torchrun (see :mod:`rnnkit.training.distributed`)."""


# ---------------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------------
class ClassifierRun:
    """A trained classifier loaded from its run folder.

    Attributes:
        path: the run folder.
        config: its :class:`~rnnkit.config.Config`.
        encoder: the :class:`~rnnkit.data.TextEncoder` (tokenizer + vocabulary).
        labels: class names in index order.
        model: the :class:`~rnnkit.models.classifier.TextClassifier`, in eval mode.
        device: where the model runs.
    """

    def __init__(self, path: Path, config: Config, encoder, labels: list[str], model, device: torch.device):
        self.path = path
        self.config = config
        self.encoder = encoder
        self.labels = labels
        self.model = model.eval()
        self.device = device

    def __repr__(self) -> str:
        return f"ClassifierRun({str(self.path)!r}, labels={len(self.labels)}, vocab={len(self.encoder)})"

    def predict(self, texts: str | Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """Label and probabilities for each text.

        Args:
            texts: one text or a list of texts.
            top_k: keep only the ``top_k`` most likely labels in ``probs`` (None: all labels).

        Returns:
            One dict per text: ``{"text", "label", "probability", "probs": {label: p}}`` with
            ``probs`` ordered from most to least likely.

        Raises:
            ValueError: ``top_k`` < 1.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if top_k is not None and top_k < 1:
            raise ConfigError(f"--top-k must be ≥ 1, got {top_k}")
        if not texts:
            return []
        items = [(ids or [self.encoder.vocab.unk_id], None) for ids in self.encoder.encode_many(texts)]
        probs = _predict_items(self.model, items, self.config, self.encoder.vocab.pad_id, self.device)
        k = len(self.labels) if top_k is None else min(top_k, len(self.labels))
        values, indices = probs.topk(k, dim=1)
        results = []
        for text, vals, idx in zip(texts, values.tolist(), indices.tolist(), strict=True):
            ranked = {self.labels[i]: round(p, 6) for p, i in zip(vals, idx, strict=True)}
            results.append({"text": text, "label": self.labels[idx[0]], "probability": round(vals[0], 6),
                            "probs": ranked})  # fmt: skip
        return results

    def evaluate(
        self, data: str | os.PathLike, *, text_col: str | None = None, label_col: str | None = None
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1 and confusion on labelled data.

        Args:
            data: a data SPEC (file, folder or registered name).
            text_col, label_col: columns to read (default: those the run was trained with).

        Returns:
            ``report.json``'s metric object: ``accuracy, macro_f1, per_class, confusion, labels, n``.

        Raises:
            DataError: unreadable data, an unlabelled example, or a label not seen in training.
        """
        from .data import LabelEncoder, read_examples

        cols = text_col or self.config.data.text_col
        examples = read_examples(
            str(data),
            text_cols=tuple(c.strip() for c in cols.split(",")),
            label_col=label_col or self.config.data.label_col,
        )
        if not examples:
            raise DataError("no examples to evaluate", path=data)
        if any(e.label is None for e in examples):
            raise DataError("evaluation needs a label on every example", path=data)
        items = _encode(examples, self.encoder, LabelEncoder(self.labels), str(data))
        return _report(self.model, items, self.labels, self.config, self.device)

    def inspect(self, text: str, **options: Any):
        """Every token's states and gates, per-prefix probabilities and token contributions for ``text``.

        Returns:
            An :class:`rnnkit.inspect.Inspection` (``.states(layer, direction, name)``, ``.prefix_probs``,
            ``.contributions``, ``.save_html(path)``); ``options`` go to :func:`rnnkit.inspect.inspect_text`.
        """
        from .inspect import inspect_text

        return inspect_text(self, text, **options)


def _load_classifier(run: RunFolder, config: Config, device: torch.device) -> ClassifierRun:
    from .data import TextEncoder
    from .models.classifier import TextClassifier

    run.require(ck.VOCAB, ck.LABELS, ck.WEIGHTS)
    encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
    labels = _read_labels(run)
    model = TextClassifier.from_config(config.model, len(encoder), len(labels), pad_id=encoder.vocab.pad_id)
    check_weights(run, model.state_dict(), run.load_weights(), len(encoder), len(labels))
    model.load_state_dict(run.load_weights())
    return ClassifierRun(run.path, config, encoder, labels, model.to(device), device)


def check_weights(
    run: RunFolder,
    expected: dict[str, torch.Tensor],
    found: dict[str, torch.Tensor],
    vocab: int,
    classes: int,
) -> None:
    """Raise :class:`RunFolderError` unless ``found`` has exactly ``expected``'s names and shapes."""
    where = run.file(ck.WEIGHTS)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise RunFolderError(
            f"{where}: does not match config.json (missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(unexpected) or 'none'})"
        )
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise RunFolderError(
                f"{where}: {name} has shape {list(found[name].shape)}, but config.json, vocab.json "
                f"({vocab} tokens) and labels.json ({classes} classes) need {list(tensor.shape)}"
            )


LOADERS: dict[str, Callable[[RunFolder, Config, torch.device], Any]] = {"classify": _load_classifier}
"""task → ``loader(run_folder, config, device)``."""


def load(run_dir: str | os.PathLike, *, device: str | torch.device = "auto"):
    """Load a trained run folder.

    Args:
        run_dir: the folder ``rnnkit train`` wrote.
        device: where to run the model (``"auto"``: CUDA when present).

    Returns:
        For a classifier, a :class:`ClassifierRun` with ``.predict(texts, top_k=None)`` and
        ``.evaluate(data)``.

    Raises:
        RunFolderError: the folder is missing, incomplete, or its files disagree with each other.
    """
    from .utils import resolve_device

    run = RunFolder(run_dir)
    run.require(ck.CONFIG)
    config = _read_config(run)
    raw_task = run.read_json(ck.CONFIG).get("task", config.task)
    if raw_task not in LOADERS:
        raise RunFolderError(f"{run.file(ck.CONFIG)}: task {raw_task!r} cannot be loaded by this version")
    return LOADERS[raw_task](run, config, resolve_device(device))


# ---------------------------------------------------------------------------------------------------
# language models (task "lm"): train, load, generate, evaluate
# ---------------------------------------------------------------------------------------------------
def _lm_corpora(cfg: Config) -> tuple[str, str, str | None, dict[str, str]]:
    """Train text, validation text, test spec (or None) and where each came from.

    Validation: ``--valid``, else the corpus's own ``valid`` split, else the last ``valid_fraction`` of
    the training text (moved back to a line start).
    """
    from .data import companion_split, read_corpus
    from .training.lm import split_corpus

    d = cfg.data
    train_text = read_corpus(d.data)
    sources = {"train": d.data}
    valid_spec = d.valid or companion_split(d.data, "valid")
    if valid_spec:
        valid_text = read_corpus(valid_spec)
        sources["valid"] = valid_spec
    else:
        train_text, valid_text = split_corpus(train_text, d.valid_fraction)
        sources["valid"] = f"last {d.valid_fraction:g} of {d.data}"
    test_spec = d.test or companion_split(d.data, "test")
    if test_spec:
        sources["test"] = test_spec
    return train_text, valid_text, test_spec, sources


def _train_language_model(cfg: Config, out_dir: Path, *, resume: bool, callbacks: Sequence[Any]) -> Path:
    from .data import TextEncoder, read_corpus
    from .models.language_model import LanguageModel
    from .training.lm import LanguageModelTask, eval_batches, train_batches
    from .training.loop import Trainer
    from .training.plots import plot_curves
    from .utils import resolve_device, set_seed

    run = RunFolder(out_dir)
    device = resolve_device(cfg.train.device)
    d, t = cfg.data, cfg.train
    train_text, valid_text, test_spec, sources = _lm_corpora(cfg)
    if resume:
        encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
    else:
        encoder = TextEncoder.fit([train_text], tokenizer=d.tokenizer, min_freq=d.min_freq,
                                  max_size=d.max_vocab, lm=True)  # fmt: skip
        _start_lm_run_folder(run, cfg, encoder)
    task = LanguageModelTask(device, char_level=d.tokenizer == "char")
    set_seed(t.seed)
    model = LanguageModel.from_config(cfg.model, len(encoder))
    trainer = Trainer(
        model,
        task,
        train_batches(encoder.encode(train_text), t.batch_size, t.bptt, path=sources["train"]),
        eval_batches(encoder.encode(valid_text), t.batch_size, t.bptt, path=sources["valid"]),
        config=t,
        out_dir=out_dir,
        callbacks=callbacks,
        device=device,
    )
    result = trainer.fit(resume=resume)

    t0 = time.perf_counter()
    if test_spec:
        test_ids = encoder.encode(read_corpus(test_spec))
        model.eval()
        with torch.no_grad():
            metrics = task.evaluate(model, eval_batches(test_ids, t.batch_size, t.bptt, path=test_spec))
        report: dict[str, Any] = {"split": "test", "data": test_spec, **metrics}
    else:
        report = {"split": "valid", "data": sources["valid"], **result.best_metrics}
    report.update(
        eval_seconds=round(time.perf_counter() - t0, 3),
        train_seconds=round(result.train_seconds, 3),
        tokens_per_s=round(result.tokens_per_s, 1),
        parameters=sum(p.numel() for p in model.parameters()),
        tied_weights=model.tied,
        vocab_size=len(encoder),
        device=_device_name(device, cfg),
        steps=result.step,
        epochs=round(result.epoch, 4),
        stop_reason=result.stop_reason,
        best_valid=result.best_metrics,
        sources=sources,
    )
    run.write_json(ck.REPORT, report)
    plot_curves(trainer.state.history, run.file(ck.CURVES))
    return out_dir


def _start_lm_run_folder(run: RunFolder, cfg: Config, encoder) -> None:
    """Write config and vocab; remove what an earlier run in the same folder left behind."""
    if run.exists(ck.CONFIG):
        logger.warning(f"replacing the run in {run.path}")
    for name in (ck.WEIGHTS, ck.TRAINER_STATE, ck.METRICS, ck.REPORT, ck.CURVES, ck.CONFUSION, ck.LABELS):
        run.file(name).unlink(missing_ok=True)
    run.write_json(ck.CONFIG, {"rnnkit_version": __version__, "task": cfg.task, "config": cfg.to_dict()})
    run.write_json(ck.VOCAB, encoder.to_dict())


class LanguageModelRun:
    """A trained language model loaded from its run folder.

    Attributes:
        path: the run folder.
        config: its :class:`~rnnkit.config.Config`.
        encoder: the :class:`~rnnkit.data.TextEncoder` (tokenizer + vocabulary).
        model: the :class:`~rnnkit.models.language_model.LanguageModel`, in eval mode.
        device: where the model runs.
    """

    def __init__(self, path: Path, config: Config, encoder, model, device: torch.device):
        self.path = path
        self.config = config
        self.encoder = encoder
        self.model = model.eval()
        self.device = device

    def __repr__(self) -> str:
        tokenizer = self.encoder.tokenizer.name
        return f"LanguageModelRun({str(self.path)!r}, tokenizer={tokenizer!r}, vocab={len(self.encoder)})"

    def stream(
        self,
        prime: str = "",
        length: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ):
        """Yield the prime, then the generated text piece by piece as each token is sampled.

        Args:
            prime: text to continue ("" starts fresh). Tokens outside the vocabulary are read as
                ``<unk>``, with one warning.
            length: tokens to generate (characters for a character model, words for a word model).
            temperature: ``0`` is greedy (always the most likely token); higher is more random.
            top_k: sample among the ``k`` most likely tokens only.
            top_p: sample among the most likely tokens that together have probability ``top_p`` ∈ (0, 1].
            seed: makes the sampling reproducible.

        Raises:
            ConfigError: an option out of range (raised at the call, before anything is generated).
        """
        from .generate import stream

        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        return stream(self.model, self.encoder, prime, length, **options)

    def generate(
        self,
        prime: str = "",
        length: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> str:
        """The prime followed by ``length`` generated tokens, as one string; see :meth:`stream`."""
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        return "".join(self.stream(prime, length, **options))

    def evaluate(
        self, data: str | os.PathLike, *, text_col: str | None = None, label_col: str | None = None
    ) -> dict[str, Any]:
        """Loss (nats per token), perplexity and, for character models, bits per character on a text.

        Args:
            data: a text file or a registered corpus (``shakespeare:valid``).
            text_col, label_col: not used by language models (an error if given).

        Returns:
            ``{"loss", "perplexity", "bpc" (character models), "tokens"}``.

        Raises:
            DataError: unreadable data or fewer than 2 tokens; ConfigError: a column option was given.
        """
        from .data import read_corpus
        from .training.lm import LanguageModelTask, eval_batches

        if text_col or label_col:
            raise ConfigError("--text-col and --label-col are for classifiers; a language model reads text")
        ids = self.encoder.encode(read_corpus(str(data)))
        t = self.config.train
        batches = eval_batches(ids, t.batch_size, t.bptt, path=str(data))
        task = LanguageModelTask(self.device, char_level=self.encoder.tokenizer.name == "char")
        with torch.no_grad():
            metrics = task.evaluate(self.model, batches)
        return {**metrics, "tokens": batches.tokens}

    def inspect(self, text: str, **options: Any):
        """Every token's states and gates, and the probability given to each actual next token.

        Returns:
            An :class:`rnnkit.inspect.Inspection` (``.states(layer, direction, name)``,
            ``.next_token_probs``, ``.save_html(path)``); ``options`` go to
            :func:`rnnkit.inspect.inspect_text`.
        """
        from .inspect import inspect_text

        return inspect_text(self, text, **options)

    def predict(self, texts, top_k: int | None = None):
        """Not for language models: raises :class:`RunFolderError` pointing to :meth:`generate`."""
        raise RunFolderError(
            f"{self.path} is a language model (task lm): it generates text (`rnnkit generate`), "
            f"it does not label texts"
        )


def _load_language_model(run: RunFolder, config: Config, device: torch.device) -> LanguageModelRun:
    from .data import TextEncoder
    from .models.language_model import LanguageModel

    run.require(ck.VOCAB, ck.WEIGHTS)
    encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
    model = LanguageModel.from_config(config.model, len(encoder))
    weights = run.load_weights()
    expected = model.state_dict()
    mismatch = sorted(set(expected) ^ set(weights)) or [
        name for name, tensor in expected.items() if tuple(weights[name].shape) != tuple(tensor.shape)
    ]
    if mismatch:
        raise RunFolderError(
            f"{run.file(ck.WEIGHTS)}: does not match config.json and vocab.json ({len(encoder)} tokens): "
            f"{', '.join(mismatch[:5])} differ in name or shape"
        )
    model.load_state_dict(weights)
    return LanguageModelRun(run.path, config, encoder, model.to(device), device)


PIPELINES["lm"] = _train_language_model
LOADERS["lm"] = _load_language_model
