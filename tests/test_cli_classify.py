"""`rnnkit train / eval / predict` through the command line: exit codes, files, output shapes, bad input."""

import json

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli
from tiny_text import TINY, write_splits


def option_args(settings):
    args = []
    for key, value in settings.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("cli-data"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    train, test = data
    out = tmp_path_factory.mktemp("cli-runs") / "run"
    result = invoke(
        "train",
        "--data",
        train,
        "--test",
        test,
        "--out",
        out,
        "--cell",
        "lstm",
        "--bidirectional",
        "--pool",
        "attention",
        *option_args(TINY),
    )
    assert result.exit_code == 0, result.output + result.stderr
    return out, result


def test_train_prints_accuracy_report_and_plots(run):
    out, result = run
    lines = result.stdout.splitlines()
    assert lines[0].startswith("test accuracy ") and "macro-F1" in lines[0] and "30 examples" in lines[0]
    assert f"report: {out / 'report.json'}" in lines
    assert any(
        line.startswith("plots:") and "curves.png" in line and "confusion.png" in line for line in lines
    )
    assert (out / "model.safetensors").is_file()
    assert "step" in result.stderr  # the evaluation lines go to stderr with the progress bar


def test_eval_human_and_json(run, data):
    out, _ = run
    _, test = data
    result = invoke("eval", out, "--data", test)
    assert result.exit_code == 0 and result.stdout.startswith("accuracy ")
    assert "sport" in result.stdout and "precision" in result.stdout
    result = invoke("eval", out, "--data", test, "--json")
    assert result.exit_code == 0
    metrics = json.loads(result.stdout)
    report = json.loads((out / "report.json").read_text())
    assert {k: metrics[k] for k in ("accuracy", "macro_f1", "confusion", "labels", "n")} == {
        k: report[k] for k in ("accuracy", "macro_f1", "confusion", "labels", "n")
    }
    assert set(metrics["per_class"]["food"]) == {"precision", "recall", "f1", "support"}


def test_predict_arguments_file_stdin_json_top_k(run, tmp_path):
    out, _ = run
    result = invoke("predict", out, "goal win team", "bread soup")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] == "sport" and lines[0].endswith("\tgoal win team")

    texts = tmp_path / "texts.txt"
    texts.write_text("goal win team\n\nbread soup\nserver cloud\n", encoding="utf-8")
    result = invoke("predict", out, "--file", texts, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and [r["text"] for r in records] == [
        "goal win team",
        "bread soup",
        "server cloud",
    ]
    assert all(set(r) == {"text", "label", "probability", "probs"} and len(r["probs"]) == 3 for r in records)

    result = invoke("predict", out, "--file", "-", "--json", "--top-k", "2", input="cup goal\n")
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and len(record["probs"]) == 2 and record["text"] == "cup goal"
    result = invoke("predict", out, "cup goal", "--top-k", "2")
    assert result.exit_code == 0 and len(result.stdout.split("\t")[0].split()) == 4  # two labels, two numbers


def test_preset_and_config_file_round_trip(run, data, tmp_path):
    """A run's config.json given back with --config trains the same settings."""
    out, _ = run
    train, test = data
    again = tmp_path / "again"
    result = invoke("train", "--config", out / "config.json", "--out", again, "--max-steps", "3")
    assert result.exit_code == 0, result.stderr
    first = json.loads((out / "config.json").read_text())["config"]
    second = json.loads((again / "config.json").read_text())["config"]
    assert second["train"]["max_steps"] == 3
    second["train"]["max_steps"] = first["train"]["max_steps"]
    assert first == second
    result = invoke(
        "train",
        "--preset",
        "lesson-lstm",
        "--data",
        train,
        "--test",
        test,
        "--out",
        tmp_path / "p",
        "--max-steps",
        "2",
        "--threads",
        "1",
    )
    assert result.exit_code == 0, result.stderr
    saved = json.loads((tmp_path / "p" / "config.json").read_text())["config"]
    assert saved["preset"] == "lesson-lstm" and saved["model"]["use_lengths"] is False


def one_line_error(result, *needles):
    assert result.exit_code == 2, (result.exit_code, result.output, result.stderr)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("rnnkit: error: "), err
    for needle in needles:
        assert needle in err, err


def test_bad_inputs_exit_2_with_one_line(run, data, tmp_path):
    out, _ = run
    train, test = data
    one_line_error(invoke("train", "--preset", "turbo", "--data", train), "unknown preset 'turbo'")
    one_line_error(invoke("train", "--data", tmp_path / "missing.csv"), "missing.csv", "no such file")
    one_line_error(invoke("predict", tmp_path / "no-run", "text"), "run folder not found")
    one_line_error(invoke("eval", tmp_path / "no-run", "--data", test), "run folder not found")
    one_line_error(invoke("predict", out), "give texts to label")
    one_line_error(invoke("train", "--data", train, "--dropout", "1.5"), "dropout (--dropout) must be [0, 1)")

    unseen = tmp_path / "unseen.csv"
    unseen.write_text("label,text\nweather,rain and sun\n", encoding="utf-8")
    one_line_error(invoke("eval", out, "--data", unseen), "label 'weather' was not seen in training")

    import shutil

    broken = shutil.copytree(out, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"\x00" * 10)
    one_line_error(invoke("predict", broken, "goal"), "model.safetensors: corrupted weights file")

    other = tmp_path / "other"
    same_but_smaller = {**TINY, "hidden_dim": 4, "cell": "lstm", "pool": "attention"}
    invoke(
        "train",
        "--data",
        train,
        "--out",
        other,
        "--max-steps",
        1,
        "--bidirectional",
        *option_args(same_but_smaller),
    )
    mismatched = shutil.copytree(out, tmp_path / "mismatched")
    shutil.copy(other / "model.safetensors", mismatched / "model.safetensors")
    one_line_error(
        invoke("predict", mismatched, "goal"), "model.safetensors: encoder.weight_ih_l0 has shape [16, 8]"
    )
