"""The model-agnostic Trainer: schedule, clipping, stopping rules, best weights, resume, reproducibility.

These tests use plain torch models and tasks written here, so they exercise the loop itself (the
classifier's end-to-end behaviour is in test_classifier.py / test_cli_classify.py).
"""

import math

import pytest
import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.data import BucketBatchSampler
from rnnkit.training.checkpoint import RunFolder
from rnnkit.training.loop import (
    BatchLoader,
    Task,
    Trainer,
    build_optimizers,
    clip_gradients,
    lr_factor,
)

# --- a tiny regression problem with dropout (so RNG state matters) and a carried hidden state -------


class Net(nn.Module):
    def __init__(self, sparse=False):
        super().__init__()
        self.embedding = nn.Embedding(12, 4, sparse=sparse)
        self.rnn = nn.GRU(4, 6, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(6, 1)

    def forward(self, ids, h0=None):
        output, h = self.rnn(self.drop(self.embedding(ids)), h0)
        return self.out(output[:, -1]).squeeze(-1), h


class CarryTask(Task):
    """Regression on the ids' mean; the GRU state is carried from batch to batch (like truncated BPTT)."""

    monitor, higher_is_better = "loss", False

    def __init__(self, use_carry=True):
        self.use_carry = use_carry
        self.carries_seen = []

    def loss(self, model, batch, carry):
        ids, target = batch
        self.carries_seen.append(carry is not None)
        if carry is not None:
            assert not carry.requires_grad  # the Trainer detached it
        pred, h = model(ids, carry if self.use_carry else None)
        loss = ((pred - target) ** 2).mean()
        return loss, (h if self.use_carry else None), {"examples": len(ids), "tokens": ids.numel()}

    def evaluate(self, model, batches):
        losses = [float(((model(ids)[0] - t) ** 2).mean()) for ids, t in batches]
        return {"loss": sum(losses) / len(losses)}


def make_data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 12, (n, 5), generator=g)
    return [(ids[i], ids[i].float().mean() / 6) for i in range(n)]


def collate_pairs(items):
    return torch.stack([i for i, _ in items]), torch.stack([t for _, t in items])


def loaders(seed=0):
    items = make_data()
    sampler = BucketBatchSampler([5] * len(items), 8, seed=seed, drop_last=True)
    train = BatchLoader(items, sampler, collate_pairs)
    valid = [collate_pairs(items[:16]), collate_pairs(items[16:32])]
    return train, valid


def fit(tmp_path=None, resume=False, callbacks=(), task=None, sparse=False, **cfg):
    torch.manual_seed(0)
    model = Net(sparse=sparse)
    train, valid = loaders()
    config = TrainConfig(**{"epochs": 3, "lr": 0.01, "device": "cpu", "threads": 1, "eval_every": 4, **cfg})
    trainer = Trainer(
        model, task or CarryTask(), train, valid, config=config, out_dir=tmp_path, callbacks=callbacks
    )
    result = trainer.fit(resume=resume)
    return trainer, result


class StopAt:
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, logs):
        if logs["step"] == self.step:
            trainer.request_stop("test interruption")


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- schedule, optimizers, clipping ------------------------------------------------------------------


def test_lr_factor_warmup_then_decay():
    assert lr_factor(0.0, "cosine", 0.1) == 0.0
    assert lr_factor(0.05, "cosine", 0.1) == pytest.approx(0.5)
    assert lr_factor(0.1, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(1.0, "cosine", 0.1) == pytest.approx(0.0)
    assert lr_factor(0.55, "linear", 0.1) == pytest.approx(0.5)
    assert lr_factor(0.7, "constant", 0.1) == 1.0
    with pytest.raises(ValueError, match="schedule must be"):
        lr_factor(0.5, "step", 0.0)


def test_sparse_embeddings_get_sparse_adam_and_no_decay():
    model = Net(sparse=True)
    opts = build_optimizers(model, TrainConfig(weight_decay=0.1))
    assert [type(o).__name__ for o in opts] == ["AdamW", "SparseAdam"]
    decayed = {id(p) for g in opts[0].param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.rnn.weight_ih_l0) in decayed
    assert id(model.rnn.bias_ih_l0) not in decayed
    assert all(id(p) != id(model.embedding.weight) for g in opts[0].param_groups for p in g["params"])


def test_clip_gradients_dense_and_sparse():
    emb = nn.Embedding(10, 3, sparse=True)
    lin = nn.Linear(3, 1)
    ids = torch.tensor([1, 1, 2])  # a repeated row: the sparse gradient must be coalesced for its norm
    lin(emb(ids)).sum().mul(100).backward()
    dense_norm = torch.cat(
        [emb.weight.grad.to_dense().flatten(), lin.weight.grad.flatten(), lin.bias.grad.flatten()]
    ).norm()
    params = [emb.weight, *lin.parameters()]
    norm = clip_gradients(params, max_norm=1.0)
    assert norm == pytest.approx(float(dense_norm), rel=1e-5)
    after = torch.cat(
        [emb.weight.grad.to_dense().flatten(), lin.weight.grad.flatten(), lin.bias.grad.flatten()]
    )
    assert float(after.norm()) == pytest.approx(1.0, rel=1e-4)


# --- the loop ----------------------------------------------------------------------------------------


def test_loss_falls_and_metrics_are_logged(tmp_path):
    trainer, result = fit(tmp_path)
    history = RunFolder(tmp_path).read_metrics()
    assert result.stop_reason == "epochs" and result.step == 15  # 3 epochs × 5 batches
    assert [r["step"] for r in history] == [4, 5, 8, 10, 12, 15]  # every 4 steps and at each epoch's end
    assert history[-1]["valid_loss"] < history[0]["valid_loss"]
    for key in ("epoch", "train_loss", "valid_loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"):
        assert key in history[0]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "trainer_state.pt").is_file()


