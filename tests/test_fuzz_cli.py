# ruff: noqa: E501  (tables of test cases read best one case per line)
"""Fuzz the command line with bad input: every refusal is exit code 2 and one line, and the run already in
``--out`` comes through byte-identical (issue 16).

The cases are the kinds a careless or hostile user tries: numbers out of range or not finite, sizes that
cannot be allocated, unknown choices, bad data files, output locations that cannot be written. Each case
calls ``rnnkit.cli`` in this process (no subprocess), so hundreds of them run in seconds.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rnnkit
from fuzz_helpers import TINY, copy_run, invoke, refused, restore, snapshot
from tiny_text import texts, write_csv


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_csv(folder / "train.csv", texts(60, seed=1))
    (folder / "corpus.txt").write_text("to be or not to be, that is the question\n" * 30, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, data) -> Path:
    """A trained run, copied into ``runs/good``: every failed train must leave it byte-identical."""
    out = tmp_path_factory.mktemp("runs") / "good"
    rnnkit.train(data / "train.csv", preset="lesson-rnn", out=out, **TINY)
    return out


@pytest.fixture(scope="module")
def bad_files(data) -> dict[str, Path]:
    """Broken data files, one per kind of damage."""
    d = data
    files = {
        "missing": d / "nope.csv",
        "empty": d / "empty.csv",
        "suffix": d / "train.xlsx",
        "unterminated": d / "unterminated.csv",
        "huge_field": d / "huge.csv",
        "nul": d / "nul.csv",
        "deep": d / "deep.jsonl",
        "not_json": d / "bad.jsonl",
        "no_text_col": d / "nocol.csv",
        "one_label": d / "onelabel.csv",
        "columns": d / "columns.csv",
        "folder": d / "emptyfolder",
        "float_label": d / "floatlabel.jsonl",
        "gz": d / "broken.csv.gz",
    }
    files["empty"].write_bytes(b"")
    files["suffix"].write_text("text,label\na,b\n")
    files["unterminated"].write_text('text,label\ngoal match,sport\nbread soup,"food\ncode chip,tech\n')
    files["huge_field"].write_text('text,label\n"' + "word " * 300_000 + '",sport\ncode,tech\n')
    files["nul"].write_bytes(b"text,label\ngoal\x00match,sport\ncode,tech\n")
    files["deep"].write_text('{"text": ' + "[" * 50_000 + "]" * 50_000 + ', "label": "a"}\n')
    files["not_json"].write_text('{"text": "a", "label": "b"}\n{"text": \n')
    files["no_text_col"].write_text("body,label\ngoal,sport\ncode,tech\n")
    files["one_label"].write_text("text,label\ngoal,sport\nmatch,sport\n")
    files["columns"].write_text("text,label\ngoal,sport\ncode,tech,extra\n")
    files["folder"].mkdir(exist_ok=True)
    files["float_label"].write_text('{"text": "goal", "label": 1.5}\n')
    files["gz"].write_bytes(b"\x1f\x8b\x08\x00garbage")
    return files


def check_train_refused(args: list[str], run: Path) -> None:
    check_refused(["train", "--out", run, *args], run)


# --- numbers -------------------------------------------------------------------------------------------
INT_OPTIONS = ["--embed-dim", "--hidden-dim", "--layers", "--epochs", "--max-steps", "--batch-size", "--bptt",
               "--min-freq", "--max-vocab", "--max-len", "--eval-every", "--patience", "--threads", "--seed"]  # fmt: skip
FLOAT_OPTIONS = ["--lr", "--weight-decay", "--dropout", "--embed-dropout", "--embed-mean", "--valid-fraction",
                 "--time-budget", "--warmup", "--clip-norm"]  # fmt: skip
BAD_INTS = ["-1", "1e9", "abc", "", str(2**64), "9" * 5000, "1000000000000"]
BAD_FLOATS = ["nan", "inf", "-inf", "-1e400", "1e400", "abc", "1e308", ""]


def _bad_int(option: str, value: str) -> bool:
    """Whether ``value`` must be refused for ``option`` (a few are in range for some options)."""
    if value == "-1":
        return True
    return not (value == "1000000000000" and option in ())


@pytest.mark.parametrize("option", INT_OPTIONS)
@pytest.mark.parametrize("value", BAD_INTS)
def test_train_refuses_bad_integers(option, value, data, good_run):
    if option in ("--eval-every", "--patience") and value == "-1":
        pass  # still bad: must be ≥ 0
    check_train_refused(["--data", data / "train.csv", option, value], good_run)


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", BAD_FLOATS)
def test_train_refuses_bad_floats(option, value, data, good_run):
    if option == "--embed-mean" and value == "1e308":
        value = "1e300"
    check_train_refused(["--data", data / "train.csv", option, value], good_run)


ZERO_IS_BAD = ["--embed-dim", "--hidden-dim", "--layers", "--max-steps", "--batch-size", "--bptt",
               "--min-freq", "--max-len", "--threads", "--lr", "--time-budget", "--clip-norm"]  # fmt: skip


@pytest.mark.parametrize("option", ZERO_IS_BAD)
def test_train_refuses_zero(option, data, good_run):
    check_train_refused(["--data", data / "train.csv", option, "0"], good_run)


@pytest.mark.parametrize(
    "args",
    [
        ["--hidden-dim", "65536", "--embed-dim", "65536"],  # in range, but terabytes of parameters
        ["--hidden-dim", "65536", "--layers", "64"],
        ["--hidden-dim", "1000000000"],
        ["--layers", "1000000000"],
        ["--max-vocab", "2"],
        ["--task", "lm", "--max-vocab", "3"],
        ["--dropout", "1"],
        ["--valid-fraction", "1"],
        ["--warmup", "1"],
        ["--seed", str(2**32)],
        ["--device", "meta"],
        ["--device", "cuda:abc"],
        ["--device", "cpu\x00"],
        ["--device", "mps:0"],
        ["--device", "cuda:99"],
        ["--cell", "transformer"],
        ["--pool", "median"],
        ["--schedule", "exp"],
        ["--task", "regress"],
        ["--preset", "nope"],
        ["--tokenizer", "spacy"],
        ["--bidirectional", "--task", "lm"],
        ["--vectors", "/nonexistent/vectors.txt"],
        ["--text-col", "body"],
        ["--label-col", "category"],
        ["--nproc", "0"],
        ["--nproc", "-3"],
        ["--unknown-option", "1"],
        ["--hidden-dim"],
        ["extra-argument"],
        ["--resume", "--hidden-dim", "16"],
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_train_refuses_bad_settings(args, data, good_run):
    check_train_refused(["--data", data / "train.csv", *args], good_run)


@pytest.mark.parametrize(
    "kind",
    ["missing", "empty", "suffix", "unterminated", "huge_field", "nul", "deep", "not_json", "no_text_col",
     "one_label", "columns", "folder", "float_label", "gz"],
)  # fmt: skip
def test_train_refuses_bad_data(kind, bad_files, good_run, data):
    check_train_refused(["--data", bad_files[kind]], good_run)
    if kind != "one_label":  # one label is enough for validation data
        check_train_refused(["--data", data / "train.csv", "--valid", bad_files[kind]], good_run)


@pytest.mark.parametrize("kind", ["missing", "empty", "nul", "folder", "gz"])
def test_train_lm_refuses_bad_corpus(kind, bad_files, good_run):
    check_train_refused(["--task", "lm", "--data", bad_files[kind], *_tiny_args()], good_run)


def _tiny_args() -> list[str]:
    return ["--embed-dim", "8", "--hidden-dim", "8", "--epochs", "1", "--batch-size", "4", "--bptt", "8"]


def test_train_refuses_bad_out(data, good_run, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for out in [a_file, a_file / "under", "/proc/rnnkit-run", "/dev/null/run"]:
        result = invoke(["train", "--data", data / "train.csv", "--out", out, *_tiny_args()])
        assert refused(result) is None, f"--out {out}: {refused(result)}"
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[1, 2, 3]",
        '{"hidden_dim": "big"}',
        '{"hidden_dim": 1e9}',
        '{"model": {"layers": 1000000000}}',
        '{"model": 5}',
        '{"model": {"nope": 1}}',
        '{"lr": NaN}',
        '{"lr": Infinity}',
        '{"seed": -1}',
        '{"seed": 1e23}',
        '{"device": "meta"}',
        '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "[" * 100_000,
        '{"task": "lm", "max_vocab": 3}',
        '{"data": "x\\u0000y"}',
        '{"label": ' + "9" * 5000 + "}",
    ],
    ids=lambda c: c[:30],
)
def test_train_refuses_bad_config_file(content, data, good_run, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(content, encoding="utf-8")
    check_train_refused(["--data", data / "train.csv", "--config", config], good_run)


def test_train_refuses_missing_or_binary_config(data, good_run, tmp_path):
    binary = tmp_path / "config.json"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    check_train_refused(["--data", data / "train.csv", "--config", binary], good_run)
    check_train_refused(["--data", data / "train.csv", "--config", tmp_path / "missing.json"], good_run)
    check_train_refused(["--data", data / "train.csv", "--config", tmp_path], good_run)


# --- Hypothesis: any value of the wrong kind for any option -------------------------------------------------
_NOT_INT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(max_value=-1).map(str),
    st.integers(min_value=2**40).map(str),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
    ).filter(lambda s: not s.strip().lstrip("+").isdigit()),
)
_NOT_FLOAT = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "-Infinity", "1e999", "-1e999"]),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False).map(repr),
    st.floats(min_value=1e13, allow_infinity=False).map(repr),
    st.text(alphabet="abcxyz!@# ", min_size=1, max_size=8),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(option=st.sampled_from(INT_OPTIONS), value=_NOT_INT)
def test_train_fuzz_integers(option, value, data, good_run):
    check_train_refused(["--data", data / "train.csv", option, value], good_run)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(option=st.sampled_from(FLOAT_OPTIONS), value=_NOT_FLOAT)
def test_train_fuzz_floats(option, value, data, good_run):
    if option == "--embed-mean":  # the one float setting that may be negative: -1000 … 1000 is valid
        with contextlib.suppress(ValueError):
            assume(not -1000 <= float(value) <= 1000)
    check_train_refused(["--data", data / "train.csv", option, value], good_run)


# --- the other commands' options ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, data) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lm"
    rnnkit.train(
        data / "corpus.txt", task="lm", out=out, tokenizer="char", layers=1, batch_size=4, bptt=8,
        eval_every=0, **{k: v for k, v in TINY.items() if k != "batch_size"},
    )  # fmt: skip
    return out


def check_refused(args: list[str], *runs: Path, input: str | None = None) -> None:
    """``rnnkit ARGS`` is refused (exit 2, one line) and leaves every run in ``runs`` byte-identical (a run
    it changed is put back, so that one failure does not spoil the cases after it)."""
    before = [snapshot(r) for r in runs]
    result = invoke(args, input=input)
    after = [snapshot(r) for r in runs]
    for run, old, new in zip(runs, before, after, strict=True):
        if old != new:
            restore(run, old)
    problem = refused(result)
    assert problem is None, f"rnnkit {' '.join(map(str, args))[:200]}: {problem}"
    assert after == before, f"rnnkit {' '.join(map(str, args))[:200]} changed a run"


@pytest.mark.parametrize(
    "args",
    [
        ["--length", "0"], ["--length", "-5"], ["--length", "1e9"], ["--length", "abc"],
        ["--length", "1000000000000"],
        ["--temperature", "nan"], ["--temperature", "inf"], ["--temperature", "-1"], ["--temperature", "1e309"],
        ["--top-p", "0"], ["--top-p", "1.5"], ["--top-p", "nan"], ["--top-p", "-inf"],
        ["--top-k", "0"], ["--top-k", "-1"], ["--top-k", "x"],
        ["--seed", "-1"], ["--seed", "1e23"], ["--seed", str(2**64)], ["--seed", "abc"],
        ["--device", "meta"], ["--device", "cuda:x"], ["--length", str(10**7)], ["--prime", "a\udcffb"],
        ["--prime", "\ud800"],
    ],
    ids=lambda a: " ".join(a)[:30],
)  # fmt: skip
def test_generate_refuses_bad_options(args, lm_run):
    check_refused(["generate", lm_run, "--length", "5", *args], lm_run)


@pytest.mark.parametrize(
    "args",
    [
        ["--temperature", "1e308"], ["--temperature", "1e-320"], ["--temperature", "1e-45"],
        ["--top-p", "1e-300"], ["--top-p", "5e-324"], ["--top-k", str(2**70)], ["--seed", str(2**64 - 1)],
        ["--prime", "a\x00b"], ["--temperature", "1e308", "--top-p", "1e-300", "--top-k", "1"],
    ],
    ids=lambda a: " ".join(a)[:30],
)  # fmt: skip
def test_generate_accepts_extreme_but_valid_options(args, lm_run):
    """Extreme values in range are not errors: they generate (issue 16: 1e308 and 1e-300 crashed)."""
    result = invoke(["generate", lm_run, "--length", "5", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), refused(result)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--top-k", "0"], ["--top-k", "-2"], ["--top-k", "abc"], ["--device", "meta"], ["--device", "tpu"],
        ["--backend", "tensorflow"], ["--file", "/nonexistent/texts.txt"], [], ["--json", "--top-k", "1e3"],
    ],
    ids=lambda a: " ".join(a)[:30] or "no-texts",
)  # fmt: skip
def test_predict_refuses_bad_options(args, good_run):
    texts_given = [] if args == [] or "--file" in args else ["goal match"]
    check_refused(["predict", good_run, *texts_given, *args], good_run)


@pytest.mark.parametrize(
    "args",
    [
        ["--data", "/nonexistent.csv"], ["--device", "meta"], [], ["--data", "x.xlsx"],
        ["--data", "ag_news:nosuchsplit"], ["--data", "nosuchdataset"],
    ],
    ids=lambda a: " ".join(a)[:30] or "no-data",
)  # fmt: skip
def test_eval_refuses_bad_options(args, good_run):
    check_refused(["eval", good_run, *args], good_run)


@pytest.mark.parametrize("kind", ["unterminated", "huge_field", "nul", "deep", "not_json", "float_label"])
def test_eval_refuses_bad_data(kind, bad_files, good_run):
    check_refused(["eval", good_run, "--data", bad_files[kind]], good_run)


def test_commands_refuse_the_wrong_kind_of_run(good_run, lm_run, data):
    check_refused(["generate", good_run, "--length", "3"], good_run)
    check_refused(["predict", lm_run, "hello"], lm_run)
    check_refused(["eval", good_run, "--data", data / "corpus.txt"], good_run)


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "0"], ["--port", "70000"], ["--port", "-1"], ["--port", "abc"], ["--port", "65536"],
        ["--max-wait-ms", "nan"], ["--max-wait-ms", "inf"], ["--max-wait-ms", "-1"], ["--max-wait-ms", "1e300"],
        ["--graceful-timeout", "nan"], ["--graceful-timeout", "inf"], ["--graceful-timeout", "-5"],
        ["--max-batch", "0"], ["--max-texts", "-1"], ["--max-chars", "0"], ["--max-body-bytes", "0"],
        ["--max-generate-length", "0"], ["--max-concurrent-jobs", "0"], ["--threads", "0"],
        ["--threads", "-4"], ["--host", ""], ["--host", "not a host name"], ["--host", "a\x00b"],
        ["--device", "meta"], ["--backend", "tensorflow"], ["--max-batch", str(2**70)],
    ],
    ids=lambda a: " ".join(a)[:30],
)  # fmt: skip
def test_serve_refuses_bad_options(args, good_run, monkeypatch):
    import rnnkit.serve.app as app

    def started(*a, **k):
        raise AssertionError("the server started with bad options")

    monkeypatch.setattr(app, "serve", started)
    check_refused(["serve", good_run, *args], good_run)


@pytest.mark.parametrize(
    "args",
    [
        ["--layer", "99"], ["--layer", "-1"], ["--direction", "sideways"], ["--state", "zz"],
        ["--window", "abc"], ["--window", "-1"], ["--pattern", "not"], ["--data", "x.csv"],
        ["--find-units"], ["--top", "0"], ["--max-texts", "0"], ["--device", "meta"],
    ],
    ids=lambda a: " ".join(a)[:30],
)  # fmt: skip
def test_inspect_refuses_bad_options(args, good_run, tmp_path):
    report = tmp_path / "report.html"
    check_refused(
        ["inspect", good_run, "goal match", "--out", report, "--png", tmp_path / "h.png", *args], good_run
    )


@pytest.mark.parametrize(
    "args",
    [["--format", "keras"], ["--out", "/proc/x/model.onnx"], ["--check-file", "/nonexistent.txt"]],
    ids=lambda a: " ".join(a)[:30],
)
def test_export_refuses_bad_options(args, good_run):
    check_refused(["export", good_run, "--format", "torchscript", *args], good_run)


def test_export_refuses_a_language_model(lm_run, tmp_path):
    check_refused(["export", lm_run, "--format", "torchscript", "--out", tmp_path / "m.pt"], lm_run)


# --- run folders as untrusted input --------------------------------------------------------------------------
def _set_config(run: Path, **changes) -> None:
    raw = json.loads((run / "config.json").read_text())
    for key, value in changes.items():
        for section in raw["config"].values():
            if isinstance(section, dict) and key in section:
                section[key] = value
        if key in raw:
            raw[key] = value
    (run / "config.json").write_text(json.dumps(raw))


def _safetensors(run: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(run / "model.safetensors")
    save_file(change(weights), run / "model.safetensors")


def _header_claims(run: Path, n: int) -> None:
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(n.to_bytes(8, "little") + data[8:])


TAMPERS = {
    "layers 1e9": lambda r: _set_config(r, layers=1_000_000_000),
    "hidden 1e9": lambda r: _set_config(r, hidden_dim=1_000_000_000),
    "hidden 65536": lambda r: _set_config(r, hidden_dim=65536, embed_dim=65536),
    "hidden string": lambda r: _set_config(r, hidden_dim="8"),
    "dropout nan": lambda r: (r / "config.json").write_text(
        (r / "config.json").read_text().replace('"dropout": 0.0', '"dropout": NaN')
    ),
    "task bogus": lambda r: _set_config(r, task="regress"),
    "cell bogus": lambda r: _set_config(r, cell="transformer"),
    "config not json": lambda r: (r / "config.json").write_text("{"),
    "config deep": lambda r: (r / "config.json").write_text("[" * 100_000 + "]" * 100_000),
    "config list": lambda r: (r / "config.json").write_text("[]"),
    "config missing": lambda r: (r / "config.json").unlink(),
    "weights missing": lambda r: (r / "model.safetensors").unlink(),
    "weights empty": lambda r: (r / "model.safetensors").write_bytes(b""),
    "weights garbage": lambda r: (r / "model.safetensors").write_bytes(b"\x00" * 64),
    "weights truncated": lambda r: (r / "model.safetensors").write_bytes(
        (r / "model.safetensors").read_bytes()[:-100]
    ),
    "weights header huge": lambda r: _header_claims(r, 2**62),
    "weights int8": lambda r: _safetensors(r, lambda w: {k: v.to(__import__("torch").int8) for k, v in w.items()}),
    "weights float64": lambda r: _safetensors(r, lambda w: {k: v.double() for k, v in w.items()}),
    "weights nan": lambda r: _safetensors(r, lambda w: {k: v * float("nan") for k, v in w.items()}),
    "weights inf": lambda r: _safetensors(r, lambda w: {k: v + float("inf") for k, v in w.items()}),
    "weights shape": lambda r: _safetensors(r, lambda w: {k: v[..., :1].contiguous() for k, v in w.items()}),
    "weights extra": lambda r: _safetensors(r, lambda w: {**w, "extra": w[next(iter(w))].clone()}),
    "weights missing tensor": lambda r: _safetensors(r, lambda w: dict(list(w.items())[1:])),
    "vocab not json": lambda r: (r / "vocab.json").write_text("nope"),
    "vocab empty list": lambda r: (r / "vocab.json").write_text('{"format": 1, "tokenizer": {"name": "basic_english"}, "vocab": {"lm": false, "itos": []}}'),
    "vocab wrong type": lambda r: (r / "vocab.json").write_text('{"format": 1, "tokenizer": 5, "vocab": 7}'),
    "vocab missing": lambda r: (r / "vocab.json").unlink(),
    "labels not list": lambda r: (r / "labels.json").write_text('{"a": 1}'),
    "labels duplicate": lambda r: (r / "labels.json").write_text('["food", "food", "tech"]'),
    "labels empty": lambda r: (r / "labels.json").write_text("[]"),
    "labels missing": lambda r: (r / "labels.json").unlink(),
}  # fmt: skip


@pytest.fixture(scope="module")
def tampered(good_run, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tampered")
    runs = {}
    for name, tamper in TAMPERS.items():
        run = copy_run(good_run, root / name.replace(" ", "_"))
        tamper(run)
        runs[name] = run
    return runs


@pytest.mark.parametrize("name", list(TAMPERS))
def test_predict_refuses_a_tampered_run(name, tampered):
    check_refused(["predict", tampered[name], "goal match", "--device", "cpu"], tampered[name])


@pytest.mark.parametrize("name", list(TAMPERS))
def test_eval_refuses_a_tampered_run(name, tampered, data):
    check_refused(["eval", tampered[name], "--data", data / "train.csv", "--device", "cpu"], tampered[name])


@pytest.mark.parametrize("name", ["layers 1e9", "hidden 65536", "weights int8", "weights nan", "config deep"])
def test_inspect_and_export_refuse_a_tampered_run(name, tampered, tmp_path):
    run = tampered[name]
    check_refused(["inspect", run, "goal match", "--out", tmp_path / "r.html"], run)
    check_refused(["export", run, "--format", "torchscript", "--out", tmp_path / "m.pt"], run)


@pytest.mark.parametrize(
    "name", ["layers 1e9", "hidden 65536", "weights int8", "weights nan", "weights shape"]
)
def test_generate_refuses_a_tampered_lm_run(name, lm_run, tmp_path):
    if name in ("weights int8", "weights nan", "weights shape", "layers 1e9", "hidden 65536"):
        run = copy_run(lm_run, tmp_path / "lm")
        TAMPERS[name](run)
        check_refused(["generate", run, "--length", "3"], run)


def test_resume_refuses_another_models_trainer_state(good_run, data, tmp_path):
    other = tmp_path / "other"
    rnnkit.train(data / "train.csv", preset="lesson-rnn", out=other, **{**TINY, "hidden_dim": 12})
    run = copy_run(good_run, tmp_path / "run")
    (run / "trainer_state.pt").write_bytes((other / "trainer_state.pt").read_bytes())
    check_refused(["train", "--out", run, "--resume"], run)
    (run / "trainer_state.pt").write_bytes(b"garbage")
    check_refused(["train", "--out", run, "--resume"], run)
    (run / "trainer_state.pt").unlink()
    check_refused(["train", "--out", run, "--resume"], run)


def test_predict_json_never_prints_nan(good_run, monkeypatch):
    """A model whose probabilities are NaN (say, overflowing logits) still prints strict JSON: null."""
    from rnnkit.pipelines.classify import ClassifierRun

    def nan_predict(self, texts, top_k=None, **options):
        return [{"text": t, "label": "food", "probability": float("nan"), "probs": {"food": float("nan")}} for t in texts]

    monkeypatch.setattr(ClassifierRun, "predict", nan_predict)
    result = invoke(["predict", good_run, "--text", "goal match", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert "NaN" not in line
    assert json.loads(line)["probability"] is None


def test_nproc_failure_is_one_line(data, tmp_path):
    """`--nproc 2` on bad data: every process fails alike, the terminal shows one line (not one per
    process plus torch's E/W lines)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "rnnkit", "train", "--data", str(data / "missing.csv"), "--out", str(tmp_path / "r"),
         "--nproc", "2", "--epochs", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"rnnkit: error: {data / 'missing.csv'}: no such file or folder"]


