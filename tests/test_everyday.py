"""Everyday use without surprises (issue 15): predict's file rule, eval reports, interrupts and resume,
progress that fits where it runs, bad options as one line, umask, threads, ports."""

import json

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli
from tiny_text import TINY, write_splits


def invoke(*args, input=None, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)


def option_args(settings):
    return [a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def one_line_error(result, *needles):
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("rnnkit: error: "), err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("everyday-data"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    train, test = data
    out = tmp_path_factory.mktemp("everyday-runs") / "run"
    result = invoke("train", "--data", train, "--test", test, "--out", out, "--cell", "gru", *option_args(TINY))
    assert result.exit_code == 0, result.output
    return out


# --- predict: files and texts ----------------------------------------------------------------------
def test_predict_reads_an_existing_file_argument_instead_of_labelling_its_name(run, tmp_path):
    """Regression: `predict RUN texts.txt` labelled the file name; `predict RUN -` labelled "-"."""
    texts = tmp_path / "texts.txt"
    texts.write_text("goal win team\n\nbread soup\n", encoding="utf-8")
    result = invoke("predict", run, texts)
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[-1] for line in result.stdout.splitlines()] == ["goal win team", "bread soup"]
    result = invoke("predict", run, "-", input="cloud server\n")
    assert result.exit_code == 0 and result.stdout.splitlines()[0].endswith("\tcloud server")
    result = invoke("predict", run, "--text", str(texts))  # --text: the words themselves
    assert result.stdout.endswith(f"\t{texts}\n")


def test_predict_reads_the_text_column_of_a_table_like_training(run, data):
    """Regression: `--file news_test.csv` labelled the header and raw CSV lines, label inside the text."""
    _, test = data
    result = invoke("predict", run, test, "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    rows = test.read_text().splitlines()[1:]
    assert len(records) == len(rows) and records[0]["text"] == rows[0].split(",", 1)[1]
    assert not any(r["text"].startswith(("label", "sport,", "food,", "tech,")) for r in records)


def test_predict_refuses_a_missing_file_name_instead_of_guessing(run):
    one_line_error(invoke("predict", run, "texts.txt"), "texts.txt: no such file", "--text 'texts.txt'")
    one_line_error(invoke("predict", run, "--file", "nothing.txt"), "nothing.txt: no such file")


def test_predict_threshold_keeps_only_confident_labels(run):
    result = invoke("predict", run, "goal win team", "--threshold", "0.999", "--json")
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(p >= 0.999 for p in record["probs"].values())
    if not record["probs"]:
        assert record["label"] is None
    result = invoke("predict", run, "goal", "--threshold", "0")
    assert result.exit_code == 0 and len(result.stdout.split("\t")[0].split()) == 6  # every label
    one_line_error(invoke("predict", run, "goal", "--threshold", "2"), "threshold")
