# ruff: noqa: E501, SIM105
"""Damaged and hostile data files, and the library-level guards behind the command line (issue 16).

A reader either returns examples or raises an :class:`~rnnkit.errors.InputError` naming the file and line —
never another exception, never an allocation the file's size does not justify.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data import readers
from rnnkit.data.readers import read_file, read_text
from rnnkit.errors import ConfigError, DataError, InputError, TrainingError
from rnnkit.limits import check_model_memory, check_out_dir, read_safetensors_header

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@FUZZ
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".txt"]))
def test_random_bytes_are_read_or_refused_cleanly(tmp_path_factory, content, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"data{suffix}"
    path.write_bytes(content)
    try:
        examples = read_file(path)
    except InputError:
        return
    assert all(isinstance(e.text, str) and e.text for e in examples)


@FUZZ
@given(
    rows=st.lists(
        st.lists(st.text(alphabet='ab ,"\n\r\t\\{}[]:x', max_size=8), min_size=1, max_size=3), max_size=6
    )
)
def test_random_tables_are_read_or_refused_cleanly(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("fuzz") / "data.csv"
    path.write_text("text,label\n" + "\n".join(",".join(r) for r in rows), encoding="utf-8")
    try:
        read_file(path)
    except InputError:
        pass


def test_unterminated_quote_is_reported_where_it_opened(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\ngoal,sport\nbread,"food\ncode,tech\nchip,tech\n')
    with pytest.raises(DataError, match=r"d.csv:3: unterminated quoted field"):
        read_file(path)


def test_a_closed_multiline_field_is_fine(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"two\nlines",sport\ncode,"tech"')  # no newline at the end
    assert [(e.text, e.label) for e in read_file(path)] == [("two\nlines", "sport"), ("code", "tech")]


def test_a_huge_field_is_an_error_not_an_allocation(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_FIELD_CHARS", 1000)
    monkeypatch.setattr(readers, "MAX_LINE_CHARS", 4000)
    path = tmp_path / "d.csv"
    path.write_text('text,label\ngoal,sport\n"' + "x " * 800 + '",tech\n')
    with pytest.raises(DataError, match=r"d.csv:3: a field longer than 1,000 characters"):
        read_file(path)
    path.write_text("text,label\n" + "x" * 5000 + ",sport\n")
    with pytest.raises(DataError, match=r"d.csv:2: line longer than 4,000 characters"):
        read_file(path)
    text = tmp_path / "t.txt"
    text.write_text("ok\n" + "y" * 2000 + "\n")
    with pytest.raises(DataError, match=r"t.txt:2: line longer than 1,000 characters"):
        read_file(text)


def test_nul_bytes_are_reported_with_their_line(tmp_path):
    for name, content in [("d.csv", b"text,label\na,b\nc\x00d,e\n"), ("d.jsonl", b'{"text": "a", "label": "b"}\n\x00\n'),
                          ("d.txt", b"one\ntwo\x00\n")]:  # fmt: skip
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match=rf"{name}:\d: NUL byte"):
            read_file(path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"line one\nline\x00two\n")
    with pytest.raises(DataError, match=r"corpus.txt:2: NUL byte"):
        read_text(corpus)


def test_invalid_utf8_is_reported_with_its_line(tmp_path, caplog):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\na,b\nc\xff\xfed,e\n")
    assert len(read_file(path)) == 2
    assert "d.csv:3: bytes that are not valid UTF-8" in caplog.text


def test_deep_json_is_refused_before_parsing(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "b"}\n{"text": ' + "[" * 200_000 + "]" * 200_000 + "}\n")
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON: nested deeper than 64"):
        read_file(path)
    path.write_text('{"text": "[[[[' + "[" * 100 + '", "label": "b"}\n')  # brackets inside a string are text
    assert read_file(path)[0].label == "b"


def test_integer_labels_of_any_length(tmp_path):
    path = tmp_path / "d.jsonl"
    big = "7" * 5000
    path.write_text(f'{{"text": "a", "label": {big}}}\n{{"text": "b", "label": 3}}\n')
    assert [e.label for e in read_file(path)] == [big, "3"]


# --- memory, output location, weights headers ---------------------------------------------------------------
def test_a_model_too_big_for_memory_is_refused_before_allocation():
    with pytest.raises(ConfigError, match=r"needs about .* to train, but this machine has .* available"):
        check_model_memory(10**13, training=True)
    check_model_memory(10**6, training=False)


def test_out_dir_checks_do_not_create_anything(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    for bad in [afile, afile / "sub", tmp_path / "a\x00b"]:
        with pytest.raises(ConfigError):
            check_out_dir(bad)
    check_out_dir(tmp_path / "new" / "deeper")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(
    "content",
    [b"", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", b"\xff" * 8 + b"{}", b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
     b"\x20\x00\x00\x00\x00\x00\x00\x00" + b'{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}'],
)  # fmt: skip
def test_damaged_safetensors_headers_are_run_folder_errors(tmp_path, content):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(InputError, match="corrupted weights file"):
        read_safetensors_header(path)


# --- a diverging run stops with one message and keeps its last good checkpoint --------------------------------
class _Diverging:
    monitor, higher_is_better = "loss", False

    def __init__(self, at_step: int):
        self.at_step, self.calls = at_step, 0

    def loss(self, model, batch, carry):
        self.calls += 1
        out = model(batch).pow(2).mean()
        if self.calls >= self.at_step:
            out = out * float("nan")
        return out, None, {"examples": len(batch)}

    def evaluate(self, model, batches):
        return {"loss": float(sum(model(b).pow(2).mean() for b in batches))}


def test_nan_loss_stops_training_naming_the_step_and_keeps_the_checkpoint(tmp_path):
    from rnnkit.config import TrainConfig
    from rnnkit.training.checkpoint import RunFolder
    from rnnkit.training.loop import Trainer

    torch.manual_seed(0)
    batches = [torch.randn(4, 3) for _ in range(4)]
    model = torch.nn.Linear(3, 1)
    cfg = TrainConfig(epochs=3, eval_every=2, lr=0.01, device="cpu", threads=1)
    trainer = Trainer(model, _Diverging(at_step=5), batches, batches[:1], config=cfg, out_dir=tmp_path)
    with pytest.raises(TrainingError, match=r"diverged at step 5: the loss is nan; the learning rate .* too high"):
        trainer.fit()
    saved = RunFolder(tmp_path).load_trainer_state()
    assert saved["state"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
