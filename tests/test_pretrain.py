"""Language-model pretraining for classifiers (issue 13): `rnnkit pretrain`, `--unlabeled`, `--init-from` a
language model (vocabulary mapped by word), `--pretrain` in one run, BPT3C chunks, AR/TAR in the loss."""

import json

import pytest
import torch

from cli_helpers import invoke, one_line_error
from cli_helpers import option_args as options
from rnnkit.config import resolve_config
from tiny_text import texts, write_csv, write_splits

# A tiny AWD-LSTM for the tests: every regularisation switched on, a few steps.
TINY_LM = {"embed_dim": 8, "hidden_dim": 8, "batch_size": 4, "bptt": 8, "max_steps": 6, "eval_every": 3,
           "threads": 1, "device": "cpu", "min_freq": 1}  # fmt: skip
TINY_CLF = {"max_steps": 4, "threads": 1, "device": "cpu", "batch_size": 8}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain-data")
    train, test = write_splits(folder)
    unlabeled = folder / "unlabeled.txt"
    unlabeled.write_text("\n".join(text + " zebra" for _, text in texts(60, seed=5)) + "\n", encoding="utf-8")
    return train, test, unlabeled


@pytest.fixture(scope="module")
def lm_run(data, tmp_path_factory):
    train, _, unlabeled = data
    out = tmp_path_factory.mktemp("pretrain-runs") / "lm"
    result = invoke("pretrain", "--data", train, "--unlabeled", unlabeled, "--out", out, "--quiet",
                    *options(TINY_LM))  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


# --- documents -------------------------------------------------------------------------------------------
def test_document_sets_and_unlabeled_text_in_every_shape(tmp_path):
    from rnnkit.data.documents import is_document_set, read_documents, read_unlabeled

    table = write_csv(tmp_path / "t.csv", [("a", "one two"), ("b", "three")])
    lines = tmp_path / "u.txt"
    lines.write_text("first text\n\nsecond text\n", encoding="utf-8")
    flat = tmp_path / "flat"
    (flat / "sub").mkdir(parents=True)
    (flat / "x.txt").write_text("doc x\nline two", encoding="utf-8")
    (flat / "sub" / "y.txt").write_text("doc y", encoding="utf-8")
    (flat / ".hidden.txt").write_text("never", encoding="utf-8")
    classes = tmp_path / "classes"
    (classes / "pos").mkdir(parents=True)
    (classes / "pos" / "1.txt").write_text("good film", encoding="utf-8")
    assert [is_document_set(p) for p in (table, lines, flat, classes)] == [True, False, True, True]
    assert read_documents(table) == ["one two", "three"]
    assert read_unlabeled(lines) == ["first text", "second text"]  # a text per line, empty lines skipped
    assert read_unlabeled(flat) == ["doc y", "doc x\nline two"]  # a text per file (sorted paths), no hidden
    assert read_documents(classes) == ["good film"]  # a class folder's files, labels ignored
    assert read_unlabeled(table) == ["one two", "three"]  # a table's text column


def test_documents_are_separated_by_eos_in_the_language_model_stream(tmp_path):
    from rnnkit.data import TextEncoder
    from rnnkit.pipelines.language_model import Corpora

    encoder = TextEncoder.fit(["a b", "c"], lm=True)
    docs = Corpora(["a b", "c"], ["c"], None, {}, documents=True)
    eos = encoder.vocab.eos_id
    assert docs.ids(encoder, docs.train) == [*encoder.encode("a b"), eos, *encoder.encode("c"), eos]
    corpus = Corpora(["a b c"], ["c"], None, {}, documents=False)
    assert corpus.ids(encoder, corpus.train) == encoder.encode("a b c")  # one running text: no <eos>


