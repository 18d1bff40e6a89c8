"""Language models: a text corpus → character/word/BPE vocabulary → embedding + recurrent stack + softmax.

:func:`train_language_model` is the ``"lm"`` pipeline behind ``rnnkit.train``; :func:`load_language_model`
rebuilds a :class:`LanguageModelRun` (generate, stream, evaluate, inspect) for ``rnnkit.load``.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import Config, resolve_config
from ..errors import ConfigError, DataError, RunFolderError
from ..training import checkpoint as ck
from ..training.checkpoint import RunFolder
from .common import begin_training, build_checked_model, check_trainable, device_name, vectors_report


@dataclass
class Corpora:
    """A language model's texts: one running corpus, or documents each ended by ``<eos>``."""

    train: list[str]
    valid: list[str]
    test_spec: str | None
    sources: dict[str, str]
    documents: bool  # the texts are separate documents (ULMFiT pretraining), not pieces of one corpus

    def ids(self, encoder, texts: list[str]) -> list[int]:
        """The token ids of ``texts`` one after another; documents each end with ``<eos>``."""
        if not self.documents:
            return [i for text in texts for i in encoder.encode(text)]
        eos = encoder.vocab.eos_id
        return [i for seq in encoder.encode_many(texts) for i in (*seq, eos)]


MAX_VALID_CHARS = 250_000  # held out of a document set for validation, at most (~50k words)


def _held_out(texts: list[str], fraction: float) -> int:
    """How many of the last ``texts`` to hold out: ``fraction`` of them, but no more than
    :data:`MAX_VALID_CHARS` characters (evaluation is frequent and its cost grows with the text), at least 1.

    >>> _held_out(["x" * 100] * 50, 0.1), _held_out(["x" * 100_000] * 50, 0.1)
    (5, 2)
    """
    wanted = max(1, round(fraction * len(texts)))
    held, chars = 0, 0
    while held < wanted and (held == 0 or chars + len(texts[-held - 1]) <= MAX_VALID_CHARS):
        chars += len(texts[-held - 1])
        held += 1
    return held


def _lm_corpora(cfg: Config) -> Corpora:
    """Train texts, validation texts, test spec (or None) and where each came from.

    A running corpus (a ``.txt`` file, ``shakespeare``): validation is ``--valid``, else the corpus's own
    ``valid`` split, else the last ``valid_fraction`` of the text (moved back to a line start). A set of
    documents (a labelled dataset's texts, ``--unlabeled``): validation is ``--valid``, else a seeded
    ``valid_fraction`` of the documents (at most :data:`MAX_VALID_CHARS` characters).
    """
    from ..data import companion_split, read_corpus
    from ..data.documents import is_document_set, read_documents, read_unlabeled
    from ..training.lm import split_corpus

    d = cfg.data
    cols = tuple(c.strip() for c in d.text_col.split(",") if c.strip())
    documents = is_document_set(d.data) or d.unlabeled is not None
    sources = {"train": d.data}
    if not documents:
        train_text = read_corpus(d.data)
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
        return Corpora([train_text], [valid_text], test_spec, sources, documents=False)
    texts = read_documents(d.data, cols) if is_document_set(d.data) else [read_corpus(d.data)]
    if d.unlabeled is not None:
        extra = read_unlabeled(d.unlabeled, cols)
        texts += extra
        sources["unlabeled"] = f"{d.unlabeled} ({len(extra):,} texts)"
    order = random.Random(cfg.train.seed).sample(range(len(texts)), len(texts))
    texts = [texts[i] for i in order]
    if d.valid:
        valid = read_documents(d.valid, cols) if is_document_set(d.valid) else [read_corpus(d.valid)]
        sources["valid"] = d.valid
    else:
        held = _held_out(texts, d.valid_fraction)
        if held >= len(texts):
            raise DataError(f"{len(texts)} text(s) are too few to hold some out for validation; add --valid")
        texts, valid = texts[:-held], texts[-held:]
        sources["valid"] = f"{held:,} of the {len(texts) + held:,} texts (seed {cfg.train.seed})"
    sources["train"] = f"{d.data} ({len(texts):,} texts for training)"
    test_spec = d.test
    if test_spec:
        sources["test"] = test_spec
    return Corpora(texts, valid, test_spec, sources, documents=True)