def test_serve_refuses_a_port_in_use_before_announcing(good_run, monkeypatch):
    import socket

    import rnnkit.serve.app as app

    monkeypatch.setattr(app, "serve", lambda *a, **k: (_ for _ in ()).throw(AssertionError("started")))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke(["serve", good_run, "--port", str(port)])
    assert refused(result) is None, refused(result)
    assert "serving" not in result.stderr and f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize("args", [["--max-len", "1"], ["predict-arg", "a\udcffb"], ["--text-col", "a\ud800"]],
                         ids=["max-len 1", "argv surrogate", "option surrogate"])  # fmt: skip
def test_found_by_probing(args, data, good_run):
    """Regression: --max-len 1 (the recurrent path reads a head and a tail) was a traceback; so were texts
    whose bytes are not UTF-8 (Python hands them over as lone surrogates)."""
    if args[0] == "predict-arg":
        check_refused(["predict", good_run, args[1]], good_run)
        check_refused(["inspect", good_run, args[1]], good_run)
    else:
        check_train_refused(["--data", data / "train.csv", *args], good_run)


def test_outputs_that_cannot_be_written_are_one_line(good_run, data, tmp_path):
    """Regression: inspect --out/--png and export --out under a file or in /proc were tracebacks."""
    under_a_file = data / "train.csv" / "x"
    for out in [under_a_file, "/proc/rnnkit-x"]:
        check_refused(["inspect", good_run, "goal match", "--out", f"{out}.html"], good_run)
        check_refused(["inspect", good_run, "goal", "--out", tmp_path / "r.html", "--png", f"{out}.png"], good_run)
        check_refused(["export", good_run, "--format", "torchscript", "--out", f"{out}.pt"], good_run)


def test_export_check_file_that_is_not_utf8(good_run, tmp_path):
    """Regression: --check-file with bytes that are not UTF-8 was a traceback; they read as U+FFFD."""
    texts_file = tmp_path / "texts.txt"
    texts_file.write_bytes(b"goal \xff\xfe match\n")
    result = invoke(["export", good_run, "--format", "torchscript", "--out", tmp_path / "m.pt", "--check-file", texts_file])
    assert result.exit_code == 0, refused(result) or result.stderr
