"""ULMFiT fine-tuning in the Trainer: slanted triangular rates, discriminative rates, gradual unfreezing.

A toy model (embedding → linear → linear head) with three layer groups, trained by the real Trainer on a
toy regression task, shows which parameters move at which step and at which rate.
"""

import pytest
import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.errors import RunFolderError
from rnnkit.training.loop import Task, Trainer, build_optimizers, layer_groups, lr_factor


class Toy(nn.Module):
    """ids (N, L) → embedding (N, L, E) → mean (N, E) → linear → tanh → head (N,)."""

    def __init__(self, sparse=False):
        super().__init__()
        self.embedding = nn.Embedding(10, 4, sparse=sparse)
        self.hidden = nn.Linear(4, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, ids):
        return self.head(torch.tanh(self.hidden(self.embedding(ids).mean(1)))).squeeze(-1)


class Grouped(Toy):
    def layer_groups(self):
        return [[self.embedding.weight], list(self.hidden.parameters()), list(self.head.parameters())]


class Regression(Task):
    monitor, higher_is_better = "loss", False

    def loss(self, model, batch, carry):
        ids, target = batch
        return ((model(ids) - target) ** 2).mean(), carry, {"examples": len(ids), "tokens": ids.numel()}

    def evaluate(self, model, batches):
        return {"loss": sum(float(((model(ids) - t) ** 2).mean()) for ids, t in batches) / len(batches)}


def batches(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 10, (n, 8, 5), generator=g)
    return [(ids[i], ids[i].float().mean(1) / 5 - 1) for i in range(n)]


class Record:
    """After every step: the logs, a copy of every parameter, and every parameter's requires_grad."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.logs, self.weights, self.requires_grad = [], [], []

    def on_step_end(self, trainer, logs):
        self.logs.append(dict(logs))
        self.weights.append({k: v.detach().clone() for k, v in trainer.model.named_parameters()})
        self.requires_grad.append({k: v.requires_grad for k, v in trainer.model.named_parameters()})
        if logs["step"] == self.stop_at:
            trainer.request_stop("test interruption")


def train(model=None, out_dir=None, resume=False, callbacks=(), distributed=None, **cfg):
    torch.manual_seed(0)
    model = model or Grouped()
    data = batches()
    config = TrainConfig(**{"epochs": 3, "lr": 0.01, "device": "cpu", "threads": 1, **cfg})
    trainer = Trainer(
        model,
        Regression(),
        data,
        data[:2],
        config=config,
        out_dir=out_dir,
        callbacks=callbacks,
        distributed=distributed,
    )
    result = trainer.fit(resume=resume)
    return trainer, result


GROUPS = {"embedding": 0, "hidden": 1, "head": 2}


def moved_groups(before, after):
    """The layer groups (by module name) with any parameter that changed between two snapshots."""
    return {GROUPS[k.split(".")[0]] for k in after if not torch.equal(before[k], after[k])}


# --- slanted triangular learning rates ---------------------------------------------------------------


@pytest.mark.parametrize("warmup, cut", [(0.0, 0.1), (0.2, 0.2)])
def test_slanted_rises_to_the_cut_then_falls_to_a_32nd(warmup, cut):
    assert lr_factor(0.0, "slanted", warmup) == pytest.approx(1 / 32)
    assert lr_factor(cut, "slanted", warmup) == pytest.approx(1.0)
    assert lr_factor(1.0, "slanted", warmup) == pytest.approx(1 / 32)
    assert lr_factor(cut / 2, "slanted", warmup) == pytest.approx((1 + 0.5 * 31) / 32)
    rising = [lr_factor(cut * i / 10, "slanted", warmup) for i in range(11)]
    falling = [lr_factor(cut + (1 - cut) * i / 10, "slanted", warmup) for i in range(11)]
    assert all(a < b for a, b in zip(rising, rising[1:], strict=False))
    assert all(a > b for a, b in zip(falling, falling[1:], strict=False))


def test_unknown_schedule_error_lists_slanted():
    with pytest.raises(ValueError, match="constant, linear, cosine or slanted, got 'step'"):
        lr_factor(0.5, "step", 0.0)


def test_slanted_schedule_drives_the_trainer():
    record = Record()
    train(schedule="slanted", warmup=0.25, lr=1.0, max_steps=8, callbacks=[record])
    lrs = [log["lr"] for log in record.logs]
    assert lrs == pytest.approx([lr_factor(s / 8, "slanted", 0.25) for s in range(8)])
    assert lrs[0] == pytest.approx(1 / 32) and lrs[2] == pytest.approx(1.0)


# --- layer groups and discriminative learning rates --------------------------------------------------


def test_layer_groups_put_leftovers_on_top_and_refuse_duplicates():
    class Partial(Toy):
        def layer_groups(self):
            return [[self.embedding.weight], [self.hidden.weight]]

    model = Partial()
    groups = layer_groups(model)
    assert [len(g) for g in groups] == [1, 4]
    assert {id(p) for p in groups[1]} == {id(model.hidden.weight), id(model.hidden.bias)} | {
        id(p) for p in model.head.parameters()
    }
    assert [len(g) for g in layer_groups(Toy())] == [5]  # no layer_groups: one group

    class Twice(Toy):
        def layer_groups(self):
            return [[self.embedding.weight], [self.embedding.weight, *self.head.parameters()]]

    with pytest.raises(ValueError, match="layer groups 0 and 1"):
        layer_groups(Twice())

    class Foreign(Toy):
        def layer_groups(self):
            return [[nn.Parameter(torch.zeros(3))], list(self.parameters())]

    with pytest.raises(ValueError, match="not in the model"):
        layer_groups(Foreign())


def test_discriminative_rates_reach_the_optimizer_groups():
    record = Record()
    trainer, _ = train(lr_decay=0.5, lr=0.01, weight_decay=0.1, max_steps=2, callbacks=[record])
    (adamw,) = trainer.optimizers
    by_group = {}
    for group in adamw.param_groups:
        by_group.setdefault(group["layer_group"], set()).add(group["lr"])
        assert group["lr_scale"] == 0.5 ** (2 - group["layer_group"])
    assert by_group == {0: {0.0025}, 1: {0.005}, 2: {0.01}}
    assert [log["lr"] for log in record.logs] == [0.01, 0.01]  # the logged rate is the top group's
    # decay / no decay within each layer group: matrices decay, biases and the embedding do not
    decayed = {id(p) for g in adamw.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    model = trainer.model
    assert decayed == {id(model.hidden.weight), id(model.head.weight)}
    assert sorted(len(g["params"]) for g in adamw.param_groups) == [1, 1, 1, 1, 1]  # emb; w, b; w, b


def test_each_group_learns_at_its_scaled_rate():
    """Plain SGD-like check through Adam's first step: |Δw| = lr for every element with a gradient."""
    before = {k: v.detach().clone() for k, v in Grouped().named_parameters()}
    trainer, _ = train(lr_decay=0.25, lr=0.01, max_steps=1, clip_norm=None)
    for name, p in trainer.model.named_parameters():
        step = (p.detach() - before[name]).abs()
        scale = 0.25 ** (2 - GROUPS[name.split(".")[0]])
        moved = step[step > 0]
        assert torch.allclose(moved, torch.full_like(moved, 0.01 * scale), rtol=1e-3), name


