"""Data-parallel training (rnnkit.training.distributed): real processes over gloo on 127.0.0.1, against one.

The multi-process tests start each rank as ``python -m rnnkit train ...`` with torchrun's variables set
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, …), each in its own working folder — as on
separate machines — so a relative ``--out`` shows which rank wrote what. One test goes through
``rnnkit train --nproc 2``, which runs torch's own launcher.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import rnnkit
from rnnkit.cli import cli
from rnnkit.data import BucketBatchSampler
from rnnkit.errors import ConfigError, DistributedError
from rnnkit.training import distributed
from rnnkit.training.distributed import Shard, ShardedBatches, ShardedTask, torchrun_env
from tiny_text import texts, write_csv, write_splits

# Small enough for seconds per run; dropout off so that one process and two can agree exactly; an odd
# batch, so the two ranks' shares differ (4 and 3 rows) and the loss weighting matters.
SETTINGS = {"epochs": 2, "batch_size": 7, "embed_dim": 8, "hidden_dim": 8, "dropout": 0.0,
            "embed_dropout": 0.0, "seed": 3}  # no dropout: its masks differ by rank
RUN_FILES = ("config.json", "vocab.json", "labels.json", "model.safetensors", "trainer_state.pt",
             "metrics.jsonl", "report.json", "curves.png", "confusion.png")  # fmt: skip
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "TORCHELASTIC_USE_AGENT_STORE", "GROUP_RANK")  # fmt: skip


def cli_args(settings: dict, **more) -> list[str]:
    args = []
    for key, value in {**settings, **more}.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        else:
            args += [flag, str(value)]
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


@dataclass
class Rank:
    code: int
    stdout: str
    stderr: str
    cwd: Path


def run_ranks(args: list[str], cwds: list[Path], timeout: float = 150) -> list[Rank]:
    """``python -m rnnkit <args>`` as ranks 0..W-1 of one run, rank r in ``cwds[r]``; wait for all."""
    world, port = len(cwds), free_port()
    procs = []
    for rank, cwd in enumerate(cwds):
        cwd.mkdir(parents=True, exist_ok=True)
        env = clean_env(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                        LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                        RNNKIT_DIST_TIMEOUT="60")  # fmt: skip
        out, err = (cwd / "stdout.txt").open("w"), (cwd / "stderr.txt").open("w")
        command = [sys.executable, "-m", "rnnkit", *map(str, args)]
        procs.append((subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err), out, err, cwd))
    results = []
    for proc, out, err, cwd in procs:
        try:
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
            out.close()
            err.close()
        stdout, stderr = (cwd / "stdout.txt").read_text(), (cwd / "stderr.txt").read_text()
        results.append(Rank(code, stdout, stderr, cwd))
    return results


def assert_ok(ranks: list[Rank]) -> None:
    for rank, r in enumerate(ranks):
        assert r.code == 0, f"rank {rank} exited {r.code}:\n{r.stderr[-3000:]}"


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_splits(tmp_path_factory.mktemp("dist-data"))


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """The one-process run the two-process runs must reproduce (no bucketing, so batches are plain)."""
    train, test = data
    out = tmp_path_factory.mktemp("single") / "run"
    rnnkit.train(train, test=str(test), out=out, bucket=False, device="cpu", **SETTINGS)
    return out


# --- two processes against one --------------------------------------------------------------------------
def test_two_processes_train_the_same_model_as_one_and_rank_0_alone_writes(data, single, tmp_path):
    train, test = data
    args = ["train", "--data", train, "--test", test, "--out", "run", "--no-bucket", "--device", "cpu"]
    ranks = run_ranks(args + cli_args(SETTINGS), [tmp_path / "node0", tmp_path / "node1"])
    assert_ok(ranks)
    run = tmp_path / "node0" / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(RUN_FILES)
    assert not (tmp_path / "node1" / "run").exists()  # rank 1 wrote nothing
    assert ranks[0].stdout.startswith("test accuracy") and ranks[1].stdout == ""
    assert "data: " in ranks[0].stderr and "epoch " in ranks[0].stderr  # only rank 0 shows progress
    assert "data: " not in ranks[1].stderr and "epoch " not in ranks[1].stderr

    assert max_diff(load_file(run / "model.safetensors"), load_file(single / "model.safetensors")) <= 1e-5
    two, one = metrics(run), metrics(single)
    assert [r["step"] for r in two] == [r["step"] for r in one] == [12, 24]
    for a, b in zip(two, one, strict=True):  # training figures are summed over both ranks' rows
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
        assert a["train_accuracy"] == b["train_accuracy"]
        assert a["valid_accuracy"] == b["valid_accuracy"]
    report = json.loads((run / "report.json").read_text())
    assert report["device"].endswith("× 2 processes") and report["steps"] == 24


def test_a_two_process_run_resumes_in_one_process(data, single, tmp_path):
    train, test = data
    args = ["train", "--data", train, "--test", test, "--out", "run", "--no-bucket", "--device", "cpu"]
    ranks = run_ranks(args + cli_args(SETTINGS, time_budget=0.001), [tmp_path / "node0", tmp_path / "node1"])
    assert_ok(ranks)  # the budget runs out after the first step, on both ranks at once
    run = tmp_path / "node0" / "run"
    assert json.loads((run / "report.json").read_text())["steps"] == 1

    rnnkit.train(out=run, resume=True, time_budget=1000.0)  # this process alone: no torchrun variables
    assert max_diff(load_file(run / "model.safetensors"), load_file(single / "model.safetensors")) <= 1e-5
    assert [r["step"] for r in metrics(run)] == [12, 24]
    assert json.loads((run / "report.json").read_text())["stop_reason"] == "epochs"


def test_bucketed_runs_with_one_seed_are_identical_and_nproc_launches_the_same(data, tmp_path):
    train, _ = data
    args = ["train", "--data", train, "--bucket", "--device", "cpu", *cli_args(SETTINGS)]
    ranks = run_ranks([*args, "--out", "run"], [tmp_path / "node0", tmp_path / "node1"])
    assert_ok(ranks)
    launched = subprocess.run(
        [sys.executable, "-m", "rnnkit", *map(str, args), "--out", "nproc", "--nproc", "2"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("test accuracy") == 0 and launched.stdout.count("valid accuracy") == 1
    a = load_file(tmp_path / "node0" / "run" / "model.safetensors")
    b = load_file(tmp_path / "nproc" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- clear errors ---------------------------------------------------------------------------------------
def test_ranks_that_read_different_data_stop_with_a_clear_error(tmp_path):
    for node, rows in (("node0", 60), ("node1", 40)):  # each "machine" has its own copy, and they differ
        (tmp_path / node).mkdir()
        write_csv(tmp_path / node / "train.csv", texts(rows, seed=1))
    args = ["train", "--data", "train.csv", "--out", "run", "--device", "cpu", *cli_args(SETTINGS)]
    ranks = run_ranks(args, [tmp_path / "node0", tmp_path / "node1"])
    assert [r.code for r in ranks] == [2, 2]
    for r in ranks:
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("rnnkit: error: the training data differs between processes: rank 0 has 54 ")
        assert "rank 1 has 36 examples" in last and "same data files" in last
    assert not (tmp_path / "node0" / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("rank, message", [
    (1, "rank 1 could not reach the master at 127.0.0.1:{port} within 1 s"),
    (0, "rank 0 waited 1 s at 127.0.0.1:{port} for the other 1 process(es), but not all came"),
])  # fmt: skip
def test_a_rank_that_cannot_meet_the_others_times_out_with_a_message(rank, message):
    port = free_port()
    env = {"RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    began = time.monotonic()
    with pytest.raises(DistributedError) as caught:
        distributed.init("cpu", environ=env, timeout=1)
    assert str(caught.value).startswith(message.format(port=port))
    assert "RNNKIT_DIST_TIMEOUT" in str(caught.value)
    assert time.monotonic() - began < 15
    assert distributed.current() is None and not torch.distributed.is_initialized()


def test_nproc_larger_than_the_batch_is_refused_before_launching(data):
    train, _ = data
    result = CliRunner().invoke(cli, ["train", "--data", str(train), "--nproc", "4", "--batch-size", "2"])
    assert result.exit_code == 2
    assert "4 processes need a batch of at least 4 examples" in result.stderr
    assert "got --batch-size 2" in result.stderr


def test_tasks_without_a_distributed_pipeline_are_refused(monkeypatch):
    class Handle:  # stands in for a joined process group
        closed = False

        def close(self):
            Handle.closed = True

    monkeypatch.setattr(distributed, "init", lambda device: Handle())
    with pytest.raises(ConfigError, match="available for classify, not --task lm; train it in one process"):
        rnnkit.train(task="lm")
    assert Handle.closed


def test_nproc_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    with pytest.raises(ConfigError, match="already one of several"):
        distributed.launch(2, ["train"])


# --- the launcher's variables ---------------------------------------------------------------------------
def test_torchrun_env_reads_the_launchers_variables():
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
           "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}  # fmt: skip
    assert torchrun_env(env) == distributed.TorchrunEnv(3, 4, 1, 2, "node0", 29500)
    one_node = torchrun_env({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    assert (one_node.local_rank, one_node.local_world_size) == (1, 2)
    assert torchrun_env({}) is None and torchrun_env({"WORLD_SIZE": "1", "RANK": "0"}) is None


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h"}, "MASTER_PORT is not set"),
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be an integer in ≥ 1, got 'two'"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "RANK must be .* in 0…1, got"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "70000"}, "MASTER_PORT must be"),
])  # fmt: skip
def test_torchrun_env_names_a_bad_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        torchrun_env(env)


def test_is_main_process_follows_rank():
    assert distributed.is_main_process({}) and distributed.is_main_process({"RANK": "0"})
    assert not distributed.is_main_process({"RANK": "2"})


# --- sharding ---------------------------------------------------------------------------------------------
def shards_of(sampler_args: dict, world: int, epoch: int) -> list[list[Shard]]:
    per_rank = []
    for rank in range(world):
        sampler = BucketBatchSampler(**sampler_args)
        loader = ShardedBatches(list(range(len(sampler_args["lengths"]))), sampler, list,
                                num_replicas=world, rank=rank)  # fmt: skip
        loader.set_epoch(epoch)
        per_rank.append(list(loader))
    return per_rank


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_batches_split_every_batch_once_across_ranks(world):
    lengths = [(i * 7) % 13 + 1 for i in range(23)]
    args = {"lengths": lengths, "batch_size": 8, "seed": 5, "pool_batches": 2}
    for epoch in (0, 1):
        per_rank = shards_of(args, world, epoch)
        assert len({len(shards) for shards in per_rank}) == 1  # every rank takes the same number of steps
        seen = [row for shards in per_rank for shard in shards for row in shard.batch if shard.weight > 0]
        assert sorted(seen) == list(range(23))  # each example once per epoch, all ranks together
        for step in zip(*per_rank, strict=True):  # the weights make the ranks' mean the batch's mean
            rows = sum(len(s.batch) for s in step)
            assert sum(s.weight for s in step) == pytest.approx(world)
            assert all(s.weight == pytest.approx(len(s.batch) * world / rows) for s in step)
        again = shards_of(args, world, epoch)
        assert again == per_rank  # a pure function of (seed, epoch)
    assert shards_of(args, world, 0) != shards_of(args, world, 1)


def test_a_batch_smaller_than_the_ranks_gives_stand_in_rows_of_weight_zero():
    per_rank = [list(ShardedBatches("xyz", [[0, 1, 2], [2]], list, num_replicas=3, rank=r)) for r in range(3)]
    assert [s.weight for s in per_rank[0]] == [1.0, 3.0]
    assert [(s.batch, s.weight) for s in per_rank[2]] == [(["z"], 1.0), (["z"], 0.0)]


def test_sharded_task_weights_the_loss_and_zeroes_a_stand_ins_stats():
    class Mean(rnnkit.training.loop.Task):
        monitor, higher_is_better = "accuracy", True

        def loss(self, model, batch, carry):
            return torch.tensor(float(sum(batch)) / len(batch)), carry, {"examples": len(batch), "tokens": 5}

    task = ShardedTask(Mean())
    assert (task.monitor, task.higher_is_better) == ("accuracy", True)
    loss, _, stats = task.loss(None, Shard([1, 3], 1.5), None)
    assert float(loss) == 3.0 and stats == {"examples": 2, "tokens": 5}
    loss, _, stats = task.loss(None, Shard([4], 0.0), None)
    assert float(loss) == 0.0 and stats == {"examples": 0, "tokens": 0}


def test_check_world_size_needs_a_row_per_rank():
    distributed.check_world_size(2, batch_size=2, examples=2)
    with pytest.raises(ConfigError, match="3 processes need at least 3 training examples, got 2"):
        distributed.check_world_size(3, batch_size=8, examples=2)