def train_language_model(cfg: Config, out_dir: Path, *, resume: bool, callbacks: Sequence[Any]) -> Path:
    from ..data import TextEncoder
    from ..models.embedding import load_vectors_into, resolve_vectors, vectors_dim
    from ..models.language_model import LanguageModel
    from ..training.lm import LanguageModelTask, eval_batches, train_batches
    from ..training.loop import Trainer
    from ..training.plots import plot_curves
    from ..utils import resolve_device, set_seed

    run = RunFolder(out_dir)
    device = resolve_device(cfg.train.device)
    d, t = cfg.data, cfg.train
    corpora = _lm_corpora(cfg)
    test_spec, sources = corpora.test_spec, corpora.sources
    vectors = None if resume else resolve_vectors(cfg.model.vectors, d.tokenizer)
    if resume:
        encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
    else:
        encoder = TextEncoder.fit(corpora.train, tokenizer=d.tokenizer, min_freq=d.min_freq,
                                  max_size=d.max_vocab, lm=True)  # fmt: skip
        if vectors and (dim := vectors_dim(vectors)) != cfg.model.embed_dim:  # the vectors set the size
            cfg = resolve_config(config_dict=cfg.to_dict(), overrides={"embed_dim": dim})
    task = LanguageModelTask(device, char_level=d.tokenizer == "char", ar=t.ar, tar=t.tar)
    check_trainable(lambda: LanguageModel.from_config(cfg.model, len(encoder)), device)
    set_seed(t.seed)
    model = LanguageModel.from_config(cfg.model, len(encoder))
    train_ids = corpora.ids(encoder, corpora.train)
    vectors_info = None
    if vectors:
        specials = [i for i in (encoder.vocab.pad_id, encoder.vocab.unk_id, encoder.vocab.bos_id,
                                encoder.vocab.eos_id) if i is not None]  # fmt: skip
        counts = Counter(train_ids)
        vectors_info = load_vectors_into(model.embedding, vectors, encoder.vocab.itos, specials, counts)
    trainer = Trainer(
        model,
        task,
        train_batches(train_ids, t.batch_size, t.bptt, path=sources["train"]),
        eval_batches(corpora.ids(encoder, corpora.valid), t.batch_size, t.bptt, path=sources["valid"]),
        config=t,
        out_dir=out_dir,
        callbacks=callbacks,
        device=device,
    )
    begin_training(run, cfg, encoder, resume=resume)  # everything is checked: only now does the folder change
    result = trainer.fit(resume=resume)

    t0 = time.perf_counter()
    if test_spec:
        test_ids = corpora.ids(encoder, _test_texts(test_spec, cfg, corpora.documents))
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
        device=device_name(device, cfg),
        steps=result.step,
        epochs=round(result.epoch, 4),
        stop_reason=result.stop_reason,
        best_valid=result.best_metrics,
        sources=sources,
    )
    if vectors_info is not None:
        report["vectors"] = vectors_report(vectors_info)
    elif resume and run.exists(ck.REPORT) and "vectors" in (earlier := run.read_json(ck.REPORT)):
        report["vectors"] = earlier["vectors"]
    run.write_json(ck.REPORT, report)
    plot_curves(trainer.state.history, run.file(ck.CURVES), loss_log=trainer.state.loss_log)
    return out_dir


def _test_texts(spec: str, cfg: Config, documents: bool) -> list[str]:
    from ..data import read_corpus
    from ..data.documents import is_document_set, read_documents

    if documents and is_document_set(spec):
        return read_documents(spec, tuple(c.strip() for c in cfg.data.text_col.split(",") if c.strip()))
    return [read_corpus(spec)]


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
        from ..generate import stream

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
        from ..data import read_corpus
        from ..training.lm import LanguageModelTask, eval_batches

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
        from ..inspect import inspect_text

        return inspect_text(self, text, **options)

    def predict(self, texts, top_k: int | None = None):
        """Not for language models: raises :class:`RunFolderError` pointing to :meth:`generate`."""
        raise RunFolderError(
            f"{self.path} is a language model (task lm): it generates text (`rnnkit generate`), "
            f"it does not label texts"
        )


def load_language_model(run: RunFolder, config: Config, device: torch.device) -> LanguageModelRun:
    from ..data import TextEncoder
    from ..models.language_model import LanguageModel

    run.require(ck.VOCAB, ck.WEIGHTS)
    encoder = TextEncoder.from_dict(run.read_json(ck.VOCAB))
    build = lambda: LanguageModel.from_config(config.model, len(encoder))  # noqa: E731
    model = build_checked_model(run, build, device, f"vocab.json ({len(encoder)} tokens)")
    return LanguageModelRun(run.path, config, encoder, model.to(device), device)
