"""Tiny Shakespeare: validation bits per character against training seconds, and generation speed.

Trains character language models on ``../shared/datasets/tinyshakespeare/train.txt`` and validates on
``val.txt`` (1,003,854 / 111,540 characters), each within the same time budget (600 s by default), on 2 CPU
threads:

* **small** — one LSTM layer of 128 units (the ``char-lm`` preset otherwise);
* **default** — the ``char-lm`` preset itself, what ``rnnkit train --task lm`` trains: 2 LSTM layers of 256.

The validation curve of each (``valid_bpc`` at every evaluation, against wall seconds since training began,
evaluation included) is drawn in ``docs/img/shakespeare_bpc.png`` with the target line (2.35 bits/character).

Generation, with the default model: characters per second for 2,000 characters, and the cost per character at
2,000 against the cost at 200 (target ≤ 1.2×: the state is stepped, the prefix never recomputed). The baseline
from the same run is a generator that re-runs the whole prefix for every new character, as a stateless
sequence model must; its cost per character grows with the text. A sample of the default model's text
(prime ``ROMEO:``, temperature 0.8) closes the output.

    python benchmarks/shakespeare.py            # the full run: about 2 × 600 s of training; run it alone
    python benchmarks/shakespeare.py --quick    # a smoke run on a slice of the data (about a minute)

Results go to ``benchmarks/results/shakespeare.json`` (``shakespeare_quick.json`` and a plot beside it for
``--quick``) and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

import rnnkit
from rnnkit._io import atomic_write_json
from rnnkit.generate import sample_next

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "tinyshakespeare"
TARGET_BPC = 2.35
SIZES = {  # name → settings on top of the char-lm preset
    "small": dict(layers=1, hidden_dim=128),
    "default": dict(),
    "large": dict(layers=1, hidden_dim=512),  # not run unless asked for (--sizes small default large)
}


def train_size(name: str, train: Path, valid: Path, out: Path, args) -> dict:
    """Train one size within the budget; return its curve and final numbers from the run folder."""
    settings = dict(SIZES[name], time_budget=args.budget, threads=args.threads, device=args.device)
    if args.quick:
        settings.update(eval_every=10)
    run = rnnkit.train(train, valid=str(valid), preset="char-lm", out=out / name, seed=args.seed, **settings)
    report = json.loads((run / "report.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["elapsed_s"], r["valid_bpc"]) for r in records]
    reached = next((s for s, bpc in curve if bpc <= TARGET_BPC), None)
    print(f"{name}: {report['bpc']:.3f} bpc after {report['train_seconds']:.0f} s", flush=True)
    return {
        "run": str(run),
        "settings": {k: v for k, v in SIZES[name].items()},
        "parameters": report["parameters"],
        "valid_bpc": round(report["bpc"], 4),
        "valid_loss": round(report["loss"], 4),
        "train_seconds": report["train_seconds"],
        "steps": report["steps"],
        "epochs": report["epochs"],
        "tokens_per_s": report["tokens_per_s"],
        "seconds_to_target": reached,
        "curve": curve,
    }


def time_stepped(lm, length: int, repeats: int) -> float:
    """Fastest of ``repeats`` wall times to generate ``length`` characters with the state stepped."""
    best = float("inf")
    for seed in range(repeats):
        start = time.perf_counter()
        text = "".join(lm.stream("", length, seed=seed))
        best = min(best, time.perf_counter() - start)
        if len(text) != length:
            raise RuntimeError(f"asked for {length} characters, got {len(text)}")
    return best


@torch.inference_mode()
def time_recomputed(lm, length: int) -> float:
    """Wall time to generate ``length`` tokens re-running the whole prefix at every step (the baseline)."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.tensor([lm.encoder.encode("\n")], device=lm.device)  # (1, 1)
    start = time.perf_counter()
    for _ in range(length):
        logits, _ = lm.model(ids)  # the state is thrown away: the whole prefix runs again
        next_id = sample_next(logits[:, -1].float(), generator=generator)
        ids = torch.cat([ids, next_id[:, None]], dim=1)
    return time.perf_counter() - start


def generation(lm, args) -> dict:
    """Characters/s and µs per character of stepped generation, and of the re-run-the-prefix baseline."""
    time_stepped(lm, 50, 1)  # warm-up
    stepped = {n: time_stepped(lm, n, args.repeats) / n for n in (200, 2000)}
    base_long = 400 if args.quick else 1000
    recomputed = {n: time_recomputed(lm, n) / n for n in (200, base_long)}
    return {
        "chars_per_s_2000": round(1 / stepped[2000], 1),
        "cost_ratio_2000_vs_200": round(stepped[2000] / stepped[200], 3),
        "us_per_char": {str(n): round(1e6 * t, 1) for n, t in stepped.items()},
        "baseline_us_per_char": {str(n): round(1e6 * t, 1) for n, t in recomputed.items()},
        "baseline_cost_ratio": round(recomputed[base_long] / recomputed[200], 3),
    }


