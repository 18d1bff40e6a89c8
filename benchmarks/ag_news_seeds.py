"""The lesson presets against the notebook's loop over many seeds: paired accuracies and their spread.

One seed says little here: the unpacked LSTM reads its padding and learns slowly, so after 3 epochs its
test accuracy ranges from 0.5 to 0.8 with the seed alone (initialisation and batch order), in the
notebook's loop as in rnnkit. This runs ``benchmarks/ag_news.py --seed S`` for each seed, one process at a
time (run it alone), keeps each seed's JSON in ``results/ag_news_seeds/MODELS/`` (a rerun skips seeds
already measured), and prints, per model, both runs' test accuracy for every seed, their means and
medians, how often rnnkit is ahead, and the paired difference with its standard error.

    python benchmarks/ag_news_seeds.py --models lstm --seeds 0-20
    python benchmarks/ag_news_seeds.py --models lstm-packed --seeds 0-4
    # the notebook loop on another random stream: its embedding drawn once, as rnnkit draws it, so each
    # seed starts from rnnkit's initial weights; compared with the rnnkit runs measured above
    python benchmarks/ag_news_seeds.py --models lstm --seeds 0-20 --notebook-draw once --skip lesson \
        --rnnkit-from benchmarks/results/ag_news_seeds/lstm
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRESET = {"rnn": "lesson-rnn", "lstm": "lesson-lstm", "lstm-packed": "lesson-lstm-packed"}


def seed_range(text: str) -> list[int]:
    """``"0-4,7"`` → ``[0, 1, 2, 3, 4, 7]``."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def run_seed(models: str, seed: int, out: Path, extra: list[str]) -> None:
    command = [sys.executable, str(HERE / "ag_news.py"), "--skip", "default", "--models", models, *extra]
    subprocess.run([*command, "--seed", str(seed), "--out", str(out)], check=True)


def paired(rows: list[tuple[int, float, float]]) -> dict[str, float]:
    """Means, medians, wins and the mean paired difference (rnnkit − notebook) with its standard error."""
    notebook, ours = [r[1] for r in rows], [r[2] for r in rows]
    diffs = [b - a for a, b in zip(notebook, ours, strict=True)]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return {
        "seeds": len(rows),
        "notebook_mean": statistics.fmean(notebook),
        "rnnkit_mean": statistics.fmean(ours),
        "notebook_median": statistics.median(notebook),
        "rnnkit_median": statistics.median(ours),
        "rnnkit_ahead": sum(d > 0 for d in diffs),
        "mean_difference": statistics.fmean(diffs),
        "standard_error": se,
    }


def accuracy(folder: Path, seed: int, run: str) -> float | None:
    path = folder / f"seed{seed}.json"
    found = json.loads(path.read_text())["runs"].get(run) if path.is_file() else None
    return found and found["accuracy"]


def summarize(models: list[str], seeds: list[int], folder: Path, rnnkit_from: Path | None) -> dict[str, dict]:
    summary = {}
    for model in models:
        rows = []
        for seed in seeds:
            notebook = accuracy(folder, seed, f"notebook {model}")
            ours = accuracy(rnnkit_from or folder, seed, f"rnnkit {PRESET[model]}")
            if notebook is not None or ours is not None:
                rows.append((seed, notebook, ours))
        if not rows:
            continue
        print(f"\n{PRESET[model]}: test accuracy after 3 epochs ({folder.name})\n")
        print("| seed | notebook loop | rnnkit preset | difference |\n|---|---|---|---|")
        for seed, a, b in rows:
            cells = [f"{v:.4f}" if v is not None else "" for v in (a, b)]
            difference = f"{b - a:+.4f}" if a is not None and b is not None else ""
            print(f"| {seed} | {cells[0]} | {cells[1]} | {difference} |")
        both = [r for r in rows if r[1] is not None and r[2] is not None]
        if both:
            stats = paired(both)
            print(
                f"\n{stats['seeds']} seeds: mean {stats['notebook_mean']:.4f} vs {stats['rnnkit_mean']:.4f}, "
                f"median {stats['notebook_median']:.4f} vs {stats['rnnkit_median']:.4f}, rnnkit ahead on "
                f"{stats['rnnkit_ahead']}; paired difference {stats['mean_difference']:+.4f} "
                f"± {stats['standard_error']:.4f} (standard error)"
            )
        else:
            values = [a if a is not None else b for _, a, b in rows]
            stats = {
                "seeds": len(values),
                "mean": statistics.fmean(values),
                "median": statistics.median(values),
            }
            print(f"\n{stats['seeds']} seeds: mean {stats['mean']:.4f}, median {stats['median']:.4f}")
        summary[model] = {**stats, "rows": rows}
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lstm", help="rnn, lstm, lstm-packed (comma-separated)")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-8"), help="e.g. 0-20 or 0,3,5")
    parser.add_argument("--dir", type=Path, help="per-seed JSON (default: results/ag_news_seeds/MODELS)")
    parser.add_argument("--summary-only", action="store_true", help="only summarize the seeds measured")
    parser.add_argument(
        "--notebook-draw",
        choices=["notebook", "once"],
        default="notebook",
        help="passed to ag_news.py; 'once' measures the notebook loop on another random stream",
    )
    parser.add_argument(
        "--skip", default="", help="passed to ag_news.py (e.g. lesson: the notebook loop only)"
    )
    parser.add_argument("--rnnkit-from", type=Path, help="take the rnnkit runs from this folder of seeds")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    suffix = "-draw-once" if args.notebook_draw == "once" else ""
    args.dir = args.dir or HERE / "results" / "ag_news_seeds" / ("+".join(models) + suffix)
    extra = ["--notebook-draw", args.notebook_draw] + (
        ["--skip", f"default,{args.skip}"] if args.skip else []
    )
    args.dir.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        for seed in args.seeds:
            out = args.dir / f"seed{seed}.json"
            if not out.is_file():
                run_seed(args.models, seed, out, extra)
    summary = summarize(models, args.seeds, args.dir, args.rnnkit_from)
    (args.dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
