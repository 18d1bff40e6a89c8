"""ONNX and TorchScript exports: equal to eager on ragged and bidirectional batches, and the commands."""

import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

import rnnkit
from rnnkit import __version__
from rnnkit.cli import cli
from rnnkit.config import resolve_config
from rnnkit.data import TextEncoder
from rnnkit.errors import ConfigError
from rnnkit.export import (
    ExportCheckError,
    ExportedClassifier,
    check_export,
    export_model,
    load_exported,
    load_predictor,
    pad_batch,
    sample_texts,
)
from rnnkit.models.classifier import TextClassifier
from rnnkit.training.checkpoint import CONFIG, LABELS, VOCAB, RunFolder
from tiny_text import WORDS

LABEL_NAMES = sorted(WORDS)
VOCAB_TEXTS = [" ".join(words) for words in WORDS.values()] + ["the a of and today new big"]
RECURRENT_OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def make_run(folder, *, cell="lstm", bidirectional=False, layers=1, pool="last", use_lengths=True,
             max_len=None, seed=0, scale=3.0):  # fmt: skip
    """A classifier run folder written with the checkpoint module: random weights, scaled up so that
    the outputs are far from uniform and any padding that leaks in shows in the probabilities."""
    encoder = TextEncoder.fit(VOCAB_TEXTS)
    overrides = {"cell": cell, "bidirectional": bidirectional, "layers": layers, "pool": pool, "embed_dim": 6,
                 "hidden_dim": 5, "use_lengths": use_lengths, "max_len": max_len}  # fmt: skip
    cfg = resolve_config(overrides=overrides)
    torch.manual_seed(seed)
    model = TextClassifier.from_config(cfg.model, len(encoder), len(LABEL_NAMES), pad_id=encoder.vocab.pad_id)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    run = RunFolder(folder)
    run.write_json(CONFIG, {"rnnkit_version": __version__, "task": "classify", "config": cfg.to_dict()})
    run.write_json(VOCAB, encoder.to_dict())
    run.write_json(LABELS, LABEL_NAMES)
    run.save_weights(model.state_dict())
    return folder


def ragged_texts(seed=0):
    """Texts of 1 to 23 known words, unsorted, with several of length 1."""
    rng = np.random.default_rng(seed)
    words = [w for ws in WORDS.values() for w in ws]
    lengths = [1, 7, 2, 23, 1, 4, 11, 3, 1, 16]
    return [" ".join(rng.choice(words, n)) for n in lengths]


def eager_alone(run, texts):
    """Eager probabilities of each text run alone (a batch of one: no padding at all)."""
    rows = []
    for text in texts:
        ids = torch.tensor([run.encoder.encode(text) or [run.encoder.vocab.unk_id]])
        with torch.inference_mode():
            rows.append(torch.softmax(run.model(ids, torch.tensor([ids.shape[1]])), dim=-1)[0].numpy())
    return np.stack(rows)


CASES = [  # every cell × direction; the bidirectional ones stacked, pooled on the final states
    ("rnn", False, 1),
    ("rnn", True, 2),
    ("lstm", False, 1),
    ("lstm", True, 2),
    ("gru", False, 1),
    ("gru", True, 2),
]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize(
    "cell, bidirectional, layers", CASES, ids=[f"{c}-{'bi' if b else 'uni'}" for c, b, _ in CASES]
)
def test_export_equals_eager_on_ragged_batches(tmp_path, cell, bidirectional, layers, fmt):
    run_dir = make_run(tmp_path / "run", cell=cell, bidirectional=bidirectional, layers=layers)
    out = tmp_path / "export" / ("model.onnx" if fmt == "onnx" else "model.pt")
    result = export_model(run_dir, out, format=fmt, check=True)
    assert result.max_abs_diff <= 1e-4
    eager = rnnkit.load(run_dir, device="cpu")
    exported = load_exported(out)
    texts = ragged_texts()
    expected = eager_alone(eager, texts)
    assert expected.max() - expected.min() > 0.3  # the model is far from uniform: a leak would show

    # One unsorted ragged batch, wider and larger than the traced example (batch 3, length 3).
    ids, lengths = pad_batch(exported.encode(texts))
    assert ids.shape == (10, 23) and lengths.min() == 1
    assert np.abs(exported.run(ids, lengths) - expected).max() <= 1e-4
    # predict_proba sorts by length and batches; a single one-token text is a [1, 1] batch.
    assert np.abs(exported.predict_proba(texts) - expected).max() <= 1e-4
    one_token = eager_alone(eager, [eager.encoder.decode([5])])
    assert np.abs(exported.run(*pad_batch([[5]])) - one_token).max() <= 1e-4

    # The lengths input matters: pretending every text is full length changes the padded rows.
    full = np.full_like(lengths, ids.shape[1])
    assert np.abs(exported.run(ids, full) - expected).max() > 1e-3


