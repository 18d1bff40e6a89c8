"""``--init-from RUN``: start a new classifier run from a trained one's weights (fine-tuning on new data).

The new run keeps the source run's model settings, tokenizer and vocabulary (words it never saw stay
``<unk>``, as they did for the source) and its labels in their order; labels that only the new training
data has are appended, and their output rows start from the new model's own seeded initialisation. Every
other weight is copied. Training settings (epochs, learning rate, schedule, data) are the new run's own.

The source may also be a **language model** run (``rnnkit pretrain``; ULMFiT's first stages): the new
classifier then takes the model's tokenizer and architecture (cell, sizes, layers; one direction, as the
language model reads), and its vocabulary is the language model's words followed by the training words it
lacks (at least ``min_freq`` times). Words the language model knows keep their vectors exactly; the new ones
start from the mean of its vectors. The recurrent layers are copied; the pooling and the head are new.

>>> from rnnkit.data import TextEncoder
>>> lm = TextEncoder.fit(["the cat sat"], lm=True)
>>> encoder, new = lm_vocabulary(lm, ["the dog sat", "a dog"], min_freq=1)
>>> encoder.vocab.itos, new
(['<pad>', '<unk>', 'cat', 'sat', 'the', 'dog', 'a'], 2)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch

from ..config import Config, resolve_config
from ..errors import ConfigError, RunFolderError

__all__ = [
    "load_source", "with_source_settings", "source_vocabulary", "copy_weights", "lm_vocabulary",
    "copy_language_model",
]  # fmt: skip

_KEPT_DATA = ("tokenizer", "min_freq", "max_vocab")  # how the source's vocabulary was made
_LM_ARCHITECTURE = ("cell", "embed_dim", "hidden_dim", "layers")  # what a language model source fixes


def load_source(path: str | os.PathLike) -> Any:
    """The source run, loaded on the CPU; a :class:`RunFolderError` unless it is a classifier or language
    model run folder."""
    from ..api import is_run, load

    if not is_run(path):
        raise RunFolderError(
            f"{path}: --init-from needs a trained classifier's or language model's run folder "
            f"(no config.json)"
        )
    source = load(path, device="cpu")
    task = getattr(getattr(source, "config", None), "task", "?")
    if task == "lm" and source.encoder.vocab.lm:
        return source
    if getattr(source, "labels", None) is None or task != "classify":
        raise ConfigError(f"--init-from {path}: a {task} run cannot start a classifier")
    return source


def with_source_settings(cfg: Config, source_cfg: Config, given: dict[str, Any]) -> Config:
    """``cfg`` with the source's model settings and vocabulary settings; a setting given explicitly that
    differs from the source's raises :class:`ConfigError` (the weights could not be copied).

    A language model source fixes the architecture (:data:`_LM_ARCHITECTURE`, one direction) and the
    tokenizer; the rest of the classifier's settings (pooling, dropout, the n-gram path) stay its own.
    """
    if source_cfg.task == "lm":
        return _with_language_model(cfg, source_cfg, given)
    model = dataclasses.asdict(source_cfg.model)
    kept = {**model, **{k: getattr(source_cfg.data, k) for k in _KEPT_DATA}}
    _check_given(given, kept, "--init-from keeps the source run's model and vocabulary")
    settings = cfg.to_dict()
    settings["model"] = model
    settings["data"].update({k: kept[k] for k in _KEPT_DATA})
    return resolve_config(config_dict=settings)


def _with_language_model(cfg: Config, source_cfg: Config, given: dict[str, Any]) -> Config:
    kept = {k: getattr(source_cfg.model, k) for k in _LM_ARCHITECTURE}
    kept.update(bidirectional=False, vectors=None, tokenizer=source_cfg.data.tokenizer)
    _check_given(given, kept, "--init-from a language model keeps its tokenizer and architecture (one "
                 "direction, its own embeddings)")  # fmt: skip
    settings = cfg.to_dict()
    settings["model"].update({k: kept[k] for k in (*_LM_ARCHITECTURE, "bidirectional", "vectors")})
    settings["data"]["tokenizer"] = kept["tokenizer"]
    if settings["model"]["freeze_vectors"]:
        raise ConfigError("--freeze-vectors does not apply to --init-from a language model")
    return resolve_config(config_dict=settings)


def _check_given(given: dict[str, Any], kept: dict[str, Any], what: str) -> None:
    """ConfigError naming the settings given explicitly that differ from what the source fixes."""
    differ = [k for k, v in given.items() if k in kept and v is not None and v != kept[k]]
    if differ:
        raise ConfigError(f"{what}; these settings differ from it: {', '.join(sorted(differ))}")


def lm_vocabulary(lm_encoder, train_texts: list[str], min_freq: int = 1):
    """``(encoder, new)``: the classifier's vocabulary — ``<pad>``, ``<unk>``, the language model's words,
    then the training words it lacks (seen ``min_freq`` times or more), most frequent first — with the
    language model's tokenizer; ``new`` counts the added words."""
    from collections import Counter

    from ..data import TextEncoder, Vocabulary

    specials = {lm_encoder.vocab.itos[i] for i in range(4)}  # <pad>, <unk>, <bos>, <eos>
    known = [w for w in lm_encoder.vocab.itos if w not in specials]
    seen = set(known)
    counts = Counter(t for tokens in lm_encoder.tokenizer.tokenize_many(train_texts) for t in tokens)
    new = sorted((w for w, n in counts.items() if n >= min_freq and w not in seen and w not in specials),
                 key=lambda w: (-counts[w], w))  # fmt: skip
    vocab = Vocabulary([lm_encoder.vocab.itos[0], lm_encoder.vocab.itos[1], *known, *new])
    return TextEncoder(lm_encoder.tokenizer, vocab), len(new)


