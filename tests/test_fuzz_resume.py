"""SIGKILL at any moment, then ``--resume``: the final weights are bit-identical to an uninterrupted run's and
no temporary file is left behind (issue 16).

Training runs in a subprocess that is killed either after a random delay or exactly inside a file write
(between writing the temporary file and renaming it over the target — the worst moment for a checkpoint).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

import rnnkit
from tiny_text import texts, write_csv

SETTINGS = dict(embed_dim=8, hidden_dim=8, batch_size=8, epochs=3, eval_every=2, lr=0.01, seed=3, threads=1,
                device="cpu")  # fmt: skip

# Runs the command line; with KILL_AT_FSYNC=N it SIGKILLs itself in the N-th fsync, i.e. inside an atomic
# write, after the temporary file is written and before it replaces the target.
DRIVER = """
import os, signal, sys
n = int(os.environ.get("KILL_AT_FSYNC", "0"))
if n:
    real, count = os.fsync, [0]
    def fsync(fd):
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(fd)
    os.fsync = fsync
from rnnkit.cli import main
main(sys.argv[1:])
"""


def _args(data: Path, out: Path, resume: bool) -> list[str]:
    args = ["train", "--out", str(out)]
    if resume:
        return [*args, "--resume"]
    args += ["--data", str(data), "--preset", "lesson-rnn"]
    for key, value in SETTINGS.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args


def _run(driver: Path, args: list[str], kill_at_fsync: int = 0, kill_after: float | None = None) -> int:
    env = {**os.environ, "KILL_AT_FSYNC": str(kill_at_fsync), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(driver), *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    if kill_after is not None:
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    if process.returncode not in (0, -signal.SIGKILL, 2):
        raise AssertionError(f"exit {process.returncode}: {err.decode()[-2000:]}")
    return process.returncode


@pytest.mark.parametrize("seed", [0])
def test_sigkill_anywhere_then_resume_gives_identical_weights(tmp_path, seed):
    rng = random.Random(seed)
    data = write_csv(tmp_path / "train.csv", texts(60, seed=5))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    reference = rnnkit.train(data, preset="lesson-rnn", out=tmp_path / "reference", **SETTINGS)

    out = tmp_path / "run"
    kills = 0
    for attempt in range(4):  # killed up to four times, at a write or at a random moment
        resume = (out / "trainer_state.pt").is_file() and (out / "config.json").is_file()
        if attempt % 2 == seed % 2:
            code = _run(driver, _args(data, out, resume), kill_at_fsync=rng.randint(1, 14))
        else:
            code = _run(driver, _args(data, out, resume), kill_after=rng.uniform(2.0, 6.0))
        kills += code == -signal.SIGKILL
        if code == 0:
            break
    if not (out / "report.json").is_file() or kills == 4:
        resume = (out / "trainer_state.pt").is_file() and (out / "config.json").is_file()
        assert _run(driver, _args(data, out, resume)) == 0
    assert kills >= 1, "no run was killed: the test proved nothing"

    expected, found = load_file(reference / "model.safetensors"), load_file(out / "model.safetensors")
    assert expected.keys() == found.keys()
    for name in expected:
        assert (expected[name] == found[name]).all(), f"{name} differs after kill and resume"
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def test_a_killed_write_leaves_a_temp_file_that_the_next_start_removes(tmp_path):
    """Kill inside the first checkpoint write: the temp file stays (a killed process cannot clean up);
    resuming or restarting removes it."""
    data = write_csv(tmp_path / "train.csv", texts(60, seed=5))
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "run"
    for n in range(1, 12):  # find the first fsync that leaves a temp file behind
        code = _run(driver, _args(data, out, resume=False), kill_at_fsync=n)
        if code == -signal.SIGKILL and any(p.name.endswith(".tmp") for p in out.iterdir()):
            break
    else:
        pytest.fail("no kill left a temp file")
    resume = (out / "trainer_state.pt").is_file()
    start = time.monotonic()
    assert _run(driver, _args(data, out, resume)) == 0
    assert time.monotonic() - start < 120
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