# --- rnnkit pretrain ---------------------------------------------------------------------------------------
def test_pretrain_trains_an_awd_lstm_language_model_on_texts_and_unlabeled_text(lm_run):
    config = json.loads((lm_run / "config.json").read_text())
    assert config["task"] == "lm" and config["config"]["preset"] == "awd-lm"
    model = config["config"]["model"]
    assert model["locked_dropout"] and model["weight_drop"] > 0 and config["config"]["train"]["ar"] > 0
    report = json.loads((lm_run / "report.json").read_text())
    assert report["perplexity"] > 1 and report["tied_weights"]  # GloVe 50-d, hidden 8: through a projection
    assert report["vectors"]["found"] > 20 and config["config"]["model"]["embed_dim"] == 50
    assert "unlabeled.txt (60 texts)" in report["sources"]["unlabeled"]
    vocab = json.loads((lm_run / "vocab.json").read_text())["vocab"]["itos"]
    assert "zebra" in vocab and "goal" in vocab  # words of the unlabeled and of the labelled texts


def test_init_from_a_language_model_keeps_known_words_vectors_exactly(lm_run, data, tmp_path):
    from safetensors.torch import load_file

    from rnnkit.models.embedding import read_vectors, resolve_vectors

    train, test, _ = data
    extra = write_csv(tmp_path / "extra.csv", [*texts(30, seed=1), ("sport", "quokkaa goal giraffe"),
                                                 ("food", "quokkaa soup giraffe")])  # fmt: skip
    out = tmp_path / "clf"
    result = invoke("train", "--data", extra, "--test", test, "--init-from", lm_run, "--out", out, "--quiet",
                    "--preset", "ulmfit", *options(TINY_CLF), "--lr", "1e-12")  # fmt: skip
    assert result.exit_code == 0, result.output
    lm_itos = json.loads((lm_run / "vocab.json").read_text())["vocab"]["itos"]
    itos = json.loads((out / "vocab.json").read_text())["vocab"]["itos"]
    assert itos[:2] == ["<pad>", "<unk>"] and itos[2:-2] == lm_itos[4:]
    assert itos[-2:] == ["giraffe", "quokkaa"]  # training words the language model lacks
    lm, clf = load_file(lm_run / "model.safetensors"), load_file(out / "model.safetensors")
    for word in ("goal", "zebra", "soup"):
        here, there = itos.index(word), lm_itos.index(word)
        assert torch.allclose(clf["embedding.weight"][here], lm["embedding.weight"][there], atol=1e-6)
    new_row = clf["embedding.weight"][itos.index("quokkaa")]
    assert torch.allclose(new_row, lm["embedding.weight"][4:].mean(0), atol=1e-5)  # a new word: the mean …
    glove = read_vectors(resolve_vectors("auto", "basic_english"), ["giraffe"])["giraffe"]
    giraffe = clf["embedding.weight"][itos.index("giraffe")]
    assert torch.allclose(giraffe, glove.float(), atol=1e-6)  # … or GloVe's, where the LM started from GloVe
    assert clf["embedding.weight"][0].abs().sum() == 0  # <pad> stays zero
    assert torch.allclose(clf["encoder.weight_hh_l0"], lm["encoder.weight_hh_l0"], atol=1e-6)
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["model"]["bidirectional"] is False and config["train"]["pretrain"] is False
    report = json.loads((out / "report.json").read_text())
    assert report["pretrained"]["words_new"] == 2 and report["pretrained"]["words_from_vectors"] == 1
    assert report["sources"]["init_from"] == str(lm_run)


def test_pretrain_then_init_from_then_predict_through_the_cli(lm_run, data, tmp_path):
    train, test, _ = data
    out = tmp_path / "clf"
    result = invoke("train", "--data", train, "--test", test, "--init-from", lm_run, "--out", out, "--quiet",
                    "--preset", "ulmfit", *options(TINY_CLF), "--max-steps", 30, "--lr", "0.02")  # fmt: skip
    assert result.exit_code == 0, result.output
    predicted = invoke("predict", out, "goal team match win", "bread soup cheese")
    assert predicted.exit_code == 0, predicted.output
    assert [line.split("\t")[0] for line in predicted.stdout.splitlines()] == ["sport", "food"]