@pytest.mark.parametrize("pool", ["mean", "max", "attention"])
def test_onnx_export_of_every_pooling_equals_eager(tmp_path, pool):
    run_dir = make_run(tmp_path / "run", cell="lstm", bidirectional=True, pool=pool)
    export_model(run_dir, tmp_path / "m.onnx", check=True)
    exported, eager = load_exported(tmp_path / "m.onnx"), rnnkit.load(run_dir, device="cpu")
    texts = ragged_texts(seed=1)
    assert np.abs(exported.predict_proba(texts) - eager_alone(eager, texts)).max() <= 1e-4


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_onnx_graph_uses_the_fused_recurrent_op_and_dynamic_axes(tmp_path, cell):
    run_dir = make_run(tmp_path / "run", cell=cell, bidirectional=True, layers=2)
    export_model(run_dir, tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count(RECURRENT_OPS[cell]) >= 2  # one per layer
    assert not {"Loop", "Scan", "If"} & set(ops)  # no unrolled time loop, no value-dependent branch
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"ids": ["batch", "length"], "lengths": ["batch"]}
    assert [d.dim_param for d in graph.output[0].type.tensor_type.shape.dim][0] == "batch"


def embedded(path):
    """The description embedded in an export file (ONNX metadata or the TorchScript archive's extra file)."""
    if path.suffix == ".onnx":
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        return json.loads(props["rnnkit"])
    extra = {"rnnkit.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    return json.loads(extra["rnnkit.json"])


def test_export_is_one_file_with_vocab_labels_and_info_embedded(tmp_path):
    run_dir = make_run(tmp_path / "run")
    result = export_model(run_dir, tmp_path / "out" / "classifier.onnx", check=True, texts=["goal", "a b c"])
    folder = tmp_path / "out"
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.onnx"]
    assert result.files == [folder / "classifier.onnx"]
    info = embedded(folder / "classifier.onnx")
    assert info["labels"] == LABEL_NAMES
    assert info["vocab"] == json.loads((run_dir / "vocab.json").read_text())
    assert (info["format"], info["task"]) == ("onnx", "classify")
    assert info["check"]["passed"] is True and info["check"]["texts"] == 2
    assert info["config"]["model"]["cell"] == "lstm"
    exported = load_exported(folder)  # the folder works as well as the file
    eager = rnnkit.load(run_dir, device="cpu")
    got, want = exported.predict(["goal team"], top_k=2)[0], eager.predict(["goal team"], top_k=2)[0]
    assert got["label"] == want["label"] and list(got["probs"]) == list(want["probs"])


def test_max_len_cuts_texts_as_eager_predict_does(tmp_path):
    run_dir = make_run(tmp_path / "run", cell="gru", bidirectional=True, max_len=3)
    export_model(run_dir, tmp_path / "m.pt", format="torchscript")
    texts = ["goal team win match score", "bread"]
    got = [p["probs"] for p in load_exported(tmp_path / "m.pt").predict(texts)]
    want = [p["probs"] for p in rnnkit.load(run_dir, device="cpu").predict(texts)]
    for g, w in zip(got, want, strict=True):
        assert np.allclose([g[k] for k in w], list(w.values()), atol=1e-5)


def test_model_that_ignores_lengths_exports_and_matches_on_the_same_batches(tmp_path):
    run_dir = make_run(tmp_path / "run", cell="lstm", use_lengths=False, pool="mean")
    export_model(run_dir, tmp_path / "m.onnx")
    exported, eager = load_exported(tmp_path / "m.onnx"), rnnkit.load(run_dir, device="cpu")
    assert check_export(exported, eager, ragged_texts()) <= 1e-4


def test_check_fails_loudly_when_the_export_differs(tmp_path):
    run_dir = make_run(tmp_path / "run")
    eager = rnnkit.load(run_dir, device="cpu")

    def uniform_probs(ids, lengths):
        return np.full((len(ids), 3), 1 / 3, np.float32)

    uniform = ExportedClassifier(uniform_probs, eager.encoder, eager.labels, backend="onnx")
    with pytest.raises(ExportCheckError, match=r"differs from eager PyTorch by 0\.\d+ .* more than 0\.0001"):
        check_export(uniform, eager, sample_texts(eager.encoder))
    assert check_export(uniform, eager, ["goal"], tolerance=None) > 1e-4


def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    run = rnnkit.load(make_run(tmp_path / "run"), device="cpu")
    run.model.train()
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    export_model(run, tmp_path / "m.onnx")
    assert run.model.training  # not switched to eval mode behind the caller's back
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items())


