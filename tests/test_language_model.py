"""The language model and its training: tying, state carrying, stream batches, truncated BPTT, resume."""

import math

import pytest
import torch

import rnnkit
from rnnkit.config import TrainConfig, resolve_config
from rnnkit.data import TextEncoder
from rnnkit.errors import ConfigError, DataError
from rnnkit.models.language_model import LanguageModel
from rnnkit.training.checkpoint import RunFolder
from rnnkit.training.lm import (
    LanguageModelTask,
    StreamBatches,
    eval_batches,
    lm_metrics,
    split_corpus,
    train_batches,
)
from rnnkit.training.loop import Trainer

TEXT = "the cat sat on the mat.\nthe dog ate the log.\n" * 30


# --- the model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shapes_and_state(cell):
    model = LanguageModel(20, cell=cell, embed_dim=6, hidden_dim=10, layers=2)
    logits, state = model(torch.randint(0, 20, (3, 7)))
    assert logits.shape == (3, 7, 20)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (2, 3, 10)


def test_weights_are_tied_only_when_sizes_match():
    tied = LanguageModel(20, embed_dim=8, hidden_dim=8)
    untied = LanguageModel(20, embed_dim=8, hidden_dim=12)
    assert tied.tied and not untied.tied
    assert "decoder.weight" not in tied.state_dict() and "output_bias" in tied.state_dict()
    assert untied.state_dict()["decoder.weight"].shape == (20, 12)
    # the output layer really is the embedding: changing one row of the table changes that token's logit
    ids = torch.tensor([[1, 2]])
    before, _ = tied(ids)
    with torch.no_grad():
        tied.embedding.weight[5] += 1.0
    after, _ = tied(ids)
    changed = (after - before).abs().amax(dim=(0, 1)) > 0
    assert changed[5] and not changed[6]
    assert LanguageModel(20, embed_dim=8, hidden_dim=8, tie_weights=False).tied is False


def test_tied_weights_save_and_load(tmp_path):
    """safetensors refuses tensors that share memory; the tied model must still save and load."""
    model = LanguageModel(20, embed_dim=8, hidden_dim=8)
    run = RunFolder(tmp_path)
    run.save_weights(model.state_dict())
    fresh = LanguageModel(20, embed_dim=8, hidden_dim=8)
    fresh.load_state_dict(run.load_weights())
    ids = torch.tensor([[3, 4, 5]])
    assert torch.equal(fresh(ids)[0], model(ids)[0])


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="cell must be one of rnn, lstm, gru, got 'transformer'"):
        LanguageModel(10, cell="transformer")
    with pytest.raises(ValueError, match="≥ 1"):
        LanguageModel(0)
    with pytest.raises(ValueError, match=r"ids must be 2-D \[N, L\], got shape \[5\]"):
        LanguageModel(10)(torch.arange(5))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carrying_the_state_equals_running_the_whole_sequence(cell):
    """Chunks with the state carried (training) and one token at a time (generation) give the same logits."""
    torch.manual_seed(0)
    model = LanguageModel(30, cell=cell, embed_dim=8, hidden_dim=12, layers=2).eval()
    ids = torch.randint(0, 30, (4, 23))
    whole, whole_state = model(ids)

    pieces, state = [], None
    for chunk in ids.split(5, dim=1):
        logits, state = model(chunk, state)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, whole_state, atol=1e-5, rtol=1e-5)  # h_n, or (h_n, c_n)

    steps, state = [], None
    for t in range(ids.shape[1]):
        logits, state = model(ids[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, atol=1e-5, rtol=1e-5)

    fresh, _ = model(ids[:, 5:])  # without the carried state the logits differ: the test can fail
    assert not torch.allclose(fresh, whole[:, 5:], atol=1e-3)


# --- stream batches --------------------------------------------------------------------------------


def test_stream_batches_walk_contiguous_streams():
    ids = torch.arange(23)  # 23 // 3 = 7 tokens per stream; the last 2 are dropped
    batches = StreamBatches(ids, streams=3, bptt=4)
    assert batches.data.tolist() == [list(range(0, 7)), list(range(7, 14)), list(range(14, 21))]
    chunks = list(batches)
    assert len(batches) == len(chunks) == 2  # (7 - 1) / 4 → 2 chunks: 4 steps, then 2
    assert [x.shape[1] for x, _ in chunks] == [4, 2]
    inputs = torch.cat([x for x, _ in chunks], dim=1)
    targets = torch.cat([y for _, y in chunks], dim=1)
    assert torch.equal(inputs, batches.data[:, :-1])
    assert torch.equal(targets, batches.data[:, 1:])
    assert batches.tokens == targets.numel() == 18


def test_stream_batches_carry_matches_each_stream_run_whole():
    """Row i of each chunk continues row i of the one before, so the carried state is the right one."""
    torch.manual_seed(1)
    model = LanguageModel(40, cell="gru", embed_dim=8, hidden_dim=8).eval()
    batches = StreamBatches(torch.randint(0, 40, (300,)), streams=4, bptt=9)
    state, pieces = None, []
    for x, _ in batches:
        logits, state = model(x, state)
        pieces.append(logits)
    whole, _ = model(batches.data[:, :-1])
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)


def test_stream_batch_errors():
    with pytest.raises(ValueError, match=r"10 tokens cannot make 6 streams .*need ≥ 12 tokens"):
        StreamBatches(torch.arange(10), streams=6, bptt=3)
    with pytest.raises(ValueError, match="streams and bptt must be ≥ 1, got 2 and 0"):
        StreamBatches(torch.arange(10), streams=2, bptt=0)
    with pytest.raises(DataError, match=r"small.txt: 10 tokens are too few .*\(at most 5\)"):
        train_batches(list(range(10)), 8, 4, path="small.txt")
    assert eval_batches(list(range(10)), 8, 4).streams == 5  # evaluation shrinks the streams instead
    with pytest.raises(DataError, match="at least 2 tokens to evaluate, got 1"):
        eval_batches([3], 8, 4)


