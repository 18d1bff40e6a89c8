"""Everyday use without surprises (issue 15): predict's file rule, eval reports, interrupts and resume,
progress that fits where it runs, bad options as one line, umask, threads, ports."""

import json

import pytest

from cli_helpers import invoke, one_line_error, option_args
from tiny_text import TINY, write_splits


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("everyday-data"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    train, test = data
    out = tmp_path_factory.mktemp("everyday-runs") / "run"
    result = invoke("train", "--data", train, "--test", test, "--out", out, "--cell", "gru",
                    *option_args(TINY))  # fmt: skip
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


# --- interrupts and resume ---------------------------------------------------------------------------
def signal_at(monkeypatch, step, signum):
    """Send ``signum`` to this process when training reaches ``step`` (before any evaluation)."""
    import os

    import rnnkit.progress

    original = rnnkit.progress.TrainProgress.on_step_end

    def on_step_end(self, trainer, logs):
        original(self, trainer, logs)
        if logs["step"] == step:
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(rnnkit.progress.TrainProgress, "on_step_end", on_step_end)


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_sigint_before_the_first_evaluation_saves_a_checkpoint_resume_finishes(data, tmp_path, monkeypatch):
    """Regression: Ctrl-C printed 'Aborted!' and exited 1; before the first evaluation nothing was saved and
    --resume refused the folder."""
    import signal

    import torch

    train, test = data
    args = ["train", "--data", train, "--test", test, "--cell", "gru", *option_args(TINY)]
    whole = invoke(*args, "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    with monkeypatch.context() as m:
        signal_at(m, 3, signal.SIGINT)
        stopped = invoke(*args, "--out", tmp_path / "cut")
    assert stopped.exit_code == 130, stopped.output
    assert "Aborted" not in stopped.output
    assert "interrupted by SIGINT at step 3" in stopped.stderr
    assert f"rnnkit train --out {tmp_path / 'cut'} --resume" in stopped.stderr
    assert (tmp_path / "cut" / "trainer_state.pt").is_file()
    assert not (tmp_path / "cut" / "report.json").exists()
    resumed = invoke("train", "--out", tmp_path / "cut", "--resume")
    assert resumed.exit_code == 0, resumed.output
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)  # as if never interrupted


def test_sigterm_exits_143(data, tmp_path, monkeypatch):
    import signal

    train, _ = data
    signal_at(monkeypatch, 2, signal.SIGTERM)
    result = invoke("train", "--data", train, "--out", tmp_path / "r", *option_args(TINY))
    assert result.exit_code == 143 and "interrupted by SIGTERM at step 2" in result.stderr


# Ctrl-C in every other command: one line on stderr and exit 130 (143 for SIGTERM), never click's "Aborted!"
def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_line(result, command, signal_name="SIGINT"):
    assert "Aborted" not in result.output and "Traceback" not in result.output, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"rnnkit: {command} interrupted by {signal_name}; "), result.stderr


@pytest.mark.parametrize("command, target", [
    ("predict", "rnnkit.export.load_predictor"),
    ("eval", "rnnkit.pipelines.classify.ClassifierRun.evaluate"),
    ("export", "rnnkit.export.export_bytes"),
    ("inspect", "rnnkit.inspect.inspect_text"),
    ("datasets", "rnnkit.data.fetch_dataset"),
    ("serve", "rnnkit.serve.app.create_app"),
])  # fmt: skip
def test_ctrl_c_in_any_command_is_one_line_exit_130_and_writes_nothing(run, data, tmp_path, monkeypatch,
                                                                        command, target):  # fmt: skip
    """Regression: Ctrl-C in predict, eval, export, inspect, datasets --download or serve printed click's
    'Aborted!' and exited 1 (the "a bug" code)."""
    out = tmp_path / "written"
    args = {
        "predict": ["predict", run, "goal"],
        "eval": ["eval", run, "--data", data[1], "--predictions", out.with_suffix(".csv")],
        "export": ["export", run, "--out", out.with_suffix(".pt")],
        "inspect": ["inspect", run, "goal", "--out", out.with_suffix(".html")],
        "datasets": ["datasets", "--download", "ag_news"],
        "serve": ["serve", run, "--port", free_port()],
    }[command]
    monkeypatch.setattr(target, interrupt)
    result = invoke(*args)
    assert result.exit_code == 130, result.output
    only_line(result, command)
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_ctrl_c_while_the_command_line_is_parsed_is_one_line_too(run, monkeypatch):
    monkeypatch.setattr("click.Group.make_context", interrupt)  # (parsing may import PyTorch: seconds)
    result = invoke("predict", run, "goal")
    assert result.exit_code == 130, result.output
    only_line(result, "predict")


