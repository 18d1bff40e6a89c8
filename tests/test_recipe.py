"""The default classification recipe: no preset means `default`, bundled vectors, planned epochs, the n-gram
path and its mix, long texts read as head + tail, class weights and macro-F1 (issue 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rnnkit
from rnnkit.cli import main
from rnnkit.config import Config, resolve_config
from rnnkit.models.classifier import TextClassifier
from rnnkit.models.embedding import BUNDLED_VECTORS, read_vectors, resolve_vectors
from rnnkit.models.ngrams import NgramLinear
from rnnkit.pipelines import recipe
from rnnkit.training.classify import ClassificationTask, balanced_weights, macro_f1
from rnnkit.training.ngrams import design_matrix, fit_ngrams
from tiny_text import TINY, texts, write_csv, write_splits

FAST = {k: v for k, v in TINY.items() if k not in ("epochs", "preset")} | {"epochs": 1}  # on `default`


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("recipe"))


def _config(run) -> dict:
    return json.loads((run / "config.json").read_text())["config"]


def test_no_preset_trains_the_default_recipe_with_bundled_vectors(splits, tmp_path):
    train, test = splits
    run = rnnkit.train(train, test=str(test), out=tmp_path / "run", **FAST)
    cfg, report = _config(run), json.loads((run / "report.json").read_text())
    assert cfg["preset"] == "default" and cfg["model"]["ngrams"] and cfg["model"]["vectors"] == "auto"
    assert cfg["model"]["embed_dim"] == 50  # the bundled GloVe's size
    assert cfg["model"]["ngram_buckets"] >= 1024  # planned from the data and stored
    assert report["vectors"]["path"].endswith("glove.6B.50d.safetensors")
    assert report["vectors"]["found"] > 20  # "goal", "match", "bread", … are GloVe words
    assert report["recipe"]["preset"] == "default" and 0.0 <= report["recipe"]["mix"]["mix"] <= 1.0
    assert report["recipe"]["ngrams"]["refit"]["examples"] == 90  # the held-out rows fitted in at the end
    clf = rnnkit.load(run)  # the mixed model loads back and answers
    assert clf.predict(["goal match team"])[0]["label"] in {"sport", "tech", "food"}


def test_vectors_none_turns_them_off_and_preset_none_is_the_plain_defaults(splits, tmp_path):
    train, test = splits
    run = rnnkit.train(train, valid=str(test), out=tmp_path / "run", vectors="none", **FAST)
    report = json.loads((run / "report.json").read_text())
    assert "vectors" not in report
    assert "refit" not in report["recipe"]["ngrams"]  # validation data of its own is not trained on
    assert _config(run)["model"]["embed_dim"] == TINY["embed_dim"]
    plain = resolve_config(preset="none")
    assert plain.preset is None and plain.model.cell == "lstm" and not plain.model.ngrams


def test_bundled_vectors_are_glove_and_resolve_by_tokenizer():
    found = read_vectors(BUNDLED_VECTORS["glove.6B.50d"], ["the", "king", "queen", "qwxzv"])
    assert sorted(found) == ["king", "queen", "the"] and found["the"].shape == (50,)
    assert float(F.cosine_similarity(found["king"], found["queen"], dim=0)) > 0.6
    assert resolve_vectors("auto", "char") is None and resolve_vectors(None, "basic_english") is None
    assert resolve_vectors("my.txt", "bpe") == "my.txt"


def test_a_run_folder_from_before_keeps_its_settings():
    old = resolve_config(preset="none").to_dict()
    old["preset"] = "default"  # written before `default` had the n-gram path
    del old["model"]["ngrams"], old["model"]["ngram_buckets"]
    assert Config.from_dict(old).model.ngrams is False


def test_plan_gives_small_data_many_epochs_and_large_data_few():
    cfg = resolve_config(overrides={"epochs": 0, "batch_size": 64})
    small, _ = recipe.plan(cfg, [([1, 2, 3], 0)] * 500)
    large, _ = recipe.plan(cfg, [([1, 2, 3], 0)] * 500_000)
    assert small.train.epochs == recipe.MAX_EPOCHS and large.train.epochs == recipe.MIN_EPOCHS
    assert small.train.eval_every == 0 and large.train.eval_every == 500_000 // 64 // 2 + 1  # half an epoch
    fixed, info = recipe.plan(resolve_config(overrides={"epochs": 3, "ngrams": False}), [([1], 0)] * 10)
    assert fixed.train.epochs == 3 and info == {}


def test_monitor_is_macro_f1_when_classes_are_imbalanced():
    assert recipe.monitor_for([([1], 0)] * 30 + [([1], 1)] * 3, 2) == "macro_f1"
    assert recipe.monitor_for([([1], 0)] * 30 + [([1], 1)] * 20, 2) == "accuracy"


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    p[:3] = 3
    assert macro_f1(torch.tensor(p), torch.tensor(y), 4) == pytest.approx(f1_score(y, p, average="macro"))


def test_class_weights_change_the_loss_as_computed_by_hand():
    from rnnkit.data import collate

    torch.manual_seed(0)
    model = TextClassifier(20, 2, hidden_dim=4, embed_dim=4)
    batch = collate([([3, 4], 0), ([5], 0), ([6, 7, 8], 0), ([9], 1)])
    weights = balanced_weights(batch.labels.tolist(), 2)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0])
    loss, _, _ = ClassificationTask("cpu", class_weights=weights).loss(model.eval(), batch, None)
    logits = model(batch.ids, batch.lengths)
    per_example = -torch.log_softmax(logits, dim=1)[torch.arange(4), batch.labels]
    w = weights[batch.labels]
    assert loss.item() == pytest.approx(((w * per_example).sum() / w.sum()).item(), rel=1e-6)
    plain, _, _ = ClassificationTask("cpu").loss(model, batch, None)
    assert float(plain) != pytest.approx(float(loss))


def test_a_long_text_is_read_as_head_and_tail_and_whole_by_the_ngram_path():
    torch.manual_seed(0)
    model = TextClassifier(50, 3, hidden_dim=6, embed_dim=5, max_len=6, ngram_buckets=64).eval()
    model.wide.idf.fill_(1.0)
    torch.nn.init.normal_(model.wide.weight)
    ids = torch.arange(2, 22)[None, :]  # 20 tokens: the encoder reads 3 + 3 of them
    lengths = torch.tensor([20])

    def answers(new_ids, mix):
        model.mix.fill_(mix)
        return model(new_ids, lengths)

    end, middle = ids.clone(), ids.clone()
    end[0, -1], middle[0, 10] = 40, 40
    for mix in (1.0, 0.5):  # the recurrent path alone, and mixed
        assert not torch.allclose(answers(ids, mix), answers(end, mix))  # the end of a text counts
    assert torch.allclose(answers(ids, 1.0), answers(middle, 1.0))  # the encoder skips the middle …
    assert not torch.allclose(answers(ids, 0.5), answers(middle, 0.5))  # … the n-gram path reads it


def test_mixed_answer_is_the_weighted_mean_of_both_paths_log_probabilities():
    torch.manual_seed(1)
    model = TextClassifier(30, 3, hidden_dim=4, embed_dim=4, ngram_buckets=32).eval()
    model.wide.idf.fill_(1.0)
    torch.nn.init.normal_(model.wide.weight)
    ids, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
    model.mix.fill_(0.3)
    expected = 0.3 * torch.log_softmax(model.rnn_logits(ids, lengths), 1) + 0.7 * torch.log_softmax(
        model.wide(ids, lengths), 1
    )
    assert torch.allclose(model(ids, lengths), expected, atol=1e-6)


def test_ngram_path_fits_the_same_model_as_scikit_learn_logistic_regression():
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    items = [(list(rng.integers(2, 40, rng.integers(2, 9))), int(rng.integers(0, 3))) for _ in range(120)]
    for ids, label in items:
        ids.append(40 + label)  # a word that gives the label away, mostly
    wide = NgramLinear(vocab_size=44, num_classes=3, buckets=256)
    info = fit_ngrams(wide, items, items, c_grid=(4.0,), max_iter=500)
    x = design_matrix(wide, items)
    rows, cols = x.indices().numpy()
    x = sparse.csr_matrix((x.values().numpy(), (rows, cols)), shape=x.shape)
    reference = LogisticRegression(C=4.0, tol=1e-8, max_iter=5000).fit(x, [label for _, label in items])
    ours = wide.weight.detach().numpy().T  # (C, F)
    # softmax coefficients are defined up to a shift per feature: compare centred ones
    centred = lambda w: w - w.mean(axis=0, keepdims=True)  # noqa: E731
    assert np.abs(centred(ours) - centred(reference.coef_)).max() < 2e-3
    assert info["C"] == 4.0 and info["features"] > 40


def test_choose_mix_prefers_the_path_that_is_right():
    torch.manual_seed(0)
    model = TextClassifier(30, 2, hidden_dim=4, embed_dim=4, ngram_buckets=32).eval()
    valid = [([3, 4], 0), ([5, 6], 1)] * 10
    truth = torch.tensor([[0.9, 0.1], [0.1, 0.9]] * 10)
    wrong = truth.flip(1)

    def predict(m):  # the recurrent path knows the answer, the n-gram path has it backwards
        return truth if float(m.mix) == 1.0 else wrong

    info = recipe.choose_mix(model, valid, predict, "accuracy")
    assert info["rnn_only"] == 1.0 and info["ngrams_only"] == 0.0 and info["mix"] > 0.5
    assert float(model.mix) == pytest.approx(info["mix"])


@pytest.mark.parametrize(
    ("option", "value"),
    [("--class-weight", "heavy"), ("--ngram-buckets", "-1"), ("--epochs", "-1"), ("--pool", "sum"),
     ("--vectors", "no-such-vectors.txt")],  # fmt: skip
)
def test_bad_recipe_options_are_one_line_errors(splits, tmp_path, capsys, option, value):
    train, _ = splits
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(train), "--out", str(tmp_path / "run"), "--epochs", "1", option, value])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("rnnkit: error:")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_imbalanced_data_stops_on_macro_f1(tmp_path):
    rows = [r for r in texts(120, seed=3) if r[0] != "food"]
    rows += [r for r in texts(30, seed=4) if r[0] == "food"]
    data = write_csv(tmp_path / "imbalanced.csv", rows)
    run = rnnkit.train(data, out=tmp_path / "run", class_weight="balanced", **FAST)
    report = json.loads((run / "report.json").read_text())
    assert report["recipe"]["monitor"] == "macro_f1" and report["recipe"]["class_weight"] == "balanced"
    assert "macro_f1" in report["best_valid"]


def test_cli_summary_names_the_preset_and_both_paths(splits, tmp_path, capsys):
    train, test = splits
    args = ["train", "--data", str(train), "--test", str(test), "--out", str(tmp_path / "run"), "--quiet"]
    for key, value in FAST.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr().out
    assert exit_info.value.code in (0, None)
    assert "preset default" in out and "validation accuracy: recurrent path" in out and "n-gram path" in out


def test_a_resumed_default_run_ends_with_the_uninterrupted_weights(splits, tmp_path):
    from safetensors.torch import load_file

    train, _ = splits
    settings = FAST | {"epochs": 2}
    whole = rnnkit.train(train, out=tmp_path / "whole", **settings)
    cut = rnnkit.train(train, out=tmp_path / "cut", time_budget=0.001, **settings)  # stops after one step
    rnnkit.train(out=cut, resume=True, time_budget=1000.0)
    a, b = load_file(whole / "model.safetensors"), load_file(cut / "model.safetensors")
    assert float(a["wide.strength"]) > 0 and set(a) == set(b)  # the n-gram path is refitted after resuming
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5
