"""What the fuzz tests share: tiny trained runs, an in-process CLI call, and the refusal contract.

The contract for a bad input (DESIGN.md, exit codes): exit code 2, exactly one line on stderr starting
``rnnkit: error:``, no traceback, and nothing existing harmed — a run folder is byte-identical afterwards.
"""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path

from click.testing import CliRunner

from rnnkit.cli import cli

PROGRESS = ("data: ",)  # informational lines `train` prints once the data is read
TINY = dict(embed_dim=8, hidden_dim=8, batch_size=16, epochs=1, lr=0.01, seed=0, threads=1, device="cpu")


def invoke(args: list[str], input: str | None = None):
    """Run ``rnnkit ARGS`` in this process; returns click's Result (exit_code, stdout, stderr, exception)."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=True)


def refused(result, code: int = 2) -> str | None:
    """None if ``result`` honours the refusal contract, else what is wrong (for the assertion message)."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        return f"raised {type(result.exception).__name__}: {result.exception}\n{trace[-3000:]}"
    # Progress lines the command printed before it failed (the data summary) are not the error message.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith(PROGRESS)]
    problems = []
    if result.exit_code != code:
        problems.append(f"exit code {result.exit_code}, expected {code}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected 1")
    elif not lines[0].startswith("rnnkit: error: "):
        problems.append("stderr does not start with 'rnnkit: error: '")
    if "Traceback" in result.stderr or "Traceback" in result.output:
        problems.append("a traceback was printed")
    if problems:
        return "; ".join(problems) + f"\nstderr: {result.stderr[-2000:]!r}\nstdout: {result.stdout[-500:]!r}"
    return None


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def restore(folder: Path, files: dict[str, bytes | None]) -> None:
    """Put ``folder`` back as :func:`snapshot` saw it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, content in files.items():
        path = folder / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def copy_run(src: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    return dest