def test_sparse_embedding_gets_its_layer_groups_scale():
    model = Grouped(sparse=True)
    opts = build_optimizers(model, TrainConfig(lr_decay=0.5))
    assert [type(o).__name__ for o in opts] == ["AdamW", "SparseAdam"]
    (table,) = opts[1].param_groups
    assert table["params"] == [model.embedding.weight]
    assert (table["layer_group"], table["lr_scale"]) == (0, 0.25)
    trainer, _ = train(Grouped(sparse=True), lr_decay=0.5, lr=0.01, max_steps=1)
    assert trainer.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.0025)


def structure(optimizers):
    """Each optimizer's type and, per param group, its settings' names and its number of parameters."""
    return [(type(o).__name__, [(sorted(g), len(g["params"])) for g in o.param_groups]) for o in optimizers]


@pytest.mark.parametrize("sparse", [False, True])
def test_without_layer_groups_the_optimizer_is_as_before(sparse):
    torch.manual_seed(0)
    toy, grouped = Toy(sparse=sparse), Grouped(sparse=sparse)
    grouped.load_state_dict(toy.state_dict())
    cfg = TrainConfig(weight_decay=0.1, lr_decay=0.5)
    opts = build_optimizers(toy, cfg)
    dense = opts[0].param_groups
    decay = [toy.hidden.weight, toy.head.weight]
    no_decay = ([] if sparse else [toy.embedding.weight]) + [toy.hidden.bias, toy.head.bias]
    assert [g["params"] for g in dense] == [decay, no_decay]
    assert [g["weight_decay"] for g in dense] == [0.1, 0.0]
    assert not any("lr_scale" in g or "layer_group" in g for o in opts for g in o.param_groups)
    if sparse:
        assert opts[1].param_groups[0]["params"] == [toy.embedding.weight]
    # layer groups that change nothing (lr_decay 1, no unfreezing) build the same structure, so checkpoints
    # written before the model had layer groups still resume
    same = build_optimizers(grouped, TrainConfig(weight_decay=0.1))
    assert structure(same) == structure(opts)


# --- gradual unfreezing ------------------------------------------------------------------------------


