"""Data-parallel training over several processes: PyTorch's DistributedDataParallel, started by ``torchrun``.

Every process (a *rank*) holds a whole copy of the model and trains on its share of every batch;
after each backward pass DDP averages the gradients over the ranks, so every copy takes the same
optimizer step. rnnkit keeps the *global* batch — ``batch_size`` examples per step, all ranks
together — whatever the number of processes: rank ``r`` of ``W`` takes rows ``r, r + W, …`` of each
batch (:class:`ShardedBatches`), and its loss, the mean over its rows, is weighted by
``rows × W / batch rows`` (:class:`ShardedTask`), so that the averaged gradient is the gradient of the
whole batch's mean loss. Hence:

* ``W`` processes train the same model as one process does (up to rounding; dropout masks differ);
* a checkpoint resumes with any number of processes — the batches and steps do not depend on ``W``;
* length bucketing still works: a bucketed batch holds texts of similar length, and so does every
  rank's share of it, so no rank waits for another with longer texts.

Rank 0 alone reads and writes the run folder, shows progress and evaluates (its metrics are sent to the
others, so that every rank makes the same decisions); training statistics are summed over the ranks at
every step. The vocabulary and labels are built once, on rank 0, and sent to the others, which check
that they read the same training data (:meth:`Distributed.check_same`).

>>> batch = [[0, 1, 2, 3, 4]]                    # one global batch of five rows, two ranks
>>> [list(ShardedBatches("abcde", batch, "".join, num_replicas=2, rank=r)) for r in (0, 1)]
[[Shard(batch='ace', weight=1.2)], [Shard(batch='bd', weight=0.8)]]
>>> torchrun_env({}) is None                    # not started by torchrun: one ordinary process
True
>>> torchrun_env({"WORLD_SIZE": "2", "RANK": "1"})
Traceback (most recent call last):
...
rnnkit.errors.ConfigError: WORLD_SIZE=2 says this is one of several processes, but MASTER_ADDR, ...
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError, DistributedError
from ..utils import resolve_device
from .loop import BatchLoader, Task

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "RNNKIT_DIST_TIMEOUT"  # seconds a process waits for the others to meet at the start
DEFAULT_TIMEOUT_S = 300.0
COLLECTIVE_TIMEOUT_S = 1800.0  # once started, how long a rank waits in a collective (rank 0 evaluating)

_current: Distributed | None = None


# ---------------------------------------------------------------------------------------------------
# the launcher's environment
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TorchrunEnv:
    """What ``torchrun`` (or any launcher setting the same variables) tells each process."""

    rank: int  # RANK: this process's index among all processes, 0 … world_size - 1
    world_size: int  # WORLD_SIZE: processes in the run, all machines together
    local_rank: int  # LOCAL_RANK: this process's index on its machine (it picks the GPU)
    local_world_size: int  # LOCAL_WORLD_SIZE: processes on this machine
    master_addr: str  # MASTER_ADDR: the host of rank 0's rendezvous store
    master_port: int  # MASTER_PORT: its TCP port


def torchrun_env(environ: Mapping[str, str] | None = None) -> TorchrunEnv | None:
    """The distributed settings in ``environ`` (default ``os.environ``), or None for a lone process.

    A process is one of several when ``WORLD_SIZE`` is above 1; then ``RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` must be set too. ``LOCAL_RANK`` / ``LOCAL_WORLD_SIZE`` default to ``RANK`` /
    ``WORLD_SIZE`` (one machine).

    Raises:
        ConfigError: a variable is missing or is not a number in range.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    world_size = _int_var(env, "WORLD_SIZE", 1)
    if world_size == 1:
        return None
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world_size} says this is one of several processes, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (torchrun sets them; see docs/distributed.md)"
        )
    rank = _int_var(env, "RANK", 0, world_size - 1)
    local_world_size = world_size
    if "LOCAL_WORLD_SIZE" in env:
        local_world_size = _int_var(env, "LOCAL_WORLD_SIZE", 1, world_size)
    local_rank = _int_var(env, "LOCAL_RANK", 0, local_world_size - 1) if "LOCAL_RANK" in env else rank
    port = _int_var(env, "MASTER_PORT", 1, 65535)
    return TorchrunEnv(rank, world_size, local_rank, local_world_size, env["MASTER_ADDR"], port)


def _int_var(env: Mapping[str, str], name: str, low: int, high: int | None = None) -> int:
    text = env[name]
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        span = f"{low}…{high}" if high is not None else f"≥ {low}"
        raise ConfigError(f"environment variable {name} must be an integer in {span}, got {text!r}")
    return value


def _timeout_s(timeout: float | None) -> float:
    if timeout is not None:
        return float(timeout)
    text = os.environ.get(TIMEOUT_ENV)
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a number of seconds > 0, got {text!r}")
    return value


# ---------------------------------------------------------------------------------------------------
# joining the process group
# ---------------------------------------------------------------------------------------------------
def init(
    device: str | torch.device = "auto",
    *,
    environ: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Distributed | None:
    """Join the run's process group when this process is one of several; None when it is alone.

    The backend is NCCL on CUDA (each process pinned to GPU ``LOCAL_RANK``), gloo on the CPU. A
    process group the caller made already is used as it is (and left open by :meth:`Distributed.close`).

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (``cuda:N`` is refused: the GPU is ``LOCAL_RANK``'s).
        environ: the launcher's variables (default ``os.environ``).
        timeout: seconds to wait for the other processes at the start (default ``$RNNKIT_DIST_TIMEOUT``,
            else 300); then a :class:`DistributedError` says who could not be reached, instead of a hang.

    Returns:
        The :class:`Distributed` handle (also what :func:`current` returns until it is closed), or None.

    Raises:
        DistributedError: the master could not be reached, or not every process arrived in time.
        ConfigError: bad launcher variables, or a device this process cannot use.
    """
    global _current
    env = torchrun_env(environ)
    if env is None:
        return None
    if _current is not None:
        return _current
    if not dist.is_available():  # pragma: no cover - every official torch build has it
        raise ConfigError("this PyTorch build has no torch.distributed; train in one process")
    where = _rank_device(device, env)
    backend = "nccl" if where.type == "cuda" else "gloo"
    owns_group = not dist.is_initialized()
    if owns_group:
        _join(env, backend, _timeout_s(timeout))
    elif (dist.get_rank(), dist.get_world_size()) != (env.rank, env.world_size):
        raise ConfigError(
            f"the process group already set up is rank {dist.get_rank()} of {dist.get_world_size()}, "
            f"but RANK/WORLD_SIZE say {env.rank} of {env.world_size}"
        )
    _current = Distributed(env, where, dist.get_backend(), owns_group)
    return _current


def current() -> Distributed | None:
    """The :class:`Distributed` handle :func:`init` made, until it is closed; None in a lone process."""
    return _current


def is_main_process(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is rank 0 (or alone): the one that prints and writes files.

    >>> is_main_process({}), is_main_process({"RANK": "1"})
    (True, False)
    """
    if _current is not None:
        return _current.is_main
    env = os.environ if environ is None else environ
    return env.get("RANK", "0").strip() in ("0", "")


def _rank_device(device: str | torch.device, env: TorchrunEnv) -> torch.device:
    """CPU, or the GPU of this process's ``LOCAL_RANK`` (made the current CUDA device)."""
    resolved = resolve_device(device)
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ConfigError(f"distributed training runs on cpu or cuda, got device {str(device)!r}")
    if resolved.index is not None and str(device) != "auto":
        raise ConfigError(
            f"under torchrun every process uses the GPU of its LOCAL_RANK (here cuda:{env.local_rank}); "
            f"pass --device cuda or auto, not {str(device)!r}"
        )
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise ConfigError(
            f"LOCAL_RANK {env.local_rank} has no GPU: this machine has {count}; start at most {count} "
            f"processes per machine (--nproc_per_node)"
        )
    torch.cuda.set_device(env.local_rank)
    return torch.device("cuda", env.local_rank)


def _join(env: TorchrunEnv, backend: str, timeout_s: float) -> None:
    """Meet the other processes at ``MASTER_ADDR:MASTER_PORT`` within ``timeout_s``, then start the group."""
    host = f"[{env.master_addr}]" if ":" in env.master_addr else env.master_addr
    url = f"tcp://{host}:{env.master_port}?rank={env.rank}&world_size={env.world_size}"
    try:
        store, _, _ = next(dist.rendezvous(url, timeout=datetime.timedelta(seconds=timeout_s)))
    except (RuntimeError, ValueError) as e:  # torch's DistNetworkError / DistStoreError are RuntimeErrors
        raise DistributedError(_meeting_failed(env, timeout_s, e)) from None
    collective = datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_S)
    store.set_timeout(collective)
    try:
        dist.init_process_group(
            backend, store=store, rank=env.rank, world_size=env.world_size, timeout=collective
        )
    except RuntimeError as e:
        message = f"rank {env.rank} could not start the {backend} process group: {_one_line(e)}"
        raise DistributedError(message) from None


def _meeting_failed(env: TorchrunEnv, timeout_s: float, error: Exception) -> str:
    where = f"{env.master_addr}:{env.master_port}"
    detail = _one_line(error)
    if env.rank == 0 and "waiting for clients" in detail:
        return (
            f"rank 0 waited {timeout_s:g} s at {where} for the other {env.world_size - 1} process(es), but "
            f"not all came ({detail}): start every machine with the same --nnodes, --nproc_per_node, "
            f"--master_addr and --master_port, or set {TIMEOUT_ENV} to wait longer"
        )
    if env.rank == 0:
        return f"rank 0 could not open the rendezvous store on {where} ({detail}): is the port free?"
    return (
        f"rank {env.rank} could not reach the master at {where} within {timeout_s:g} s ({detail}): start "
        f"rank 0 (node_rank 0), check --master_addr/--master_port and that the port is open between the "
        f"machines, or set {TIMEOUT_ENV} to wait longer"
    )


def _one_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


# ---------------------------------------------------------------------------------------------------
# the handle: collectives the training loop needs
# ---------------------------------------------------------------------------------------------------
class Distributed:
    """This process's place in a data-parallel run, and the few collective steps training needs.

    Made by :func:`init`. Every method that communicates must be called by every rank, in the same
    order (they are collectives).

    Attributes:
        rank, world_size, local_rank: this process's position (see :class:`TorchrunEnv`).
        device: where this rank's model runs (``cuda:LOCAL_RANK`` or CPU).
        backend: ``"nccl"`` or ``"gloo"``.
    """

    def __init__(self, env: TorchrunEnv, device: torch.device, backend: str, owns_group: bool):
        self.env = env
        self.rank = env.rank
        self.world_size = env.world_size
        self.local_rank = env.local_rank
        self.device = device
        self.backend = backend
        self._owns_group = owns_group
        # tensors for collectives live where the backend wants them (NCCL: on the GPU)
        self._comm_device = device if backend == "nccl" else torch.device("cpu")

    def __repr__(self) -> str:
        where = f"device={self.device}, backend={self.backend}"
        return f"Distributed(rank={self.rank}, world_size={self.world_size}, {where})"

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, evaluates and writes the run folder."""
        return self.rank == 0

    # the model -------------------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` on this rank's device inside ``DistributedDataParallel`` (which copies rank 0's weights
        to every rank now, and averages gradients in every backward pass).

        Inputs are passed through as they are (no ``device_ids``): the task moves ids and labels to the
        device itself and keeps ``lengths`` on the CPU, where packing needs them. NCCL cannot average
        sparse gradients, so on CUDA sparse embeddings become dense (with a warning).
        """
        from torch.nn.parallel import DistributedDataParallel

        if self.backend == "nccl":
            _densify_embeddings(model)
        return DistributedDataParallel(model.to(self.device), device_ids=None)

    # collectives -----------------------------------------------------------------------------------
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (any picklable object)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        boxes: list[Any] = [None] * self.world_size
        dist.all_gather_object(boxes, obj)
        return boxes

    def run_on_main(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0 only and return its result on every rank.

        If ``fn`` fails, rank 0 raises its error and every other rank a :class:`DistributedError`
        quoting it — instead of waiting for rank 0 forever.
        """
        outcome = None
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except Exception as e:
                self.broadcast(("error", f"{type(e).__name__}: {e}"))
                raise
        status, value = self.broadcast(outcome)
        if status == "error":
            raise DistributedError(f"rank 0 failed: {value}")
        return value

    def collectively(self, fn: Callable[[], Any], what: str) -> Any:
        """Run ``fn`` on every rank; if it fails anywhere, fail everywhere (rank ``r``'s error quoted).

        Args:
            fn: the work each rank does for itself (e.g. reading its copy of the data).
            what: what ``fn`` does, for the message (``"reading the data"``).
        """
        try:
            result, error = fn(), None
        except Exception as e:
            result, error = None, e
        errors = self.all_gather(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        failed = [(rank, message) for rank, message in enumerate(errors) if message is not None]
        if failed:
            rank, message = failed[0]
            raise DistributedError(f"rank {rank} failed {what}: {message}")
        return result

    def reduce_step(self, loss: float, stats: Mapping[str, float]) -> tuple[float, dict[str, float]]:
        """One training step's figures for the whole batch: the ranks' mean loss and summed ``stats``.

        With :class:`ShardedTask`'s weighting the mean of the ranks' losses is the batch's mean loss.
        """
        keys = sorted(stats)
        values = self._all_reduce([loss, *(float(stats[k]) for k in keys)])
        return values[0] / self.world_size, dict(zip(keys, values[1:], strict=True))

    def agree_stop(self, reason: str | None, clock: float) -> tuple[str | None, float]:
        """Stop every rank when any rank wants to stop, and share rank 0's clock.

        Time budgets and stop requests are decided by each rank's own clock and callbacks; acting on
        them alone would leave the others waiting in the next step's gradient exchange.

        Returns:
            ``(reason, clock)``: the first stopping rank's reason (None: go on) and rank 0's ``clock``.
        """
        clock0, stopping = self._all_reduce([clock if self.is_main else 0.0, 0.0 if reason is None else 1.0])
        if not stopping:
            return None, clock0
        reasons = self.all_gather(reason)
        return next(r for r in reasons if r is not None), clock0

    def check_same(self, facts: Mapping[str, tuple[Any, str]], hint: str = "") -> None:
        """Raise :class:`DistributedError` unless every rank has the same value for every fact.

        Args:
            facts: name → ``(value, description)``; values are compared by :func:`fingerprint`, the
                description (e.g. ``"1,200 examples"``) goes into the message.
            hint: what the user should do about a difference.
        """
        mine = {name: (fingerprint(value), described) for name, (value, described) in facts.items()}
        gathered = self.all_gather(mine)
        for name, (digest, described) in gathered[0].items():
            for rank, theirs in enumerate(gathered[1:], start=1):
                other_digest, other_described = theirs.get(name, (None, "nothing"))
                if other_digest != digest:
                    if other_described == described:
                        detail = f"rank 0 and rank {rank} both have {described}, but not the same"
                    else:
                        detail = f"rank 0 has {described}, rank {rank} has {other_described}"
                    advice = f"; {hint}" if hint else ""
                    raise DistributedError(f"the {name} differs between processes: {detail}{advice}")

    def barrier(self) -> None:
        """Wait until every rank is here."""
        dist.barrier()

    def close(self) -> None:
        """Leave the process group (if :func:`init` made it) and forget this handle."""
        global _current
        if self._owns_group and dist.is_initialized():
            gc.collect()  # free DDP's hold on the group now, not while the interpreter shuts down
            dist.destroy_process_group()
        if _current is self:
            _current = None

    def _all_reduce(self, values: Sequence[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(tensor)
        return tensor.tolist()


def _densify_embeddings(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and module.sparse:
            logger.warning(f"{name or 'embedding'}: NCCL cannot average sparse gradients; using dense ones")
            module.sparse = False


def fingerprint(value: Any) -> str:
    """A short SHA-256 digest of bytes, a NumPy array, or anything JSON can write (keys sorted).

    >>> fingerprint({"b": 1, "a": [2]}) == fingerprint({"a": [2], "b": 1})
    True
    """
    if isinstance(value, np.ndarray):
        data = value.tobytes() + str((value.dtype, value.shape)).encode()
    elif isinstance(value, bytes):
        data = value
    else:
        data = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:16]


def items_fingerprint(items: Sequence[tuple[Sequence[int], int | None]]) -> str:
    """:func:`fingerprint` of encoded ``(ids, label)`` items, fast for large data."""
    lengths = np.fromiter((len(ids) for ids, _ in items), dtype=np.int64, count=len(items))
    ids = np.fromiter(itertools.chain.from_iterable(ids for ids, _ in items), dtype=np.int64)
    labels = np.array([-1 if label is None else label for _, label in items], dtype=np.int64)
    return fingerprint(b"".join(fingerprint(a).encode() for a in (lengths, ids, labels)))


# ---------------------------------------------------------------------------------------------------
# sharding every batch across the ranks
# ---------------------------------------------------------------------------------------------------
@dataclass
class Shard:
    """One rank's rows of a global batch."""

    batch: Any  # the collated rows
    weight: float  # rows × world size / batch rows; 0 for a stand-in row on a rank that got none


class ShardedBatches(BatchLoader):
    """This rank's share of every batch: rows ``rank, rank + W, …`` of each index list of ``sampler``.

    Every rank iterates the same global batches (the same ``sampler`` with the same seed), so every rank
    has the same number of steps in every epoch, the ranks' rows are disjoint, and every example is seen
    once per epoch across the ranks. A batch with fewer rows than ranks gives the ranks without a row a
    stand-in row of weight 0, so they still take part in the step.

    Args:
        items: the encoded examples, indexable.
        sampler: yields lists of indices (the *global* batches); ``len()``; ``set_epoch(epoch)`` if it
            shuffles (e.g. :class:`rnnkit.data.BucketBatchSampler`).
        collate_fn: turns a list of items into one batch.
        num_replicas: W, the number of ranks.
        rank: this rank, ``0 … W - 1``.

    Yields:
        :class:`Shard` objects.
    """

    def __init__(
        self,
        items: Sequence[Any],
        sampler: Iterable[list[int]],
        collate_fn: Callable[[list], Any],
        *,
        num_replicas: int,
        rank: int,
    ):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in 0..{num_replicas - 1} (num_replicas ≥ 1), got {rank}")
        super().__init__(items, sampler, collate_fn)  # set_epoch and len() as for one process
        self.num_replicas = num_replicas
        self.rank = rank

    def __iter__(self):
        for indices in self.sampler:
            mine = list(indices[self.rank :: self.num_replicas])
            weight = len(mine) * self.num_replicas / len(indices)
            if not mine:  # a batch smaller than the number of ranks: stay in step, count for nothing
                mine, weight = list(indices[:1]), 0.0
            yield Shard(self.collate_fn([self.items[i] for i in mine]), weight)


class ShardedTask(Task):
    """A task over :class:`Shard` batches: the wrapped task's loss, weighted so that DDP's gradient average
    is the gradient of the whole batch's mean loss.

    Args:
        task: the task that turns a batch into a mean loss (e.g. ``ClassificationTask``).
    """

    def __init__(self, task: Task):
        self.task = task
        self.monitor = task.monitor
        self.higher_is_better = task.higher_is_better

    def loss(self, model: nn.Module, batch: Shard, carry: Any) -> tuple[torch.Tensor, Any, dict[str, float]]:
        """The wrapped task's loss on this rank's rows × the shard's weight; a stand-in row's stats are 0."""
        loss, carry, stats = self.task.loss(model, batch.batch, carry)
        if batch.weight == 0.0:
            stats = dict.fromkeys(stats, 0)
        return loss * batch.weight, carry, stats

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """The wrapped task's evaluation (validation batches are not sharded)."""
        return self.task.evaluate(model, batches)


def check_world_size(world_size: int, batch_size: int, examples: int | None = None) -> None:
    """Raise :class:`ConfigError` unless every rank can have a row of a full batch.

    >>> check_world_size(4, batch_size=2)
    Traceback (most recent call last):
    ...
    rnnkit.errors.ConfigError: 4 processes need a batch of at least 4 examples (--batch-size is the global ...
    """
    if world_size > batch_size:
        raise ConfigError(
            f"{world_size} processes need a batch of at least {world_size} examples (--batch-size is the "
            f"global batch, shared out among the processes), got --batch-size {batch_size}"
        )
    if examples is not None and world_size > examples:
        raise ConfigError(
            f"{world_size} processes need at least {world_size} training examples, got {examples}"
        )


# ---------------------------------------------------------------------------------------------------
# launching on one machine (rnnkit train --nproc N)
# ---------------------------------------------------------------------------------------------------
def launch(
    nproc: int, args: Sequence[str], *, module: str = "rnnkit", errors: list[str] | None = None
) -> int:
    """Run ``python -m <module> <args>`` as ``nproc`` processes on this machine and wait for them.

    The same as ``torchrun --standalone --nproc-per-node <nproc> -m <module> <args>`` (torch's own
    launcher, started in this process): a free local port, ``RANK``/``WORLD_SIZE``/… set for each
    process, all of them stopped when one fails.

    Args:
        nproc: the number of processes (≥ 1).
        args: the module's command-line arguments, e.g. ``["train", "--data", "news.csv"]``.
        module: the module to run.
        errors: if given, the error lines of the process that failed first are appended to it when that
            process is not rank 0 (rank 0 writes to the terminal itself; the others' stderr is kept aside,
            so that N processes failing alike print one line, not N).

    Returns:
        0 when every process succeeded, else the exit code of the first one that failed.

    Raises:
        ConfigError: ``nproc`` < 1, or this process is itself one of several already.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise ConfigError(f"--nproc must be ≥ 1, got {nproc}")
    if torchrun_env() is not None:
        raise ConfigError(
            "this process is already one of several (WORLD_SIZE is set); leave out --nproc under torchrun"
        )
    # Every process would print the same error: rank 0 alone writes to the terminal, the others' stderr
    # goes to files that are shown only when one of them, not rank 0, failed first. torch's launcher logs
    # (E/W lines about the failed child) are silenced: the child's own one line says what went wrong.
    with tempfile.TemporaryDirectory(prefix="rnnkit-launch-") as logs, _quiet_launcher():
        quiet = ",".join(f"{rank}:2" for rank in range(1, nproc))
        redirects = ["--redirects", quiet] if quiet else []
        options = parse_args(
            ["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "--log-dir", logs, *redirects,
             "--module", module, *args]
        )  # fmt: skip
        with _omp_threads(max(1, (os.cpu_count() or 1) // nproc)):
            try:
                run(options)
            except ChildFailedError as e:
                rank, failure = e.get_first_failure()
                if 0 not in e.failures and errors is not None:  # rank 0 failing has said why itself
                    errors.extend(_error_lines(Path(logs), rank))
                return failure.exitcode if failure.exitcode > 0 else 1
    return 0


def _error_lines(logs: Path, rank: int) -> list[str]:
    """The ``rnnkit: error:`` lines of a process other than rank 0 (its stderr went to a file)."""
    seen = []
    for path in sorted(logs.rglob("stderr.log")):
        if path.parent.name != str(rank):
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("rnnkit: error:") and line not in seen:
                seen.append(line)
    return seen or [f"rnnkit: error: process {rank} failed without a message"]


@contextlib.contextmanager
def _quiet_launcher():
    """Silence torch's elastic launcher's own log lines while it runs."""
    import logging

    loggers = [logging.getLogger(n) for n in ("torch.distributed.elastic", "torch.distributed.run")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _omp_threads(threads: int):
    """Set ``OMP_NUM_THREADS`` for the launched processes (unless the user did), restoring it afterwards."""
    saved = os.environ.get("OMP_NUM_THREADS")
    if saved is None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)


__all__ = [
    "Distributed",
    "Shard",
    "ShardedBatches",
    "ShardedTask",
    "TorchrunEnv",
    "check_world_size",
    "current",
    "fingerprint",
    "init",
    "is_main_process",
    "items_fingerprint",
    "launch",
    "torchrun_env",
]