def test_sample_texts_are_ragged_with_one_token_texts():
    encoder = TextEncoder.fit(VOCAB_TEXTS)
    lengths = [len(encoder.encode(t)) for t in sample_texts(encoder)]
    assert 1 in lengths and 0 in lengths and max(lengths) >= 30


def test_bad_requests_raise_clear_errors(tmp_path):
    run_dir = make_run(tmp_path / "run")
    with pytest.raises(ConfigError, match="export format must be one of onnx, torchscript, got 'tflite'"):
        export_model(run_dir, tmp_path / "m.tflite", format="tflite")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match="--out must be a file path"):
        export_model(run_dir, tmp_path / "folder")
    with pytest.raises(ConfigError, match="a torchscript export is a .pt file; got --out"):
        export_model(run_dir, tmp_path / "m.onnx", format="torchscript")
    with pytest.raises(ConfigError, match="only classifier runs can be exported"):
        export_model(object(), tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="backend must be one of eager, onnx, torchscript, got 'tvm'"):
        load_predictor(run_dir, "tvm")


def test_load_predictor_exports_a_run_folder_in_memory(tmp_path):
    run_dir = make_run(tmp_path / "run", cell="gru", bidirectional=True)
    eager = rnnkit.load(run_dir, device="cpu")
    texts = ragged_texts()
    for backend in ("onnx", "torchscript"):
        predictor = load_predictor(run_dir, backend)
        assert predictor.backend == backend and predictor.path is None
        assert np.abs(predictor.predict_proba(texts) - eager_alone(eager, texts)).max() <= 1e-4