def test_gradual_unfreezing_thaws_the_groups_top_down():
    record = Record()
    trainer, result = train(unfreeze=0.5, lr_decay=0.5, callbacks=[record])
    assert result.step == 12
    # thresholds k·u/(G−1) = 0.25 and 0.5 of 12 steps: steps 0–2 top only, 3–5 top two, 6– all
    assert [log["groups"] for log in record.logs] == [1] * 3 + [2] * 3 + [3] * 6
    start = {k: v.detach().clone() for k, v in Grouped().named_parameters()}
    snapshots = [start, *record.weights]
    moved = [moved_groups(a, b) for a, b in zip(snapshots, snapshots[1:], strict=False)]
    assert moved == [{2}] * 3 + [{1, 2}] * 3 + [{0, 1, 2}] * 6
    frozen = [sorted(k for k, on in rg.items() if not on) for rg in record.requires_grad]
    assert frozen[0] == ["embedding.weight", "hidden.bias", "hidden.weight"]
    assert frozen[3] == ["embedding.weight"] and frozen[6] == []
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_unfreezing_is_off_without_layer_groups_or_unfreeze():
    record = Record()
    train(callbacks=[record], max_steps=2)
    assert "groups" not in record.logs[0]
    record = Record()
    train(Toy(), unfreeze=0.5, callbacks=[record], max_steps=2)
    assert "groups" not in record.logs[0]
    assert all(all(rg.values()) for rg in record.requires_grad)


def test_frozen_vectors_never_thaw_and_stay_frozen():
    model = Grouped()
    model.embedding.weight.requires_grad_(False)  # like --freeze-vectors
    vectors = model.embedding.weight.detach().clone()
    record = Record()
    trainer, _ = train(model, unfreeze=0.5, lr_decay=0.5, callbacks=[record])
    assert all(not rg["embedding.weight"] for rg in record.requires_grad)
    assert torch.equal(trainer.model.embedding.weight, vectors)
    assert not trainer.model.embedding.weight.requires_grad
    assert trainer.model.hidden.weight.requires_grad and trainer.model.head.weight.requires_grad
    assert record.logs[-1]["groups"] == 3


def test_requires_grad_is_restored_after_a_stop_and_after_an_error():
    record = Record(stop_at=2)
    trainer, result = train(unfreeze=0.5, callbacks=[record])
    assert result.step == 2 and not record.requires_grad[-1]["hidden.weight"]
    assert all(p.requires_grad for p in trainer.model.parameters())

    class Boom:
        def on_step_end(self, trainer, logs):
            if logs["step"] == 2:
                raise RuntimeError("boom")

    model = Grouped()
    with pytest.raises(RuntimeError, match="boom"):
        train(model, unfreeze=0.5, callbacks=[Boom()])
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("stop_at", [2, 4, 7])  # before the first thaw, between the thaws, after them
def test_resume_mid_unfreezing_equals_uninterrupted(tmp_path, stop_at):
    settings = {"unfreeze": 0.5, "lr_decay": 0.5, "schedule": "slanted", "weight_decay": 0.01}
    full_record = Record()
    full, _ = train(out_dir=tmp_path / "full", callbacks=[full_record], **settings)
    cut_record = Record(stop_at=stop_at)
    train(out_dir=tmp_path / "cut", callbacks=[cut_record], **settings)
    resumed, result = train(out_dir=tmp_path / "cut", resume=True, callbacks=[cut_record], **settings)
    assert result.step == 12 and result.stop_reason == "epochs"
    for name, weight in full.model.state_dict().items():
        assert torch.equal(weight, resumed.model.state_dict()[name]), name
    pick = lambda logs: [(log["step"], log["groups"], log["lr"]) for log in logs]  # noqa: E731
    assert pick(cut_record.logs) == pick(full_record.logs)
    assert all(p.requires_grad for p in resumed.model.parameters())


class OneRank:
    """A stand-in for :class:`rnnkit.training.distributed.Distributed` with a single rank."""

    def reduce_step(self, loss, stats):
        return loss, dict(stats)

    def agree_stop(self, reason, clock):
        return reason, clock

    def run_on_main(self, fn):
        return fn()


def test_distributed_unfreezing_keeps_gradients_and_uses_a_zero_rate():
    record = Record()
    train(unfreeze=0.5, lr_decay=0.5, weight_decay=0.1, callbacks=[record], distributed=OneRank())
    assert all(all(rg.values()) for rg in record.requires_grad)  # DDP needs every gradient
    assert [log["groups"] for log in record.logs] == [1] * 3 + [2] * 3 + [3] * 6
    start = {k: v.detach().clone() for k, v in Grouped().named_parameters()}
    snapshots = [start, *record.weights]
    moved = [moved_groups(a, b) for a, b in zip(snapshots, snapshots[1:], strict=False)]
    assert moved == [{2}] * 3 + [{1, 2}] * 3 + [{0, 1, 2}] * 6


def test_resume_with_other_layer_group_settings_is_a_run_folder_error(tmp_path):
    train(out_dir=tmp_path, callbacks=[Record(stop_at=2)])  # lr_decay 1: the plain optimizer structure
    with pytest.raises(RunFolderError, match="cannot be resumed"):
        train(out_dir=tmp_path, resume=True, lr_decay=0.5)
