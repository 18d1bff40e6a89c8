"""Text classification: data → vocabulary → embedding + recurrent encoder + linear head → report.

:func:`train_classifier` is the ``"classify"`` pipeline behind ``rnnkit.train``; :func:`load_classifier`
rebuilds a :class:`ClassifierRun` from its run folder for ``rnnkit.load``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..config import Config, resolve_config
from ..errors import ConfigError, DataError, RunFolderError
from ..training import checkpoint as ck
from ..training.checkpoint import RunFolder
from . import recipe
from .common import (
    begin_training,
    build_checked_model,
    check_trainable,
    device_name,
    notify,
    start_run_folder,
    vectors_report,
)

EVAL_BATCH_TOKENS = 16_384  # padded tokens per evaluation batch (bucketed evaluation)
# Training batches are bucketed within pools of 50 batches: 5.1 % padding on AG News at batch 64, against
# 2.9 % for the sampler's default 100 — but with 100 the batches are so uniform in length that `default`
# scored 0.880 instead of 0.897 on AG News (same seed; benchmarks/ag_news.py).
TRAIN_BUCKET_POOL = 50


def _text_cols(cfg: Config) -> tuple[str, ...]:
    return tuple(c.strip() for c in cfg.data.text_col.split(",") if c.strip())


def _read(spec: str, cfg: Config, progress: Callable | None = None) -> list:
    from ..data import read_examples

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
    valid_held_out: bool = False  # the validation examples were carved out of the training data


def load_splits(cfg: Config) -> Splits:
    """Train / valid / test examples: given specs, else the dataset's own splits, else a held-out part.

    ``--valid`` given: used. Not given: the registered dataset's ``valid`` split, else a stratified
    ``valid_fraction`` of train (seeded). ``--test`` likewise, without the hold-out (no test → None).
    """
    from ..data import companion_split, train_valid_split

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
    held_out = not (d.valid or companion_split(d.data, "valid"))
    if test_spec:
        sources["test"] = test_spec
    return Splits(train_examples, valid_examples, test_examples, sources, valid_held_out=held_out)


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
    from ..data import BucketBatchSampler

    lengths = [len(ids) for ids, _ in items]
    if train:
        pool = TRAIN_BUCKET_POOL if cfg.data.bucket else 1  # a pool of one batch = random batches
        return BucketBatchSampler(
            lengths, cfg.train.batch_size, shuffle=True, seed=cfg.train.seed, pool_batches=pool
        )
    if cfg.data.bucket:
        return BucketBatchSampler(
            lengths, max(cfg.train.batch_size, 256), max_tokens=EVAL_BATCH_TOKENS, shuffle=False
        )
    return _in_order(len(items), cfg.train.batch_size)


def _in_order(n: int, size: int) -> list[list[int]]:
    """Batches of ``size`` consecutive indices, in the data's order."""
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def _loader(items: list, cfg: Config, pad_id: int, *, train: bool, dist=None):
    """Batches of ``items``; in a distributed run (``dist``), this rank's rows of every training batch."""
    from functools import partial

    from ..data import collate
    from ..training.distributed import ShardedBatches
    from ..training.loop import BatchLoader

    collate_fn = partial(collate, pad_id=pad_id)  # whole texts: the model cuts what its encoder reads
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
    from ..data import LabelEncoder, TextEncoder
    from ..models.embedding import resolve_vectors, vectors_dim

    if resume:
        encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
        labels = LabelEncoder(_read_labels(run))
    else:
        texts = [e.text for e in splits.train]
        d = cfg.data
        encoder = TextEncoder.fit(texts, tokenizer=d.tokenizer, min_freq=d.min_freq, max_size=d.max_vocab)
        labels = _fit_labels(splits)
        vectors = resolve_vectors(cfg.model.vectors, d.tokenizer)
        if vectors and (dim := vectors_dim(vectors)) != cfg.model.embed_dim:  # the vectors set the size
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
    from ..data import LabelEncoder, TextEncoder
    from ..training.distributed import check_world_size, items_fingerprint

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
        cfg, _ = recipe.plan(cfg, data.train)  # the same on every rank: a function of the data
        dist.run_on_main(lambda: start_run_folder(run, cfg, encoder, labels))
    return splits, cfg, data