def test_sigterm_in_predict_exits_143(run, monkeypatch):
    import signal

    from rnnkit.interrupts import Interrupted

    def terminated(*args, **kwargs):
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr("rnnkit.export.load_predictor", terminated)
    result = invoke("predict", run, "goal")
    assert result.exit_code == 143, result.output
    only_line(result, "predict", "SIGTERM")


def test_ctrl_c_in_generate_ends_the_text_line_then_says_so(run, monkeypatch):
    from rnnkit.api import LanguageModelRun

    def stream(prime, length, **options):
        yield from ("to be", " or")
        raise KeyboardInterrupt

    model = object.__new__(LanguageModelRun)
    model.stream = stream
    monkeypatch.setattr("rnnkit.api.load", lambda run, device: model)
    result = invoke("generate", run, "--length", 10)
    assert result.exit_code == 130, result.output
    assert result.stdout == "to be or\n"  # the line ends before the message
    only_line(result, "generate")


@pytest.mark.parametrize("then", ["goes on", "fails"])
def test_an_interrupt_that_a_library_swallows_still_ends_the_command(run, monkeypatch, capsys, then):
    """Regression: a Ctrl-C while PyTorch was being imported was sometimes swallowed there (the server then
    started anyway) or left a module half-imported (a RecursionError traceback, exit 1)."""
    import os
    import signal
    import time

    import rnnkit.cli
    import rnnkit.export

    real = rnnkit.export.load_predictor

    def swallowing(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises here
        except BaseException:  # what a bare `except:` in a library does
            pass
        if then == "fails":
            raise RuntimeError("partially initialized module")
        return real(*args, **kwargs)

    monkeypatch.setattr(rnnkit.export, "load_predictor", swallowing)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        rnnkit.cli.main(["predict", str(run), "goal"])
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "rnnkit: predict interrupted by SIGINT; nothing was written\n"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # restored


def test_ctrl_c_in_predict_on_a_big_file_exits_130_with_one_line(run, tmp_path):
    """The real thing: `python -m rnnkit predict RUN big.txt`, SIGINT once the command runs."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    maps = Path(f"/proc/{os.getpid()}/maps")
    if not maps.exists():
        pytest.skip("needs /proc to see when the command has started")
    big = tmp_path / "big.txt"
    big.write_text("goal win team today\n" * 200_000, encoding="utf-8")
    command = [sys.executable, "-m", "rnnkit", "predict", str(run), str(big)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "libtorch" not in Path(f"/proc/{process.pid}/maps").read_text():  # torch: inside a command
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err == "rnnkit: predict interrupted by SIGINT; nothing was written\n"


def test_resume_with_more_epochs_extends_a_finished_run(run, tmp_path):
    import shutil

    folder = shutil.copytree(run, tmp_path / "longer")
    result = invoke("train", "--out", folder, "--resume", "--epochs", 3, "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "report.json").read_text())
    assert report["epochs"] == 3 and result.stderr == ""
    assert "trained 3 epochs (" in result.stdout


def test_init_from_fine_tunes_a_trained_classifier_on_new_data_with_a_new_label(run, tmp_path):
    import torch

    extra = tmp_path / "more.csv"
    extra.write_text("label,text\nweather,rain sun cloud wind\nweather,snow rain\nsport,goal team win\n"
                     "food,bread soup\ntech,chip code\n", encoding="utf-8")  # fmt: skip
    out = tmp_path / "tuned"
    result = invoke("train", "--init-from", run, "--data", extra, "--valid", extra, "--out", out,
                    "--max-steps", 0 + 1, "--lr", "0", "--device", "cpu", "--quiet")  # fmt: skip
    assert result.exit_code == 2 and "lr (--lr) must be" in result.stderr  # settings are still checked
    result = invoke("train", "--init-from", run, "--data", extra, "--valid", extra, "--out", out,
                    "--max-steps", 1, "--lr", "1e-9", "--device", "cpu", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    labels = json.loads((out / "labels.json").read_text())
    assert labels == json.loads((run / "labels.json").read_text()) + ["weather"]
    assert json.loads((out / "vocab.json").read_text()) == json.loads((run / "vocab.json").read_text())
    before, after = weights(run), weights(out)
    emb = next(k for k in before if "embedding" in k)
    assert torch.allclose(before[emb], after[emb], atol=1e-6)  # started from the source's weights
    differs = invoke("train", "--init-from", run, "--data", extra, "--out", tmp_path / "x",
                     "--hidden-dim", 99)  # fmt: skip
    one_line_error(differs, "--init-from keeps the source run's model", "hidden_dim")


# --- progress ----------------------------------------------------------------------------------------
def test_progress_in_a_log_is_one_line_per_evaluation_without_carriage_returns(data, tmp_path):
    """Regression: tqdm wrote \\r updates when stderr was not a terminal (25-29 KB for a 30 s run)."""
    train, test = data
    result = invoke("train", "--data", train, "--test", test, "--out", tmp_path / "r", *option_args(TINY),
                    "--epochs", 3)  # fmt: skip
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "\r" not in err and len(err) < 2000, err
    lines = err.splitlines()
    assert lines[0].startswith("data: 81 train / 9 valid / 30 test examples, vocabulary ")
    assert "3 labels (food, sport, tech)" in lines[0]
    evals = [line for line in lines if line.startswith("epoch ")]
    assert len(evals) == 3 and evals[0].startswith("epoch 1.00/3 - step ")
    assert " - loss " in evals[0] and " - valid accuracy " in evals[0] and evals[0].endswith("tok/s")
    quiet = invoke("train", "--data", train, "--out", tmp_path / "q", *option_args(TINY), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_python_train_shows_progress_or_calls_a_function(data, tmp_path, capsys):
    import rnnkit

    train, _ = data
    seen = []
    rnnkit.train(train, out=tmp_path / "f", progress=seen.append, **TINY)
    assert [logs["step"] for logs in seen] == list(range(1, len(seen) + 1)) and "loss" in seen[0]
    capsys.readouterr()
    rnnkit.train(train, out=tmp_path / "t", **TINY)  # progress=True by default
    assert "data: 81 train" in capsys.readouterr().err
    rnnkit.train(train, out=tmp_path / "n", progress=False, **TINY)
    assert capsys.readouterr().err == ""


def test_the_bar_total_follows_the_time_budget():
    from types import SimpleNamespace

    from rnnkit.progress import TrainProgress

    trainer = SimpleNamespace(total_steps=10_000, config=SimpleNamespace(time_budget=10.0))
    assert TrainProgress._expected_steps(trainer, {"step": 100, "elapsed_s": 2.0}) == 500
    trainer.config.time_budget = None
    assert TrainProgress._expected_steps(trainer, {"step": 100, "elapsed_s": 2.0}) == 10_000


def test_summary_counts_are_singular_and_short_runs_say_steps():
    from rnnkit.cli import _how_long

    assert _how_long(1.0, 12) == "1 epoch (12 steps)"
    assert _how_long(2.0, 24) == "2 epochs (24 steps)"
    assert _how_long(0.0017, 5) == "5 steps (0.2% of an epoch)"
    assert _how_long(0.5, 1) == "1 step (50.0% of an epoch)"


# --- bad options: one line, exit 2, nothing written --------------------------------------------------
@pytest.mark.parametrize(
    "options, needle",
    [
        (["--png", "{png}", "--state", "c"], "--state c: a GRU records h"),
        (["--png", "{png}", "--direction", "reverse"], "--direction reverse: the model reads one direction"),
        (["--png", "{png}", "--layer", "3"], "--layer 3: the model has 1 layer(s)"),
        (["--find-units", "--pattern", "zzzz", "--data", "{data}"], "zzzz"),
    ],
)
def test_inspect_bad_options_are_one_line_and_leave_the_report_alone(run, data, tmp_path, options, needle):
    """Regression: each of these was a Python traceback (exit 1), with report.html overwritten anyway."""
    report = tmp_path / "report.html"
    report.write_text("earlier report")
    png = tmp_path / "h.png"
    options = [o.format(png=png, data=data[0]) for o in options]
    one_line_error(invoke("inspect", run, "goal team", "--out", report, *options), needle)
    assert report.read_text() == "earlier report" and not png.exists()


def test_inspect_an_empty_text_is_one_line(run, tmp_path):
    one_line_error(invoke("inspect", run, "  ", "--out", tmp_path / "r.html"), "TEXT is empty")
    assert not (tmp_path / "r.html").exists()


def test_omp_num_threads_is_honoured_without_threads(data, tmp_path):
    """Regression: OMP_NUM_THREADS=1 was ignored (always '2 threads')."""
    train, _ = data
    settings = {k: v for k, v in TINY.items() if k != "threads"}
    result = invoke("train", "--data", train, "--out", tmp_path / "r", "--quiet", *option_args(settings),
                    env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "report.json").read_text())["device"] == "cpu (1 thread)"
    assert "(1 thread)" in result.stdout


def test_files_are_written_with_the_users_umask(data, tmp_path):
    """Regression: every file was mode 0600 whatever the umask."""
    import os
    import stat

    train, _ = data
    old = os.umask(0o022)
    try:
        result = invoke("train", "--data", train, "--out", tmp_path / "r", "--quiet", *option_args(TINY))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in ("config.json", "model.safetensors", "report.json", "trainer_state.pt"):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o644, name


def test_out_refuses_to_replace_a_folder_that_is_not_a_run(data, tmp_path):
    train, _ = data
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.json").write_text('{"name": "my web app"}')
    one_line_error(invoke("train", "--data", train, "--out", folder, *option_args(TINY)),
                   "is not an rnnkit run folder")  # fmt: skip
    assert (folder / "config.json").read_text() == '{"name": "my web app"}'


def test_serve_checks_the_port_before_announcing_it(run):
    """Regression: on a busy port, serve printed 'serving on …', then a uvicorn error, and exited 3."""
    import socket

    pytest.importorskip("fastapi")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("serve", run, "--port", port)
    one_line_error(result, f"cannot listen on 127.0.0.1:{port}")
    assert "serving" not in result.output


def test_relative_paths_in_a_config_file_are_read_against_its_folder(data, tmp_path, monkeypatch):
    """Regression: relative data paths in config.json broke --config from another folder."""
    import shutil

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copy(data[0], project / "data" / "train.csv")
    (project / "settings.json").write_text(json.dumps({"data": {"data": "data/train.csv"}, **TINY}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("train", "--config", project / "settings.json", "--out", "run", "--quiet")
    assert result.exit_code == 0, result.output
    saved = json.loads((elsewhere / "run" / "config.json").read_text())["config"]["data"]["data"]
    assert saved == str((project / "data" / "train.csv").resolve())


def test_a_misspelled_setting_in_a_config_file_suggests_the_right_one(tmp_path):
    (tmp_path / "c.json").write_text('{"hiden_dim": 8}')
    one_line_error(invoke("train", "--config", tmp_path / "c.json"), "unknown setting 'hiden_dim'",
                   "did you mean hidden_dim?")  # fmt: skip


# --- eval like scikit-learn --------------------------------------------------------------------------
def test_eval_prints_scikit_learns_report_layout_and_writes_predictions(run, data, tmp_path):
    from sklearn.metrics import classification_report

    _, test = data
    out = tmp_path / "errors.csv"
    result = invoke("eval", run, "--data", test, "--predictions", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["precision", "recall", "f1-score", "support"]
    macro = next(line for line in lines if line.strip().startswith("macro avg")).split()
    weighted = next(line for line in lines if line.strip().startswith("weighted avg")).split()
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30 and set(rows[0]) == {"text", "label", "predicted", "probability", "correct"}
    want = classification_report([r["label"] for r in rows], [r["predicted"] for r in rows], output_dict=True,
                                 zero_division=0)  # fmt: skip
    assert float(macro[2]) == pytest.approx(want["macro avg"]["precision"], abs=1e-4)
    assert float(weighted[4]) == pytest.approx(want["weighted avg"]["f1-score"], abs=1e-4)
    report = json.loads((run / "report.json").read_text())
    assert {"macro_avg", "weighted_avg", "train_examples", "vocab_size"} <= set(report)
    assert report["train_examples"] == 81 and report["macro_avg"]["support"] == 30
    one_line_error(invoke("eval", run, "--data", test, "--predictions", tmp_path / "p.xlsx"), ".jsonl")


# --- plots ---------------------------------------------------------------------------------------------
def test_training_loss_is_logged_every_few_steps_for_the_curves(data, tmp_path):
    """Regression: curves.png drew the training loss only at evaluations (two points for a short run)."""
    import torch

    from rnnkit.training.loop import LOSS_LOG_POINTS, Trainer, TrainState

    train, _ = data
    result = invoke("train", "--data", train, "--out", tmp_path / "r", "--quiet", *option_args(TINY))
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "r" / "trainer_state.pt", weights_only=True)["state"]
    steps = state["step"]
    assert [p[0] for p in state["loss_log"]] == list(range(1, steps + 1))  # one point per step here
    trainer = Trainer.__new__(Trainer)
    trainer.state = TrainState()
    for step in range(1, 5001):
        trainer.state.step = step
        trainer._log_loss(1.0 / step)
    log = trainer.state.loss_log
    assert LOSS_LOG_POINTS // 2 <= len(log) <= LOSS_LOG_POINTS and log[-1][0] > 4900


def test_confusion_matrix_stays_readable_from_2_to_100_classes(tmp_path):
    import numpy as np
    from PIL import Image

    from rnnkit.training.plots import plot_confusion, top_confusions

    sizes = {}
    for c in (2, 43, 100):
        counts = np.eye(c, dtype=int) * 20 + 1
        plot_confusion(counts.tolist(), [f"class number {i}" for i in range(c)], tmp_path / f"{c}.png")
        sizes[c] = Image.open(tmp_path / f"{c}.png").size
    assert sizes[2][0] < 900 and sizes[43][0] > 1500 and sizes[100][0] > sizes[43][0]
    # at least ~15 pixels per class row: labels of 7-8 points stay legible
    assert sizes[43][1] / 43 >= 15 and sizes[100][1] / 100 >= 15
    pairs = top_confusions([[8, 2, 0], [5, 4, 1], [0, 0, 9]], ["a", "b", "c"], k=2)
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [("b", "a", 5), ("a", "b", 2)]


def test_inspect_page_is_bounded_and_states_are_embedded_once_compactly(run, tmp_path, monkeypatch):
    """Regression: a 600-character text on the char LM made a 20 MB page (decimal JSON of every state)."""
    import rnnkit.inspect.report as report

    monkeypatch.setattr(report, "MAX_PAGE_VALUES", 8 * 4 * 10)  # 10 tokens of this 1-layer GRU (h r z n × 8)
    page = tmp_path / "r.html"
    result = invoke("inspect", run, " ".join(["goal"] * 30), "--out", page)
    assert result.exit_code == 0, result.output
    assert "the text has 30 tokens; inspecting the first 10" in result.stderr
    data = report.read_report_data(page)
    assert len(data["tokens"]) == 10 and len(data["states"][0][0]["h"]) == 10
    text = page.read_text()
    assert text.count('"states_f32"') == 1 and '"states":null' in text


def test_heatmap_says_which_units_it_shows_and_labels_its_colour_bar(run, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    import rnnkit

    seen = {}
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        seen["titles"] = [ax.get_title() for ax in self.axes]
        seen["labels"] = [ax.get_ylabel() for ax in self.axes]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    inspection = rnnkit.load(run, device="cpu").inspect("goal team win")
    inspection.save_png(tmp_path / "h.png", name="z", max_units=4)
    title = "update gate z (layer 0, forward): the 4 of 8 units that vary most over the text"
    assert seen["titles"][0] == title
    assert "gate value (0 = closed, 1 = open)" in seen["labels"]