def plot(sizes: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in sizes.items():
        seconds, bpc = zip(*r["curve"], strict=True)
        ax.plot(seconds, bpc, "-o", markersize=3, label=f"{name} ({r['parameters']:,} parameters)")
    ax.axhline(TARGET_BPC, color="gray", linestyle="--", linewidth=1, label=f"target {TARGET_BPC} bpc")
    ax.set(xlabel="training seconds (wall, evaluation included)", ylabel="validation bits per character",
           title="Tiny Shakespeare, character LSTM, 2 CPU threads")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def slices(data_dir: Path, tmp: Path, quick: bool) -> tuple[Path, Path]:
    """The train and validation files; for ``--quick``, their first 200,000 / 20,000 characters."""
    train, valid = data_dir / "train.txt", data_dir / "val.txt"
    if not quick:
        return train, valid
    small_train, small_valid = tmp / "train.txt", tmp / "val.txt"
    small_train.write_text(train.read_text(encoding="utf-8")[:200_000], encoding="utf-8")
    small_valid.write_text(valid.read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    return small_train, small_valid


def table(result: dict) -> str:
    lines = [
        "| model | parameters | valid bpc | seconds | steps | epochs | tokens/s | seconds to ≤ 2.35 bpc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["sizes"].items():
        reached = "—" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.0f}"
        cells = [name, f"{r['parameters']:,}", f"{r['valid_bpc']:.3f}", f"{r['train_seconds']:.0f}",
                 f"{r['steps']:,}", f"{r['epochs']:.2f}", f"{r['tokens_per_s']:,.0f}", reached]
        lines.append("| " + " | ".join(cells) + " |")
    g = result["generation"]
    stepped, base = g["us_per_char"], g["baseline_us_per_char"]
    lengths = sorted({*stepped, *base}, key=int)
    lines += ["", "| generation (default model) | stepped state | re-run prefix (baseline) |"]
    lines += ["|---|---:|---:|"]
    lines += [f"| µs per character, {int(n):,} characters | {stepped.get(n, '—')} | {base.get(n, '—')} |"
              for n in lengths]  # fmt: skip
    longest = max(base, key=int)
    lines.append(f"| cost per character: 2,000 vs 200 (stepped), {int(longest):,} vs 200 (baseline) | "
                 f"{g['cost_ratio_2000_vs_200']}× | {g['baseline_cost_ratio']}× |")  # fmt: skip
    lines.append(f"| characters/s at 2,000 | {g['chars_per_s_2000']:,.0f} | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a slice of the data, 15 s per size")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="folder with train.txt and val.txt")
    parser.add_argument("--budget", type=float, help="training seconds per size (600; --quick: 15)")
    parser.add_argument("--sizes", nargs="+", default=["small", "default"], choices=list(SIZES))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="generation timings; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    args.budget = args.budget or (15.0 if args.quick else 600.0)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        train, valid = slices(args.data_dir, Path(tmp), args.quick)
        sizes = {name: train_size(name, train, valid, out, args) for name in args.sizes}
        main_size = "default" if "default" in sizes else args.sizes[0]
        lm = rnnkit.load(sizes[main_size].pop("run") if args.keep is None else sizes[main_size]["run"],
                         device=args.device)
        torch.set_num_threads(args.threads)  # training restored the previous thread count; keep ours
        gen = generation(lm, args)
        sample = lm.generate("ROMEO:", 500, temperature=0.8, seed=args.seed)

    result = {
        "benchmark": "shakespeare",
        "quick": args.quick,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__, "threads": args.threads, "device": args.device},  # fmt: skip
        "data": {"train": str(train.name), "valid": str(valid.name), "dir": str(args.data_dir)},
        "budget_s": args.budget,
        "target_bpc": TARGET_BPC,
        "sizes": sizes,
        "generation_model": main_size,
        "generation": gen,
        "sample": sample,
    }
    results_dir = ROOT / "benchmarks" / "results"
    out_json = results_dir / ("shakespeare_quick.json" if args.quick else "shakespeare.json")
    out_png = ROOT / "docs" / "img" / "shakespeare_bpc.png"
    if args.quick:
        out_png = results_dir / "shakespeare_quick.png"
    atomic_write_json(out_json, result)
    plot(sizes, out_png)
    print()
    print(table(result))
    print("\nsample (prime ROMEO:, temperature 0.8):\n")
    print(sample)
    print(f"\nresults: {out_json}\nplot:    {out_png}")


if __name__ == "__main__":
    main()