def _build_classifier(cfg: Config, data: Encoded, resume: bool, device: torch.device):
    """The seeded model, with pretrained vectors loaded (not on resume: the checkpoint has them); its
    memory is checked first."""
    from ..models.classifier import TextClassifier
    from ..models.embedding import load_vectors_into, resolve_vectors
    from ..utils import set_seed

    vocab = data.encoder.vocab
    set_seed(cfg.train.seed)
    sparse = cfg.train.sparse_embeddings and not cfg.model.freeze_vectors
    n_labels = len(data.labels)
    max_len = cfg.data.max_len
    build = lambda: TextClassifier.from_config(  # noqa: E731
        cfg.model, len(vocab), n_labels, pad_id=vocab.pad_id, max_len=max_len
    )
    check_trainable(build, device)
    model = TextClassifier.from_config(
        cfg.model, len(vocab), n_labels, pad_id=vocab.pad_id, sparse=sparse, max_len=max_len
    )
    vectors_info = None
    vectors = resolve_vectors(cfg.model.vectors, cfg.data.tokenizer)
    if vectors and not resume:
        counts = Counter(i for ids, _ in data.train for i in ids)
        vectors_info = load_vectors_into(
            model.embedding, vectors, vocab.itos, [vocab.pad_id, vocab.unk_id], token_counts=counts
        )
    if cfg.model.freeze_vectors:
        model.embedding.weight.requires_grad_(False)
    return model, vectors_info


def data_summary(cfg: Config, data: Encoded) -> dict[str, Any]:
    """What the progress display's data line shows: split sizes, vocabulary, labels, texts cut."""
    max_len = cfg.data.max_len
    cut = sum(len(ids) > max_len for ids, _ in data.train) if max_len else 0
    return {
        "train": len(data.train),
        "valid": len(data.valid),
        "test": len(data.report) if data.report_split == "test" else None,
        "vocab": len(data.encoder),
        "labels": list(data.labels.names),
        "cut": cut,
        "max_len": max_len,
    }


