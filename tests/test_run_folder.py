"""The run folder: exactly the promised files, a model rebuilt from them, resume, seeds, and load checks."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import rnnkit
from rnnkit.api import ClassifierRun
from rnnkit.errors import RunFolderError
from rnnkit.training.checkpoint import RunFolder
from tiny_text import TINY, write_splits

FILES = {
    "config.json",
    "vocab.json",
    "labels.json",
    "model.safetensors",
    "trainer_state.pt",
    "metrics.jsonl",
    "report.json",
    "curves.png",
    "confusion.png",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    train, test = data
    out = tmp_path_factory.mktemp("runs") / "tiny"
    return rnnkit.train(train, test=str(test), out=out, cell="gru", bidirectional=True, pool="max", **TINY)


def train_tiny(data, out, **options):
    train, test = data
    settings = {**TINY, "eval_every": 5, **options}
    return rnnkit.train(train, test=str(test), out=out, **settings)


def test_exactly_the_promised_files(run):
    assert {p.name for p in run.iterdir()} == FILES  # nothing else, no temporary files left over
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "classify" and config["rnnkit_version"] == rnnkit.__version__
    assert config["config"]["model"]["cell"] == "gru" and config["config"]["train"]["epochs"] == 2
    assert json.loads((run / "labels.json").read_text()) == ["food", "sport", "tech"]
    vocab = json.loads((run / "vocab.json").read_text())
    assert vocab["vocab"]["itos"][:2] == ["<pad>", "<unk>"] and "goal" in vocab["vocab"]["itos"]
    state = torch.load(run / "trainer_state.pt", weights_only=True)
    assert state["state"]["step"] > 0 and "optimizers" in state and "rng" in state


def test_report_and_metrics(run):
    report = json.loads((run / "report.json").read_text())
    for key in (
        "accuracy",
        "macro_f1",
        "per_class",
        "confusion",
        "labels",
        "n",
        "train_seconds",
        "tokens_per_s",
        "parameters",
        "device",
    ):
        assert key in report, key
    assert report["n"] == 30 and sum(map(sum, report["confusion"])) == 30 and report["split"] == "test"
    assert set(report["per_class"]) == {"food", "sport", "tech"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records and all(
        {"step", "epoch", "train_loss", "valid_loss", "valid_accuracy"} <= set(r) for r in records
    )


def test_run_folder_rebuilds_an_identical_model(run, data):
    _, test = data
    loaded = rnnkit.load(run, device="cpu")
    assert isinstance(loaded, ClassifierRun) and loaded.labels == ["food", "sport", "tech"]
    report = json.loads((run / "report.json").read_text())
    again = loaded.evaluate(test)
    assert again["confusion"] == report["confusion"] and again["accuracy"] == report["accuracy"]
    texts = ["goal team win", "soup and bread", "cloud server data today"]
    first, second = loaded.predict(texts), rnnkit.load(run, device="cpu").predict(texts)
    assert first == second
    assert [r["label"] for r in first] == ["sport", "food", "tech"]
    weights = load_file(run / "model.safetensors")
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, weights[name]), name


def test_predict_shapes_and_top_k(run):
    loaded = rnnkit.load(run, device="cpu")
    (result,) = loaded.predict("goal goal goal", top_k=2)
    assert set(result) == {"text", "label", "probability", "probs"} and len(result["probs"]) == 2
    assert (
        list(result["probs"])[0] == result["label"]
        and result["probs"][result["label"]] == result["probability"]
    )
    full = loaded.predict(["", "zzz unseen words"])
    assert all(sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-4) for r in full)


def test_seeded_runs_are_identical(data, tmp_path):
    a = train_tiny(data, tmp_path / "a", seed=3)
    b = train_tiny(data, tmp_path / "b", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()

    def strip(run):
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in ("elapsed_s", "tokens_per_s")} for r in records]

    assert strip(a) == strip(b)
    c = train_tiny(data, tmp_path / "c", seed=4)
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


class StopAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, logs):
        if logs["step"] == self.step:
            trainer.request_stop("interrupted")


def test_resume_gives_the_uninterrupted_weights(data, tmp_path):
    full = train_tiny(data, tmp_path / "full", dropout=0.3, embed_dropout=0.1)
    cut = train_tiny(data, tmp_path / "cut", dropout=0.3, embed_dropout=0.1, callbacks=[StopAt(7)])
    assert json.loads((cut / "report.json").read_text())["stop_reason"] == "interrupted"
    resumed = rnnkit.train(out=cut, resume=True)
    assert (full / "model.safetensors").read_bytes() == (resumed / "model.safetensors").read_bytes()
    report = json.loads((resumed / "report.json").read_text())
    assert report["steps"] == json.loads((full / "report.json").read_text())["steps"]


def test_resume_refuses_changed_settings_and_missing_state(data, tmp_path):
    from rnnkit.errors import ConfigError

    out = train_tiny(data, tmp_path / "r", max_steps=2)
    with pytest.raises(ConfigError, match="hidden_dim"):
        rnnkit.train(out=out, resume=True, hidden_dim=32)
    (out / "trainer_state.pt").unlink()
    with pytest.raises(RunFolderError, match="trainer_state.pt"):
        rnnkit.train(out=out, resume=True)


def test_a_new_run_replaces_the_old_one(data, tmp_path):
    out = train_tiny(data, tmp_path / "x", max_steps=2)
    train_tiny(data, out, max_steps=3)
    assert json.loads((out / "report.json").read_text())["steps"] == 3
    assert max(json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()) == 3


# --- load checks: the files must agree ------------------------------------------------------------


@pytest.fixture
def copy_of(run, tmp_path):
    import shutil

    return shutil.copytree(run, tmp_path / "copy")


def test_missing_folder_or_file(tmp_path, copy_of):
    with pytest.raises(RunFolderError, match="run folder not found"):
        rnnkit.load(tmp_path / "nope")
    (copy_of / "vocab.json").unlink()
    with pytest.raises(RunFolderError, match="missing vocab.json"):
        rnnkit.load(copy_of)


def test_corrupted_weights(copy_of):
    (copy_of / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RunFolderError, match="model.safetensors: corrupted weights file"):
        rnnkit.load(copy_of)


def test_weights_that_disagree_with_the_vocabulary(copy_of):
    vocab = json.loads((copy_of / "vocab.json").read_text())
    vocab["vocab"]["itos"].append("extra-word")
    (copy_of / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(RunFolderError, match=r"embedding.weight has shape \[\d+, 8\], but .*need \[\d+, 8\]"):
        rnnkit.load(copy_of)


def test_weights_that_disagree_with_the_config(copy_of):
    weights = load_file(copy_of / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("head.")}, copy_of / "model.safetensors")
    with pytest.raises(RunFolderError, match="missing: head.bias, head.weight"):
        rnnkit.load(copy_of)


def test_bad_labels_and_config_files(copy_of):
    (copy_of / "labels.json").write_text('["a", "a"]')
    with pytest.raises(RunFolderError, match="labels.json: expected a list of at least 2 distinct class"):
        rnnkit.load(copy_of)
    (copy_of / "config.json").write_text("{")
    with pytest.raises(RunFolderError, match="config.json: corrupted JSON"):
        rnnkit.load(copy_of)


def test_run_folder_reads_fail_clearly(tmp_path):
    folder = RunFolder(tmp_path)
    (tmp_path / "trainer_state.pt").write_bytes(b"garbage")
    with pytest.raises(RunFolderError, match="unreadable trainer state"):
        folder.load_trainer_state()
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{broken\n')
    with pytest.raises(RunFolderError, match="metrics.jsonl:2: corrupted metrics line"):
        folder.read_metrics()