# --- the commands ----------------------------------------------------------------------------------
def test_cli_export_check_and_predict_with_the_onnx_backend(tmp_path):
    run_dir = make_run(tmp_path / "run", cell="lstm", bidirectional=True)
    runner = CliRunner()
    out = tmp_path / "exp" / "model.onnx"
    result = runner.invoke(cli, ["export", str(run_dir), "--format", "onnx", "--out", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "check passed" in result.output and out.is_file()

    texts = ["goal team", "bread", "the new cloud server today"]
    eager = runner.invoke(cli, ["predict", str(run_dir), *texts, "--json", "--device", "cpu"])
    for source in (str(out), str(run_dir)):
        onnx_run = runner.invoke(cli, ["predict", source, *texts, "--json", "--backend", "onnx"])
        assert onnx_run.exit_code == 0, onnx_run.output
        for got, want in zip(onnx_run.output.splitlines(), eager.output.splitlines(), strict=True):
            got, want = json.loads(got), json.loads(want)
            assert got["label"] == want["label"]
            assert got["probability"] == pytest.approx(want["probability"], abs=1e-4)

    wrong = runner.invoke(cli, ["predict", str(out), "goal", "--backend", "torchscript"])
    assert wrong.exit_code == 2
    assert "is an ONNX export, but --backend torchscript was given" in wrong.output


def test_cli_export_defaults_to_the_run_folder_and_torchscript_works(tmp_path):
    run_dir = make_run(tmp_path / "run", cell="rnn", bidirectional=True)
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "torchscript", "--check"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "export" / "model.pt").is_file()
    ts = CliRunner().invoke(cli, ["predict", str(run_dir / "export"), "goal", "--backend", "torchscript"])
    assert ts.exit_code == 0 and ts.output.endswith("\tgoal\n")


def test_cli_export_check_failure_exits_1_with_one_line(tmp_path, monkeypatch):
    import rnnkit.export

    run_dir = make_run(tmp_path / "run")
    monkeypatch.setattr(rnnkit.export, "check_export", lambda *args, **kwargs: 0.25)
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--out", str(tmp_path / "m.onnx"), "--check"])
    assert result.exit_code == 1
    assert result.output.startswith("rnnkit: error: ")
    assert "differs from eager PyTorch by 0.25" in result.output
    assert embedded(tmp_path / "m.onnx")["check"]["passed"] is False


def test_cli_export_of_a_missing_run_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert "run folder not found" in result.output


# --- exports that describe themselves (issue 15) ------------------------------------------------------
def make_other_run(folder):
    """A run with other labels and a smaller vocabulary than make_run's."""
    from rnnkit.data import TextEncoder

    encoder = TextEncoder.fit(["alpha beta gamma"])
    cfg = resolve_config(overrides={"cell": "gru", "embed_dim": 4, "hidden_dim": 3})
    model = TextClassifier.from_config(cfg.model, len(encoder), 2, pad_id=encoder.vocab.pad_id)
    run = RunFolder(folder)
    run.write_json(CONFIG, {"rnnkit_version": __version__, "task": "classify", "config": cfg.to_dict()})
    run.write_json(VOCAB, encoder.to_dict())
    run.write_json(LABELS, ["neg", "pos"])
    run.save_weights(model.state_dict())
    return folder


def test_two_exports_in_one_folder_keep_their_own_vocabulary_and_labels(tmp_path):
    """Regression: the second export overwrote the first's vocab.json/labels.json, which then labelled every
    text wrongly with exit code 0 (or crashed in ONNX Runtime)."""
    a, b = make_run(tmp_path / "a"), make_other_run(tmp_path / "b")
    runner = CliRunner()
    for run_dir, name in ((a, "model.onnx"), (b, "model3.onnx")):
        result = runner.invoke(cli, ["export", str(run_dir), "--out", str(tmp_path / "exp" / name)])
        assert result.exit_code == 0, result.output
    eager = rnnkit.load(a, device="cpu").predict(["goal team"])[0]
    got = runner.invoke(cli, ["predict", str(tmp_path / "exp" / "model.onnx"), "goal team", "--json"])
    assert got.exit_code == 0, got.output  # no --backend needed: the format is detected
    got = json.loads(got.output)
    assert got["label"] == eager["label"]
    assert got["probability"] == pytest.approx(eager["probability"], abs=1e-4)
    other = runner.invoke(cli, ["predict", str(tmp_path / "exp" / "model3.onnx"), "x", "--json"])
    other = json.loads(other.output)
    assert set(other["probs"]) == {"neg", "pos"}
    assert rnnkit.load(tmp_path / "exp" / "model3.onnx").labels == ["neg", "pos"]  # load() takes exports too
    two = runner.invoke(cli, ["predict", str(tmp_path / "exp"), "x"])
    assert two.exit_code == 2 and "2 model files (model.onnx, model3.onnx)" in two.output


def test_a_changed_vocabulary_or_mismatched_labels_are_one_line_exit_2(tmp_path):
    from rnnkit.export import embed_onnx_metadata

    path = tmp_path / "m.onnx"
    export_model(make_run(tmp_path / "run"), path)
    info = embedded(path)
    info["vocab"]["vocab"] = "edited"  # changed without the checksum
    tampered = tmp_path / "tampered.onnx"
    tampered.write_bytes(embed_onnx_metadata(path.read_bytes(), info))
    result = CliRunner().invoke(cli, ["predict", str(tampered), "goal"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "do not match the checksum" in result.output

    from rnnkit.export import _fingerprint

    info = embedded(path)
    info["labels"] = info["labels"] + ["extra"]
    info["sha256"] = _fingerprint(info["vocab"], info["labels"])
    relabelled = tmp_path / "relabelled.onnx"
    relabelled.write_bytes(embed_onnx_metadata(path.read_bytes(), info))
    result = CliRunner().invoke(cli, ["predict", str(relabelled), "goal"])
    assert result.exit_code == 2 and "gives 3 probabilities, but its labels name 4 classes" in result.output


def test_the_format_is_checked_before_any_loader_runs(tmp_path, monkeypatch):
    import rnnkit.export

    path = tmp_path / "m.pt"
    export_model(make_run(tmp_path / "run"), path, format="torchscript")

    def never(*args, **kwargs):
        raise AssertionError("a loader ran")

    monkeypatch.setitem(rnnkit.export._RUNNERS, "onnx", never)
    monkeypatch.setitem(rnnkit.export._RUNNERS, "torchscript", never)
    result = CliRunner().invoke(cli, ["predict", str(path), "goal", "--backend", "onnx"])
    assert result.exit_code == 2
    assert result.output == f"rnnkit: error: {path} is a TorchScript export, but --backend onnx was given\n"


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04broken zip"])
def test_a_corrupt_export_is_one_line_exit_2(tmp_path, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["predict", str(path), "goal"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("rnnkit: error: ") and result.output.count("\n") == 1


def test_an_old_export_folder_is_refused_with_how_to_fix_it(tmp_path):
    folder = tmp_path / "exp"
    export_model(make_run(tmp_path / "run"), folder / "model.onnx")
    (folder / "export.json").write_text('{"format": "onnx", "file": "../../etc/passwd"}')
    result = CliRunner().invoke(cli, ["predict", str(folder), "goal"])
    assert result.exit_code == 2 and "export the run again" in result.output
