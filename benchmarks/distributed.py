"""Data-parallel throughput on this machine: one process × 2 threads against 2 processes × 1 thread.

Every configuration trains the same classifier (the ``default`` preset: bidirectional GRU, bucketed
batches) for the same number of steps with the same global batch, each through the ``rnnkit train``
command in fresh processes (``--nproc 2`` for two processes, which runs torch's launcher, gloo on the
CPU). Tokens per second come from each run's ``report.json``: real (non-padding) tokens of all processes
together over training time, evaluation excluded. With the same steps, seed and global batch, the two
layouts train the same model up to rounding and dropout masks, so their accuracies should be close too.

Also measured: one process × 1 thread (what each of the two processes has), and, where CUDA is
available, one process on one GPU for reference.

    python benchmarks/distributed.py            # AG News subset, 150 steps a run (minutes; run it alone)
    python benchmarks/distributed.py --quick    # a smoke run on tiny generated data

Results go to ``benchmarks/results/distributed.json`` (``--quick``: ``distributed_quick.json``) and a
Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "ag_news"
RESULTS = ROOT / "benchmarks" / "results"
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def layouts(gpu: bool) -> list[dict]:
    """The configurations to time: name, processes, threads per process, device."""
    runs = [
        {"name": "1 process × 2 threads", "nproc": 1, "threads": 2, "device": "cpu"},
        {"name": "2 processes × 1 thread", "nproc": 2, "threads": 1, "device": "cpu"},
        {"name": "1 process × 1 thread", "nproc": 1, "threads": 1, "device": "cpu"},
    ]
    if gpu:
        runs.append({"name": "1 process, 1 GPU", "nproc": 1, "threads": 2, "device": "cuda"})
    return runs


def tiny_data(folder: Path, rows: int = 400) -> tuple[Path, Path]:
    """Generated two-class data for ``--quick`` (so the smoke run needs no downloaded files)."""
    rng = random.Random(0)
    words = {"a": ["goal", "team", "match", "cup", "coach"], "b": ["chip", "code", "cloud", "data", "server"]}
    paths = []
    for name, n in (("train", rows), ("test", rows // 4)):
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "text"])
            for i in range(n):
                label = "ab"[i % 2]
                text = rng.choices(words[label] + ["the", "new"], k=rng.randint(3, 30))
                writer.writerow([label, " ".join(text)])
        paths.append(path)
    return paths[0], paths[1]


def train(layout: dict, train_spec: Path, test_spec: Path, out: Path, steps: int, options: list[str]) -> dict:
    """One ``rnnkit train`` command; its report and wall time."""
    command = [sys.executable, "-m", "rnnkit", "train", "--preset", "default", "--data", str(train_spec),
               "--test", str(test_spec), "--out", str(out), "--max-steps", str(steps),
               "--time-budget", "3600", "--threads", str(layout["threads"]), "--device", layout["device"],
               *options]  # fmt: skip
    if layout["nproc"] > 1:
        command += ["--nproc", str(layout["nproc"])]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["OMP_NUM_THREADS"] = str(layout["threads"])
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{layout['name']} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    return {
        **layout,
        "tokens_per_s": report["tokens_per_s"],
        "train_seconds": report["train_seconds"],
        "wall_seconds": round(wall, 2),
        "steps": report["steps"],
        "accuracy": report["accuracy"],
        "device_report": report["device"],
    }


def table(results: dict) -> str:
    base = results["runs"][0]["tokens_per_s"]
    lines = ["| layout | tokens/s | vs 1 × 2 threads | train s | wall s | steps | test accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results["runs"]:
        speed = f"{r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / base:.2f}×"
        times = f"{r['train_seconds']:.1f} | {r['wall_seconds']:.1f}"
        lines.append(f"| {r['name']} | {speed} | {times} | {r['steps']} | {r['accuracy']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny generated data, a few steps")
    parser.add_argument("--steps", type=int, help="optimizer steps per run [150; --quick: 10]")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU run even where CUDA is available")
    args = parser.parse_args()
    steps = args.steps or (10 if args.quick else 150)
    gpu = torch.cuda.is_available() and not args.no_gpu
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.quick:
            train_spec, test_spec = tiny_data(tmp)
            options = ["--batch-size", "16", "--hidden-dim", "16", "--embed-dim", "16"]
        else:
            train_spec, test_spec = DATA / "train_subset.csv", DATA / "test.csv"
            if not train_spec.is_file():
                raise SystemExit(f"{train_spec} not found (see ../shared/datasets/README.md)")
            options = []
        runs = [train(layout, train_spec, test_spec, tmp / f"run{i}", steps, options)
                for i, layout in enumerate(layouts(gpu))]  # fmt: skip
    results = {
        "benchmark": "distributed",
        "quick": args.quick,
        "data": "generated" if args.quick else str(train_spec.relative_to(ROOT.parent)),
        "steps": steps,
        "preset": "default",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if gpu else None,
        },
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("distributed_quick.json" if args.quick else "distributed.json")
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