def copy_language_model(model: torch.nn.Module, source: Any, encoder) -> dict[str, Any]:
    """Copy a language model's embedding (mapped by word) and recurrent layers into a new classifier.

    Words of ``encoder`` that the language model knows get its vector exactly; the others (and ``<unk>``)
    the mean of its word vectors — or, when the language model's embedding started from pretrained vectors
    (``--vectors``), their vector from that file, in the same space; ``<pad>`` stays zero. Returns what was
    copied, for the report.
    """
    lm = source.model
    lm_stoi = source.encoder.vocab.stoi
    lm_weight = lm.embedding.weight.detach()
    mean = lm_weight[4:].mean(dim=0) if lm_weight.shape[0] > 4 else lm_weight.mean(dim=0)
    rows = [lm_stoi.get(w, -1) for w in encoder.vocab.itos]
    index = torch.tensor(rows)
    found = index >= 0
    found[: 2] = False  # <pad> and <unk> are not words
    with torch.no_grad():
        weight = model.embedding.weight
        weight.copy_(mean.expand_as(weight))
        weight[found] = lm_weight[index[found]]
        from_file = _vectors_for_new_words(source, encoder.vocab.itos, found, weight.shape[1])
        for i, vector in from_file.items():
            weight[i] = vector
        weight[encoder.vocab.pad_id].zero_()
        target = model.encoder.state_dict()
        for name, tensor in lm.encoder.state_dict().items():
            if name not in target or target[name].shape != tensor.shape:
                raise RunFolderError(f"--init-from: the language model's encoder.{name} does not fit")
            target[name].copy_(tensor)
    return {"words_from_lm": int(found.sum()), "words_new": int((~found).sum()) - 2,
            "words_from_vectors": len(from_file), "layers": lm.encoder.num_layers}  # fmt: skip


def _vectors_for_new_words(source: Any, itos: list[str], found: torch.Tensor, dim: int) -> dict[int, Any]:
    """``{row: vector}`` from the vectors file the language model's embedding started from, for the words it
    does not know (none if it started from random vectors, or the file's size differs)."""
    from ..models.embedding import read_vectors, resolve_vectors, vectors_dim

    path = resolve_vectors(source.config.model.vectors, source.config.data.tokenizer)
    if path is None or vectors_dim(path) != dim:
        return {}
    new = {itos[i]: i for i in range(2, len(itos)) if not found[i]}
    return {new[w]: v for w, v in read_vectors(path, list(new)).items()}


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
