# ruff: noqa: E501
"""Reliability sweep (issue 16): the fuzz suite's hostile and careless inputs, tallied by outcome.

Runs ``tests/test_fuzz_*.py`` under pytest (a time cap stands for "no hangs") and sorts every case by what
happened: the contract kept (a bad input refused with exit 2, one line, nothing harmed — for the server, a
4xx; an extreme but valid one, such as ``--temperature 1e308``, accepted and working), a traceback, a wrong success (exit 0 on bad input), a run folder harmed, a hang, or another failure. The kinds
of input are those of the issue's 447-input sweep: bad option values, sizes that cannot be allocated,
damaged data and config files, tampered run folders, output places that cannot be written, hostile HTTP
clients, SIGKILL during training.

Writes ``benchmarks/results/reliability.json`` and prints a Markdown table (by area).

Usage:
    python benchmarks/reliability.py [--timeout 900]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

from rnnkit._io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
FILES = ["tests/test_fuzz_cli.py", "tests/test_fuzz_data.py", "tests/test_fuzz_serve.py", "tests/test_fuzz_resume.py"]
AREAS = [  # (pattern in "file::test name", area), first match wins
    ("test_fuzz_resume", "SIGKILL + resume"),
    ("test_fuzz_serve", "server (HTTP clients)"),
    ("test_fuzz_data", "data files + guards"),
    ("tampered", "tampered run folders"),
    ("another_models_trainer_state", "tampered run folders"),
    ("serve_refuses", "serve options"),
    ("nproc", "train --nproc"),
    ("wrong_kind_of_run", "wrong kind of run"),
    ("found_by_probing", "found by probing (argv surrogates, --max-len 1)"),
    ("inspect", "inspect"),
    ("export", "export"),
    ("generate", "generate"),
    ("predict", "predict"),
    ("eval", "eval"),
    ("train", "train"),
]
OUTCOMES = ["contract kept", "traceback", "wrong success", "run harmed", "hang", "other failure"]


def area(name: str) -> str:
    return next((label for pattern, label in AREAS if pattern in name), "other")


def outcome(case: ET.Element) -> str:
    failure = case.find("failure")
    if failure is None:
        failure = case.find("error")
    if failure is None:
        return "contract kept"
    text = (failure.get("message") or "") + (failure.text or "")
    if re.search(r"exit code 0, expected 2", text):
        return "wrong success"
    if "changed a run" in text:
        return "run harmed"
    if "raised " in text or "Traceback" in text:
        return "traceback"
    if "Timeout" in text or "timed out" in text:
        return "hang"
    return "other failure"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timeout", type=float, default=900, help="seconds for the whole sweep (beyond: a hang)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/reliability.json")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        start = time.perf_counter()
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *FILES]
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
            hung = False
        except subprocess.TimeoutExpired:
            done, hung = None, True
        seconds = time.perf_counter() - start
        cases = list(ET.parse(report).getroot().iter("testcase")) if report.is_file() else []

    table: dict[str, Counter] = defaultdict(Counter)
    failures = []
    for case in cases:
        if case.find("skipped") is not None:
            continue
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        result = outcome(case)
        table[area(name)][result] += 1
        if result != "contract kept":
            failures.append({"case": name, "outcome": result})
    if hung:
        table["(sweep)"]["hang"] += 1

    totals = Counter()
    for counts in table.values():
        totals.update(counts)
    lines = ["| area | cases | " + " | ".join(OUTCOMES) + " |", "|---|---:|" + "---:|" * len(OUTCOMES)]
    for name in sorted(table, key=lambda a: [label for _, label in AREAS].index(a) if a in dict(AREAS).values() else 99):
        counts = table[name]
        lines.append(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    lines.append(f"| **all** | **{sum(totals.values())}** | " + " | ".join(f"**{totals[o]}**" for o in OUTCOMES) + " |")
    result = {
        "benchmark": "reliability",
        "files": FILES,
        "seconds": round(seconds, 1),
        "pytest_exit_code": None if done is None else done.returncode,
        "hung": hung,
        "areas": {name: dict(counts) for name, counts in table.items()},
        "totals": dict(totals),
        "failures": failures,
        "note": "a Hypothesis test counts as one case here; it tries up to its max_examples inputs",
    }
    atomic_write_json(args.out, result)
    print("\n".join(lines))
    print(f"\n{sum(totals.values())} cases in {seconds:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