def test_split_corpus_holds_out_the_tail_at_a_line_start():
    train, valid = split_corpus(TEXT, 0.1)
    assert train + valid == TEXT
    assert train.endswith("\n") and len(valid) >= 0.1 * len(TEXT)
    assert split_corpus("abcdefghij", 0.3) == ("abcdefg", "hij")  # no line break: cut where it falls
    with pytest.raises(DataError, match="too short"):
        split_corpus("a", 0.5)


def test_metrics():
    m = lm_metrics(1.2, char_level=True)
    assert m["perplexity"] == pytest.approx(math.exp(1.2))
    assert m["bpc"] == pytest.approx(1.2 / math.log(2))
    assert "bpc" not in lm_metrics(1.2, char_level=False)
    assert lm_metrics(1000.0, char_level=False)["perplexity"] == math.inf


# --- training: truncated BPTT with the Trainer -----------------------------------------------------


class SeenCarry:
    """Wraps the task and records whether each training batch got a carried state, and if it was detached."""

    def __init__(self, task):
        self.task, self.monitor, self.higher_is_better = task, task.monitor, task.higher_is_better
        self.seen = []

    def loss(self, model, batch, carry):
        state = carry[0] if isinstance(carry, tuple) else carry
        self.seen.append(None if carry is None else state.requires_grad)
        return self.task.loss(model, batch, carry)

    def evaluate(self, model, batches):
        return self.task.evaluate(model, batches)


def test_tiny_char_model_learns_with_truncated_bptt():
    train_text, valid_text = split_corpus(TEXT, 0.2)
    encoder = TextEncoder.fit([train_text], tokenizer="char", lm=True)
    torch.manual_seed(0)
    model = LanguageModel(len(encoder), cell="lstm", embed_dim=16, hidden_dim=32)
    task = SeenCarry(LanguageModelTask("cpu", char_level=True))
    train = train_batches(encoder.encode(train_text), 4, 16)
    valid = eval_batches(encoder.encode(valid_text), 4, 16)
    cfg = TrainConfig(epochs=4, lr=1e-2, eval_every=5, device="cpu", threads=1, seed=0)
    trainer = Trainer(model, task, train, valid, config=cfg)
    with torch.no_grad():
        first_loss = trainer.task.evaluate(model.eval(), valid)["loss"]
    model.train()
    result = trainer.fit()

    assert result.best_metrics["loss"] < 0.6 * first_loss  # it learned
    assert result.best_metrics["bpc"] == pytest.approx(result.best_metrics["loss"] / math.log(2))
    records = trainer.state.history
    assert {"valid_loss", "valid_perplexity", "valid_bpc"} <= set(records[0])
    # the state is carried within an epoch (detached by the Trainer) and starts fresh at each epoch
    per_epoch = len(train)
    assert task.seen[0] is None and task.seen[per_epoch] is None
    assert task.seen[1:per_epoch] == [False] * (per_epoch - 1)


def _tiny_lm_settings(tmp_path, **more):
    text = tmp_path / "corpus.txt"
    text.write_text(TEXT, encoding="utf-8")
    settings = dict(task="lm", data=str(text), hidden_dim=16, embed_dim=8, layers=1, batch_size=4, bptt=12,
                    lr=1e-2, max_steps=8, eval_every=4, device="cpu", threads=1, seed=3)  # fmt: skip
    settings.update(more)
    return settings


def test_resume_continues_the_same_stream(tmp_path):
    """Stopped half-way and resumed, a run ends with an uninterrupted run's weights (the carry is saved)."""

    class StopAt:
        def on_step_end(self, trainer, logs):
            if logs["step"] == 5:
                trainer.request_stop("test")

    whole = rnnkit.train(out=tmp_path / "whole", **_tiny_lm_settings(tmp_path))
    part = tmp_path / "part"
    rnnkit.train(out=part, callbacks=[StopAt()], **_tiny_lm_settings(tmp_path))
    assert RunFolder(part).load_trainer_state()["carry"] is not None
    rnnkit.train(out=part, resume=True, **_tiny_lm_settings(tmp_path))
    a, b = RunFolder(whole).load_weights(), RunFolder(part).load_weights()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-6)


# --- settings --------------------------------------------------------------------------------------


def test_task_lm_starts_from_the_char_lm_preset():
    cfg = resolve_config(overrides={"task": "lm"})
    assert (cfg.preset, cfg.data.data, cfg.data.tokenizer) == ("char-lm", "shakespeare", "char")
    assert resolve_config(overrides={"task": "lm", "bptt": 50}).train.bptt == 50
    word = resolve_config(preset="word-lm").model
    assert word.embed_dim == word.hidden_dim  # so the word model ties its weights
    assert resolve_config().preset == "default"  # classification starts from the default recipe
    assert resolve_config(preset="none").preset is None  # … unless told to keep the plain defaults


def test_lm_setting_errors():
    with pytest.raises(ConfigError, match=r"bptt \(--bptt\) must be ≥ 1, got 0"):
        resolve_config(overrides={"task": "lm", "bptt": 0})
    with pytest.raises(ConfigError, match="--bidirectional does not apply to a language model"):
        resolve_config(overrides={"task": "lm", "bidirectional": True})
