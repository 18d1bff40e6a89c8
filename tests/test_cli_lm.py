"""`rnnkit train --task lm`, `rnnkit generate` and `rnnkit eval` on language models, end to end on CPU."""

import io
import json
import sys

import pytest

import rnnkit
from rnnkit import cli

TEXT = "to be or not to be, that is the question.\nwhether tis nobler in the mind to suffer.\n" * 25
TINY = ["--hidden-dim", "24", "--embed-dim", "12", "--layers", "1", "--batch-size", "4", "--bptt", "20",
        "--lr", "0.01", "--device", "cpu", "--threads", "1", "--seed", "0"]  # fmt: skip


def run_cli(capsys, *args):
    """Run the command in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "hamlet.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def char_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "char"
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--task", "lm", "--data", str(corpus), "--out", str(out), "--max-steps", "60",
                  "--eval-every", "20", *TINY])  # fmt: skip
    assert e.value.code == 0
    return out


def test_train_writes_a_language_model_run(char_run):
    files = {p.name for p in char_run.iterdir()}
    written = {"config.json", "vocab.json", "model.safetensors", "metrics.jsonl", "report.json", "curves.png"}
    assert written <= files
    assert "labels.json" not in files
    config = json.loads((char_run / "config.json").read_text())
    assert config["task"] == "lm" and config["config"]["preset"] == "char-lm"
    assert config["config"]["data"]["tokenizer"] == "char" and config["config"]["train"]["bptt"] == 20
    records = [json.loads(line) for line in (char_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["step"] % 20 == 0] == [20, 40, 60]  # (and at epoch ends)
    assert {"valid_loss", "valid_perplexity", "valid_bpc"} <= set(records[0])
    assert records[-1]["valid_loss"] < records[0]["valid_loss"]  # loss falls
    report = json.loads((char_run / "report.json").read_text())
    assert report["split"] == "valid" and report["loss"] == min(r["valid_loss"] for r in records)
    assert report["bpc"] < 3.0 and report["steps"] == 60


def test_train_prints_the_validation_numbers(corpus, tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--task", "lm", "--data", corpus, "--out", tmp_path / "r",
                             "--max-steps", "3", *TINY)  # fmt: skip
    assert code == 0, err
    assert "valid loss " in out and "perplexity " in out and "bits/char " in out


def test_generate_streams_the_prime_then_the_text(char_run, capsys):
    def generate(*options):
        code, out, err = run_cli(capsys, "generate", char_run, "--prime", "to be", "--length", "40", *options)
        assert code == 0, err
        return out

    out = generate("--seed", "1")
    assert out.startswith("to be") and out.endswith("\n")
    assert len(out) in (len("to be") + 40, len("to be") + 41)  # a line break is added unless it ends in one
    assert generate("--seed", "1") == out  # reproducible
    assert generate("--temperature", "0") == generate("--temperature", "0")  # greedy: no randomness
    assert generate("--top-k", "3", "--top-p", "0.9", "--seed", "2").startswith("to be")


def test_generate_flushes_each_piece_as_it_is_sampled(char_run, monkeypatch):
    class Recorder(io.StringIO):
        def __init__(self):
            super().__init__()
            self.events = []

        def write(self, s):
            if s:  # click probes the stream with empty writes
                self.events.append("write")
            return super().write(s)

        def flush(self):
            self.events.append("flush")

    recorder = Recorder()
    monkeypatch.setattr(sys, "stdout", recorder)
    with pytest.raises(SystemExit) as e:
        cli.main(["generate", str(char_run), "--prime", "to", "--length", "25", "--seed", "0"])
    assert e.value.code == 0
    writes = [i for i, event in enumerate(recorder.events) if event == "write"]
    assert len(writes) >= 26  # the prime, then a piece per character (and a final line break)
    assert all(recorder.events[i + 1] == "flush" for i in writes)  # each one shown at once


def test_eval_reports_loss_perplexity_and_bpc(char_run, corpus, capsys):
    code, out, err = run_cli(capsys, "eval", char_run, "--data", corpus, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert set(metrics) == {"loss", "perplexity", "bpc", "tokens"}
    assert metrics["bpc"] == pytest.approx(metrics["loss"] / 0.6931471805599453)
    code, out, _ = run_cli(capsys, "eval", char_run, "--data", corpus)
    assert code == 0 and "bpc: " in out and "perplexity: " in out
    lm = rnnkit.load(char_run)
    assert lm.evaluate(corpus) == metrics  # the CLI prints what the API returns


def test_python_api(char_run):
    lm = rnnkit.load(char_run)
    assert isinstance(lm, rnnkit.api.LanguageModelRun)
    text = lm.generate("whether", 30, seed=5)
    assert text == "".join(lm.stream("whether", 30, seed=5))
    assert text.startswith("whether") and len(text) == len("whether") + 30


@pytest.mark.parametrize("tokenizer", ["basic_english", "bpe"])
def test_word_and_bpe_models(tokenizer, corpus, tmp_path, capsys):
    out = tmp_path / tokenizer
    code, _, err = run_cli(capsys, "train", "--task", "lm", "--data", corpus, "--out", out, "--tokenizer",
                           tokenizer, "--max-vocab", "300", "--max-steps", "5", *TINY)  # fmt: skip
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert "bpc" not in report and report["perplexity"] > 1  # bits per character are for character models
    code, text, err = run_cli(capsys, "generate", out, "--prime", "to be", "--length", "12", "--seed", "0")
    assert code == 0, err
    assert text.startswith("to be") and len(text.split()) >= 4


# --- bad input: one line on stderr, exit code 2 ----------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (["--length", "0"], "--length must be ≥ 1 token, got 0"),
        (["--length", "-5"], "--length must be ≥ 1 token, got -5"),
        (["--temperature", "-1"], "--temperature must be ≥ 0 (0 = greedy), got -1.0"),
        (["--top-p", "0"], "--top-p must be in (0, 1], got 0.0"),
        (["--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
        (["--top-k", "0"], "--top-k must be ≥ 1, got 0"),
    ],
)
def test_bad_generate_options(char_run, capsys, options, message):
    code, out, err = run_cli(capsys, "generate", char_run, "--prime", "to", *options)
    assert code == 2 and out == ""
    assert err == f"rnnkit: error: {message}\n"


def test_out_of_vocabulary_prime_warns_once_and_generates(char_run, capsys):
    code, out, err = run_cli(capsys, "generate", char_run, "--prime", "Zounds", "--length", "10")
    assert code == 0
    assert out.startswith("Zounds")
    assert err.count("\n") == 1 and err.startswith("rnnkit: warning: the prime has 1 token(s) outside")
    assert "('Z')" in err and "<unk>" in err


def test_a_classification_run_is_refused(tmp_path, capsys):
    csv = tmp_path / "news.csv"
    csv.write_text("label,text\n" + "".join(f"{'ab'[i % 2]},word{i % 2} text\n" for i in range(20)))
    run = rnnkit.train(csv, out=tmp_path / "clf", max_steps=1, hidden_dim=4, embed_dim=4, device="cpu",
                       progress=False)
    code, out, err = run_cli(capsys, "generate", run, "--prime", "hi")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "holds a classify run; `rnnkit generate` needs a language model" in err


def test_predict_on_a_language_model_is_refused(char_run, capsys):
    code, _, err = run_cli(capsys, "predict", char_run, "some text")
    assert code == 2 and err.count("\n") == 1
    assert "is a language model (task lm)" in err


def test_missing_run_and_too_short_corpus(tmp_path, capsys):
    code, _, err = run_cli(capsys, "generate", tmp_path / "nope")
    assert code == 2 and "run folder not found" in err
    short = tmp_path / "short.txt"
    short.write_text("tiny text, far too short to train on\n" * 3)
    code, _, err = run_cli(capsys, "train", "--task", "lm", "--data", short, "--out", tmp_path / "r",
                           "--batch-size", "64", "--device", "cpu")  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "too few to train on 64 parallel streams" in err