def train_classifier(
    cfg: Config, out_dir: Path, *, resume: bool, callbacks: Sequence[Any], init_from: str | None = None
) -> Path:
    """The classification pipeline: data → vocabulary → model → Trainer → report and plots.

    ``init_from``: a trained classifier run whose weights, vocabulary and labels the model starts from
    (:mod:`rnnkit.pipelines.init_from`).
    """
    from ..training import distributed
    from ..training.loop import Trainer
    from ..utils import resolve_device

    run = RunFolder(out_dir)
    dist = distributed.current()  # set in one of several processes (rnnkit.training.distributed)
    pretrained = None
    if cfg.train.pretrain and not resume and init_from is None:
        from ..api import read_config
        from .init_from import with_source_settings
        from .pretrain import pretrain

        lm_folder, pretrained = pretrain(cfg, out_dir, callbacks)
        init_from = str(lm_folder)
        cfg = with_source_settings(cfg, read_config(RunFolder(lm_folder)), {})  # e.g. the vectors' size
    notify(callbacks, "on_stage", f"reading {cfg.data.data}")
    source = None
    if init_from is not None and not resume:
        if dist is not None:
            raise ConfigError("--init-from is not available in distributed training yet; use one process")
        from .init_from import load_source

        source = load_source(init_from)
    if source is not None:
        device = resolve_device(cfg.train.device)
        splits = load_splits(cfg)
        data = _encode_all(splits, *_source_vocabulary(source, cfg, splits))
        splits.sources["init_from"] = str(init_from)
    elif dist is None:
        device = resolve_device(cfg.train.device)
        splits = load_splits(cfg)
        cfg, data = _encode_splits(cfg, splits, run, resume)
    else:
        device = dist.device
        splits, cfg, data = _prepare_distributed(dist, cfg, run, resume)
    planned: dict[str, Any] = {}
    if not resume and dist is None:
        cfg, planned = recipe.plan(cfg, data.train)
    notify(callbacks, "on_data", data_summary(cfg, data))
    model, vectors_info = _build_classifier(cfg, data, resume or source is not None, device)
    if source is not None:
        from .init_from import copy_language_model, copy_weights

        if source.config.task == "lm":
            pretrained = {**(pretrained or {}), **copy_language_model(model, source, data.encoder)}
        else:
            copy_weights(model, source)
    pad, unk = data.encoder.vocab.pad_id, data.encoder.vocab.unk_id
    wide = None
    if model.wide is not None:  # fitted first, then frozen while the recurrent path trains
        if not resume:
            notify(callbacks, "on_stage", "fitting the n-gram path")
            wide = recipe.fit_wide(model, data.train, data.valid, ignore=(pad, unk))
        model.wide.requires_grad_(False)
    task = _task(cfg, data, device)
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
    if dist is None:  # everything is checked: only now does the run folder change
        begin_training(run, cfg, data.encoder, data.labels, resume=resume)
    result = trainer.fit(resume=resume)
    if dist is not None and not dist.is_main:
        return out_dir  # rank 0 writes the report

    mix = None
    if model.wide is not None:
        mix = recipe.choose_mix(model, data.valid, lambda m: _predict_items(m, data.valid, cfg, pad, device),
                                task.monitor)  # fmt: skip
        strength = float(model.wide.strength)  # saved with the weights, so a resumed run refits alike
        if splits.valid_held_out and strength > 0:  # the held-out rows are training data too
            refit = recipe.refit_wide(model, data.train + data.valid, strength, ignore=(pad, unk))
            if wide is not None:
                wide["refit"] = refit
        run.save_weights(model.state_dict())
    t0 = time.perf_counter()
    report = _report(model, data.report, data.labels.names, cfg, device)
    report.update(
        split=data.report_split,
        data=splits.sources[data.report_split],
        eval_seconds=round(time.perf_counter() - t0, 3),
        train_seconds=round(result.train_seconds, 3),
        tokens_per_s=round(result.tokens_per_s, 1),
        parameters=sum(p.numel() for p in model.parameters()),
        device=device_name(device, cfg) + (f" × {dist.world_size} processes" if dist else ""),
        steps=result.step,
        epochs=round(result.epoch, 4),
        stop_reason=result.stop_reason,
        best_valid=result.best_metrics,
        sources=splits.sources,
        train_examples=len(data.train),
        vocab_size=len(data.encoder),
        recipe={"preset": cfg.preset, "planned": planned, "monitor": task.monitor,
                "class_weight": cfg.train.class_weight, "ngrams": wide, "mix": mix},  # fmt: skip
    )
    if pretrained is not None:
        report["pretrained"] = pretrained
    elif resume and run.exists(ck.REPORT) and "pretrained" in (earlier := run.read_json(ck.REPORT)):
        report["pretrained"] = earlier["pretrained"]
    vectors = vectors_report(vectors_info) if vectors_info is not None else None
    if vectors is None and resume and run.exists(ck.REPORT):  # the interrupted session measured them
        vectors = run.read_json(ck.REPORT).get("vectors")
    if vectors is not None:
        report["vectors"] = vectors
    run.write_json(ck.REPORT, report)
    _plot(run, trainer.state.history, report, trainer.state.loss_log)
    return out_dir


def _source_vocabulary(source, cfg: Config, splits: Splits):
    """``(encoder, labels)`` of a run started from ``source``: a classifier's vocabulary and labels, or a
    language model's vocabulary with the training words it lacks and the training data's labels."""
    from .init_from import lm_vocabulary, source_vocabulary

    if source.config.task != "lm":
        return source_vocabulary(source, [e.label for e in splits.train])
    encoder, _ = lm_vocabulary(source.encoder, [e.text for e in splits.train], cfg.data.min_freq)
    return encoder, _fit_labels(splits)


def _fit_labels(splits: Splits):
    """The training split's labels, sorted; a :class:`DataError` if there are fewer than two."""
    from ..data import LabelEncoder

    labels = LabelEncoder().fit(e.label for e in splits.train)
    if len(labels) < 2:
        raise DataError(f"classification needs at least 2 labels in training, got {labels.names}")
    return labels


def _task(cfg: Config, data: Encoded, device: torch.device):
    """The training task: class weights as configured, and the metric that picks the best weights."""
    from ..training.classify import ClassificationTask, balanced_weights

    labels = [label for _, label in data.train]
    weights = balanced_weights(labels, len(data.labels)) if cfg.train.class_weight == "balanced" else None
    monitor = recipe.monitor_for(data.train, len(data.labels))
    return ClassificationTask(device, class_weights=weights, monitor=monitor)


def _read_labels(run: RunFolder) -> list[str]:
    names = run.read_json(ck.LABELS)
    valid = isinstance(names, list) and all(isinstance(n, str) for n in names)
    if not valid or len(set(names)) != len(names) or len(names) < 2:
        raise RunFolderError(f"{run.file(ck.LABELS)}: expected a list of at least 2 distinct class names")
    return names