def test_model_ends_with_best_weights():
    trainer, result = fit(lr=0.5, schedule="constant")  # a high rate makes late evaluations worse
    history = trainer.state.history
    best = min(history, key=lambda r: r["valid_loss"])
    assert result.best_metrics["loss"] == best["valid_loss"]
    trainer.model.eval()
    with torch.no_grad():
        now = trainer.task.evaluate(trainer.model, trainer.valid_batches)["loss"]
    assert now == pytest.approx(best["valid_loss"], rel=1e-6)


def test_max_steps_and_patience_and_requested_stop():
    _, result = fit(max_steps=7)
    assert (result.step, result.stop_reason) == (7, "max_steps")
    _, result = fit(lr=5.0, patience=1, eval_every=1, epochs=10)
    assert result.stop_reason == "early_stopping" and result.step < 50
    trainer, result = fit(callbacks=[StopAt(3)])
    assert (result.step, result.stop_reason) == (3, "test interruption")
    assert trainer.state.history[-1]["step"] == 3  # it still evaluated


def test_time_budget_stops_and_still_evaluates(tmp_path):
    trainer, result = fit(tmp_path, time_budget=1e-9, epochs=50)
    assert result.stop_reason == "time_budget" and result.step == 1
    assert RunFolder(tmp_path).read_metrics()[-1]["step"] == 1
    assert (tmp_path / "model.safetensors").is_file()


def test_schedule_spans_max_steps_and_lr_is_logged():
    seen = []

    class Lr:
        def on_step_end(self, trainer, logs):
            seen.append(logs["lr"])

    fit(max_steps=10, schedule="linear", warmup=0.2, lr=1.0, callbacks=[Lr()])
    assert seen[0] == 0.0 and seen[1] == pytest.approx(0.5) and seen[2] == pytest.approx(1.0)
    assert seen[-1] == pytest.approx(1.0 - 7 / 8)


def test_seeded_runs_are_identical():
    a, _ = fit()
    b, _ = fit()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("elapsed_s", "tokens_per_s")} for r in h]  # noqa: E731
    assert strip(a.state.history) == strip(b.state.history)


@pytest.mark.parametrize("stop_at", [3, 5, 11])  # mid-epoch, at an epoch's end, in the last epoch
def test_resume_equals_uninterrupted(tmp_path, stop_at):
    full, _ = fit(tmp_path / "full")
    task = CarryTask()
    fit(tmp_path / "cut", callbacks=[StopAt(stop_at)], task=task)
    resumed, result = fit(tmp_path / "cut", resume=True, task=task)
    assert result.step == 15 and result.stop_reason == "epochs"
    for (k, va), vb in zip(full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    keys = ("step", "epoch", "train_loss", "valid_loss", "lr", "grad_norm")
    pick = lambda h: [{k: r[k] for k in keys} for r in h]  # noqa: E731
    assert pick(RunFolder(tmp_path / "full").read_metrics()) == pick(
        RunFolder(tmp_path / "cut").read_metrics()
    )


def test_carry_is_reset_each_epoch_and_detached():
    task = CarryTask()
    fit(task=task, epochs=2, eval_every=0)
    assert task.carries_seen == [False, True, True, True, True] * 2


def test_resume_with_sparse_embeddings_equals_uninterrupted(tmp_path):
    full, _ = fit(tmp_path / "full", sparse=True)
    fit(tmp_path / "cut", sparse=True, callbacks=[StopAt(6)])
    resumed, _ = fit(tmp_path / "cut", sparse=True, resume=True)
    assert torch.equal(full.model.embedding.weight, resumed.model.embedding.weight)


def test_resume_without_a_checkpoint_is_a_run_folder_error(tmp_path):
    from rnnkit.errors import RunFolderError

    with pytest.raises(RunFolderError, match="nothing to resume"):
        fit(tmp_path, resume=True)


def test_progress_logs_have_what_the_bar_shows():
    logs = []

    class Keep:
        def on_step_end(self, trainer, entry):
            logs.append(entry)

    fit(callbacks=[Keep()], max_steps=3)
    assert set(logs[-1]) >= {
        "step",
        "total_steps",
        "epoch",
        "loss",
        "lr",
        "grad_norm",
        "tokens_per_s",
        "elapsed_s",
    }
    assert logs[-1]["total_steps"] == 3 and math.isfinite(logs[-1]["loss"])


def test_time_budget_schedule_anneals_when_steps_do_not_fit():
    import time as _time

    seen = []

    class SlowAndWatch:
        def on_step_end(self, trainer, logs):
            seen.append(logs["lr"])
            _time.sleep(0.03)

    trainer, result = fit(
        max_steps=10_000, schedule="linear", lr=1.0, time_budget=0.6, callbacks=[SlowAndWatch()]
    )
    assert result.stop_reason == "time_budget" and trainer.state.by_time
    assert seen[-1] < 0.5  # by steps alone it would still be ~1.0


def test_a_budget_the_steps_fit_in_leaves_the_schedule_alone():
    def lrs(**cfg):
        seen = []

        class Watch:
            def on_step_end(self, trainer, logs):
                seen.append(logs["lr"])

        trainer, _ = fit(max_steps=12, schedule="cosine", warmup=0.2, lr=1.0, callbacks=[Watch()], **cfg)
        return seen, trainer

    with_budget, trainer = lrs(time_budget=3600.0)
    assert with_budget == lrs()[0] and not trainer.state.by_time
