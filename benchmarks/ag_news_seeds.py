"""The lesson presets against the notebook's loop over many seeds: paired accuracies and their spread.

One seed says little here: the unpacked LSTM reads its padding and learns slowly, so after 3 epochs its
test accuracy ranges from 0.5 to 0.8 with the seed alone (initialisation and batch order), in the
notebook's loop as in rnnkit. This runs ``benchmarks/ag_news.py --seed S`` for each seed, one process at a
time (run it alone), keeps each seed's JSON in ``results/ag_news_seeds/MODELS/`` (a rerun skips seeds
already measured), and prints, per
model, both runs' test accuracy for every seed, their means and medians, how often rnnkit is ahead, and
the paired difference with its standard error.

    python benchmarks/ag_news_seeds.py --models lstm --seeds 0-20
    python benchmarks/ag_news_seeds.py --models rnn,lstm,lstm-packed --seeds 0-4 --summary-only
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


def run_seed(models: str, seed: int, out: Path) -> None:
    command = [sys.executable, str(HERE / "ag_news.py"), "--skip", "default", "--models", models]
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


def summarize(models: list[str], seeds: list[int], folder: Path) -> dict[str, dict]:
    summary = {}
    for model in models:
        rows = []
        for seed in seeds:
            path = folder / f"seed{seed}.json"
            if not path.is_file():
                continue
            runs = json.loads(path.read_text())["runs"]
            notebook, ours = runs.get(f"notebook {model}"), runs.get(f"rnnkit {PRESET[model]}")
            if notebook and ours:
                rows.append((seed, notebook["accuracy"], ours["accuracy"]))
        if not rows:
            continue
        print(f"\n{PRESET[model]} (notebook loop vs rnnkit preset, test accuracy after 3 epochs)\n")
        print("| seed | notebook | rnnkit | difference |\n|---|---|---|---|")
        for seed, a, b in rows:
            print(f"| {seed} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
        stats = paired(rows)
        print(
            f"\n{stats['seeds']} seeds: mean {stats['notebook_mean']:.4f} vs {stats['rnnkit_mean']:.4f}, "
            f"median {stats['notebook_median']:.4f} vs {stats['rnnkit_median']:.4f}, rnnkit ahead on "
            f"{stats['rnnkit_ahead']}; paired difference {stats['mean_difference']:+.4f} "
            f"± {stats['standard_error']:.4f} (standard error)"
        )
        summary[model] = {**stats, "rows": rows}
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lstm", help="rnn, lstm, lstm-packed (comma-separated)")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("0-8"), help="e.g. 0-20 or 0,3,5")
    parser.add_argument("--dir", type=Path, help="per-seed JSON (default: results/ag_news_seeds/MODELS)")
    parser.add_argument("--summary-only", action="store_true", help="only summarize the seeds measured")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    args.dir = args.dir or HERE / "results" / "ag_news_seeds" / "+".join(models)
    args.dir.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        for seed in args.seeds:
            out = args.dir / f"seed{seed}.json"
            if not out.is_file():
                run_seed(args.models, seed, out)
    summary = summarize(models, args.seeds, args.dir)
    (args.dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