def _predict_items(model, items: list, cfg: Config, pad_id: int, device) -> torch.Tensor:
    """Probabilities ``[n, C]`` in the items' order.

    Batches are sorted by length (no padding, fast) — unless the model reads the padding
    (``use_lengths=False``): its answers then depend on the batch, so it gets batches like those it
    was trained and validated on, ``batch_size`` texts in the data's order.
    """
    from ..data import BucketBatchSampler, collate
    from ..models.classifier import predict_proba

    lengths = [len(ids) for ids, _ in items]
    if cfg.model.use_lengths:
        sampler = BucketBatchSampler(lengths, 256, max_tokens=EVAL_BATCH_TOKENS, shuffle=False)
    else:
        sampler = _in_order(len(items), cfg.train.batch_size)
    order = [i for batch in sampler for i in batch]
    batches = (collate([items[i] for i in b], pad_id=pad_id) for b in sampler)
    probs = predict_proba(model, batches, device)
    out = torch.empty_like(probs)
    out[torch.tensor(order)] = probs
    return out


def _report(model, items: list, names: list[str], cfg: Config, device) -> dict[str, Any]:
    from ..training.metrics import classification_report

    probs = _predict_items(model, items, cfg, 0, device)
    y_true = [label for _, label in items]
    return classification_report(y_true, probs.argmax(dim=1).tolist(), names)


def _plot(run: RunFolder, history: list[dict], report: dict, loss_log: list | None = None) -> None:
    from ..training.plots import plot_confusion, plot_curves

    plot_curves(history, run.file(ck.CURVES), loss_log=loss_log)
    plot_confusion(report["confusion"], report["labels"], run.file(ck.CONFUSION))


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
        self,
        data: str | os.PathLike,
        *,
        text_col: str | None = None,
        label_col: str | None = None,
        predictions: bool = False,
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1, averages and confusion on labelled data.

        Args:
            data: a data SPEC (file, folder or registered name).
            text_col, label_col: columns to read (default: those the run was trained with).
            predictions: also return every example's prediction under ``"predictions"``:
                ``{"text", "label", "predicted", "probability", "correct"}`` in the data's order.

        Returns:
            ``report.json``'s metric object: ``accuracy, macro_f1, per_class, macro_avg, weighted_avg,
            confusion, labels, n`` (and ``predictions`` if asked).

        Raises:
            DataError: unreadable data, an unlabelled example, or a label not seen in training.
        """
        from ..data import LabelEncoder, read_examples

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
        if not predictions:
            return _report(self.model, items, self.labels, self.config, self.device)
        from ..training.metrics import classification_report

        probs = _predict_items(self.model, items, self.config, 0, self.device)
        best, chosen = probs.max(dim=1)
        report = classification_report([label for _, label in items], chosen.tolist(), self.labels)
        report["predictions"] = [
            {"text": e.text, "label": e.label, "predicted": self.labels[c], "probability": round(p, 6),
             "correct": e.label == self.labels[c]}
            for e, c, p in zip(examples, chosen.tolist(), best.tolist(), strict=True)
        ]  # fmt: skip
        return report

    def inspect(self, text: str, **options: Any):
        """Every token's states and gates, per-prefix probabilities and token contributions for ``text``.

        Returns:
            An :class:`rnnkit.inspect.Inspection` (``.states(layer, direction, name)``, ``.prefix_probs``,
            ``.contributions``, ``.save_html(path)``); ``options`` go to :func:`rnnkit.inspect.inspect_text`.
        """
        from ..inspect import inspect_text

        return inspect_text(self, text, **options)


def load_classifier(run: RunFolder, config: Config, device: torch.device) -> ClassifierRun:
    from ..data import TextEncoder
    from ..models.classifier import TextClassifier

    run.require(ck.VOCAB, ck.LABELS, ck.WEIGHTS)
    encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
    labels = _read_labels(run)
    described = f"vocab.json ({len(encoder)} tokens) and labels.json ({len(labels)} classes)"
    n_labels, pad_id = len(labels), encoder.vocab.pad_id
    build = lambda: TextClassifier.from_config(  # noqa: E731
        config.model, len(encoder), n_labels, pad_id=pad_id, max_len=config.data.max_len
    )
    model = build_checked_model(run, build, device, described)
    return ClassifierRun(run.path, config, encoder, labels, model.to(device), device)