def test_pretrain_flag_runs_both_stages_in_one_run(data, tmp_path):
    train, test, unlabeled = data
    out = tmp_path / "one"
    shared = {k: v for k, v in TINY_LM.items() if k not in ("batch_size", "bptt", "max_steps", "eval_every")}
    result = invoke("train", "--data", train, "--test", test, "--pretrain", "--unlabeled", unlabeled,
                    "--out", out, "--quiet", *options(shared), "--max-steps", 4)  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["preset"] == "ulmfit" and config["train"]["pretrain"] is True  # --pretrain alone: ulmfit
    lm = json.loads((out / "pretrain" / "config.json").read_text())
    assert lm["task"] == "lm" and lm["config"]["data"]["unlabeled"] == str(unlabeled)
    report = json.loads((out / "report.json").read_text())
    assert report["pretrained"]["run"] == str(out / "pretrain") and report["pretrained"]["perplexity"] > 1
    assert report["pretrained"]["words_from_lm"] > 20


def test_a_pretrain_run_stopped_in_its_language_model_stage_can_be_started_again(lm_run, data, tmp_path):
    """Regression: a --pretrain run interrupted while its language model trained left only <out>/pretrain/,
    and the same command then refused the folder as "not an rnnkit run folder"."""
    import shutil

    train, _, _ = data
    out = tmp_path / "again"
    shutil.copytree(lm_run, out / "pretrain")  # what the first stage leaves: an LM run folder, nothing else
    shared = {k: v for k, v in TINY_LM.items() if k not in ("batch_size", "bptt", "max_steps", "eval_every")}
    result = invoke("train", "--data", train, "--pretrain", "--out", out, "--quiet", *options(shared),
                    "--max-steps", 2)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["config"]["preset"] == "ulmfit"
    (tmp_path / "other" / "pretrain").mkdir(parents=True)
    (tmp_path / "other" / "pretrain" / "notes.txt").write_text("mine", encoding="utf-8")
    one_line_error(invoke("train", "--data", train, "--pretrain", "--out", tmp_path / "other", "--quiet"),
                   "not an rnnkit run folder")  # someone else's files are never replaced


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--init-from", "{tmp}"], ["config.json", "missing"]),
        (["--init-from", "{lm}", "--tokenizer", "char"], ["keeps its tokenizer", "tokenizer"]),
        (["--init-from", "{lm}", "--bidirectional"], ["bidirectional"]),
        (["--init-from", "{lm}", "--pretrain"], ["leave out --init-from"]),
        (["--init-from", "{lm}", "--preset", "ulmfit", "--hidden-dim", "32"], ["hidden_dim"]),
        (["--unlabeled", "{tmp}/missing.txt", "--pretrain"], ["missing.txt", "no such file"]),
        (["--task", "lm", "--pretrain"], ["--pretrain is for classifiers"]),
        (["--chunk-len", "20", "--bidirectional"], ["--chunk-len"]),
    ],
)
def test_bad_pretraining_inputs_exit_2_with_one_line(args, needles, lm_run, data, tmp_path):
    train, _, _ = data
    args = [a.format(tmp=tmp_path, lm=lm_run) for a in args]
    one_line_error(invoke("train", "--data", train, "--out", tmp_path / "out", "--quiet", *args), *needles)
    assert not (tmp_path / "out" / "config.json").exists()


def test_a_classifier_and_a_language_model_are_not_mistaken_for_each_other(data, tmp_path):
    train, _, _ = data
    clf = tmp_path / "clf"
    assert invoke("train", "--data", train, "--out", clf, "--preset", "none", "--quiet", *options(TINY_CLF),
                  "--embed-dim", 8, "--hidden-dim", 8).exit_code == 0  # fmt: skip
    lm = tmp_path / "lm"
    assert invoke("pretrain", "--data", train, "--out", lm, "--quiet", *options(TINY_LM)).exit_code == 0
    one_line_error(invoke("generate", clf, "--length", 3), "classifier")  # a classifier does not generate …
    result = invoke("predict", lm, "--text", "goal")
    assert result.exit_code == 2 and "language model" in result.stderr  # … a language model does not label


# --- models ---------------------------------------------------------------------------------------------
def test_bpt3c_chunks_give_the_whole_texts_numbers_and_stop_gradients_between_chunks():
    from rnnkit.models.classifier import TextClassifier

    torch.manual_seed(0)
    model = TextClassifier(40, 3, cell="lstm", hidden_dim=6, layers=2, pool="concat", chunk_len=3)
    ids = torch.randint(2, 40, (4, 10))
    lengths = torch.tensor([10, 2, 7, 4])
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    model.train()
    model.dropout.p = 0.0
    chunked = model(ids, lengths)
    model.eval()
    whole = model(ids, lengths)
    assert torch.allclose(chunked, whole, atol=1e-6)
    last = TextClassifier(40, 2, cell="gru", hidden_dim=6, pool="last", chunk_len=3).train()
    x = ids[:1]
    last(x, torch.tensor([10])).sum().backward()
    grad = last.embedding.weight.grad
    early, late = set(x[0, :9].tolist()) - set(x[0, 9:].tolist()), set(x[0, 9:].tolist())
    assert all(grad[i].abs().sum() == 0 for i in early)  # only the last chunk's tokens get a gradient
    assert all(grad[i].abs().sum() > 0 for i in late)


def test_layer_groups_hold_every_parameter_once_from_the_embedding_up():
    from rnnkit.models.classifier import TextClassifier

    model = TextClassifier(30, 2, cell="gru", hidden_dim=4, layers=3, pool="attention", ngram_buckets=16)
    groups = model.layer_groups()
    assert len(groups) == 5 and groups[0] == [model.embedding.weight]
    assert [p is model.encoder.weight_hh_l1 for p in groups[2]].count(True) == 1
    top = {id(p) for p in groups[-1]}
    assert id(model.head.weight) in top and all(id(p) in top for p in model.wide.parameters())
    flat = [id(p) for group in groups for p in group]
    assert sorted(flat) == sorted(id(p) for p in model.parameters())


def test_ar_and_tar_add_exactly_their_penalties_to_the_training_loss():
    from rnnkit.models.language_model import LanguageModel
    from rnnkit.training.lm import LanguageModelTask

    torch.manual_seed(0)
    model = LanguageModel(20, cell="lstm", embed_dim=6, hidden_dim=6, locked_dropout=True)
    batch = (torch.randint(0, 20, (3, 5)), torch.randint(0, 20, (3, 5)))
    plain, _, _ = LanguageModelTask("cpu").loss(model, batch, None)
    penalised, _, _ = LanguageModelTask("cpu", ar=2.0, tar=1.0).loss(model, batch, None)
    _, _, (raw, dropped) = model(batch[0], hidden=True)
    expected = 2.0 * dropped.pow(2).mean() + (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
    assert torch.allclose(penalised - plain, expected, atol=1e-6)


def test_pretrain_alone_means_the_ulmfit_preset_and_its_language_model_shares_the_architecture():
    from rnnkit.pipelines.pretrain import language_model_config

    cfg = resolve_config(overrides={"pretrain": True, "hidden_dim": 48, "tokenizer": "bpe", "seed": 3})
    assert cfg.preset == "ulmfit" and not cfg.model.bidirectional and cfg.train.schedule == "slanted"
    lm = language_model_config(cfg)
    assert (lm.model.cell, lm.model.hidden_dim, lm.data.tokenizer, lm.train.seed) == ("lstm", 48, "bpe", 3)
    assert lm.model.weight_drop > 0 and lm.train.ar > 0 and lm.data.max_vocab is not None
