"""Language-model pretraining (ULMFiT, ``--pretrain``) against the ``default`` recipe, on the tuning suite.

For each dataset, in one run on this machine and on the same train/test split:

* **default** — ``rnnkit.train(train, test=test)``: the default recipe (bi-GRU on GloVe + n-gram path);
* **pretrain** — ``rnnkit.train(train, test=test, pretrain=True)``: the ``ulmfit`` preset — an AWD-LSTM
  language model on the training texts, then the classifier started from it and fine-tuned;
* **+unlabeled** — the same with ``unlabeled=`` the texts of a dataset of the same kind, labels dropped
  (:data:`UNLABELED`: MR's movie-review sentences for CR and SUBJ, CR's product reviews for MR, MR and CR
  for MPQA). AG News has no other news texts here (its test texts are not allowed), so it has no such row.

And the label-scarce curve (``--curve``, Dai & Le's and ULMFiT's headline plot): on the AG News subset,
1 %, 10 % and 100 % of the labelled rows (stratified, seeded), the rest of the training texts as
unlabelled text for ``--pretrain``; ``default`` sees the labelled rows only.

And the language models themselves (``--lm``): the ``awd-lm`` preset against the ``word-lm`` preset on the
bundled Shakespeare text, the same training time (``--time-budget``) and the same vocabulary (every word),
validation perplexity.

Reports test accuracy and wall seconds of the whole ``rnnkit.train`` call (for ``--pretrain``, both stages).
Run it alone (other PyTorch processes on the same cores slow it 3–10×)::

    python benchmarks/pretrain.py                        # the suite table (about an hour on 2 cores)
    python benchmarks/pretrain.py --curve                # the AG News label curve
    python benchmarks/pretrain.py --datasets cr --configs pretrain --time-budget 60

Results go to ``benchmarks/results/pretrain.json`` (``--curve``: ``pretrain_curve.json``) and a Markdown
table to stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

import rnnkit
from rnnkit.data import read_examples

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
DATASETS = {  # name → (train, test)
    "mr": (SHARED / "mr/train.csv", SHARED / "mr/test.csv"),
    "subj": (SHARED / "subj/train.csv", SHARED / "subj/test.csv"),
    "cr": (SHARED / "cr/train.csv", SHARED / "cr/test.csv"),
    "mpqa": (SHARED / "mpqa/train.csv", SHARED / "mpqa/test.csv"),
    "ag_news": (SHARED / "ag_news/train_subset.csv", SHARED / "ag_news/test.csv"),
}
UNLABELED = {"cr": ("mr",), "subj": ("mr",), "mr": ("cr",), "mpqa": ("mr", "cr")}  # texts of the same kind
CONFIGS = ("default", "pretrain", "unlabeled")
FRACTIONS = (0.01, 0.1, 1.0)


def write_texts(path: Path, specs) -> Path:
    """One training text per line (newlines inside a text become spaces)."""
    with open(path, "w", encoding="utf-8") as f:
        for spec in specs:
            for e in read_examples(str(spec)):
                f.write(" ".join(e.text.split()) + "\n")
    return path


def train(train_spec, test_spec, folder: Path, **options) -> dict:
    """Train one run; its test accuracy, macro-F1, wall seconds and what the recipe chose."""
    start = time.perf_counter()
    run = rnnkit.train(str(train_spec), test=str(test_spec), out=folder, progress=False, **options)
    seconds = time.perf_counter() - start
    report = json.loads((run / "report.json").read_text())
    pretrained = report.get("pretrained") or {}
    return {
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "seconds": round(seconds, 1),
        "mix": (report["recipe"].get("mix") or {}).get("mix"),
        "lm_perplexity": round(pretrained["perplexity"], 1) if "perplexity" in pretrained else None,
        "lm_seconds": pretrained.get("train_seconds"),
    }


def suite(args, work: Path) -> list[dict]:
    results = []
    for name in args.datasets:
        train_spec, test_spec = DATASETS[name]
        for config in args.configs:
            if config == "unlabeled" and name not in UNLABELED:
                continue
            options = dict(seed=args.seed, time_budget=args.time_budget)
            if config != "default":
                options["pretrain"] = True
            if config == "unlabeled":
                specs = [DATASETS[other][0] for other in UNLABELED[name]]
                options["unlabeled"] = str(write_texts(work / f"{name}_unlabeled.txt", specs))
            result = train(train_spec, test_spec, work / f"{name}_{config}", **options)
            row = {"dataset": name, "config": config, **result}
            print(json.dumps(row), file=sys.stderr, flush=True)
            results.append(row)
    return results


def split_labels(train_spec: Path, fraction: float, seed: int, work: Path) -> tuple[Path, Path | None]:
    """A stratified ``fraction`` of the rows as a labelled CSV, and the other rows' texts (one per line)."""
    rows = [(e.label, e.text) for e in read_examples(str(train_spec))]
    by_label = defaultdict(list)
    for i, (label, _) in enumerate(rows):
        by_label[label].append(i)
    rng = random.Random(seed)
    keep = set()
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        keep.update(indices[: max(2, round(fraction * len(indices)))])
    labelled = work / f"labelled_{fraction:g}.csv"
    with open(labelled, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(rows[i] for i in sorted(keep))
    if len(keep) == len(rows):
        return labelled, None
    unlabeled = work / f"unlabeled_{fraction:g}.txt"
    with open(unlabeled, "w", encoding="utf-8") as f:
        f.writelines(" ".join(rows[i][1].split()) + "\n" for i in range(len(rows)) if i not in keep)
    return labelled, unlabeled


def curve(args, work: Path) -> list[dict]:
    """The label curve; the labelled rows are drawn with ``--seed`` and each run trains with every seed of
    ``--train-seeds`` (the spread of one split's runs)."""
    train_spec, test_spec = DATASETS["ag_news"]
    results = []
    for fraction in args.fractions:
        labelled, unlabeled = split_labels(train_spec, fraction, args.seed, work)
        n = len(read_examples(str(labelled)))
        for config in args.configs:
            if config == "unlabeled" and unlabeled is None:
                continue
            for seed in args.train_seeds or [args.seed]:
                options = dict(seed=seed, time_budget=args.time_budget)
                if config != "default":
                    options["pretrain"] = True
                if config == "unlabeled":
                    options["unlabeled"] = str(unlabeled)
                folder = work / f"ag_{fraction:g}_{config}_{seed}"
                row = {"fraction": fraction, "labelled": n, "config": config, "seed": seed,
                       **train(labelled, test_spec, folder, **options)}  # fmt: skip
                print(json.dumps(row), file=sys.stderr, flush=True)
                results.append(row)
    return results


def language_models(args, work: Path) -> list[dict]:
    """``word-lm`` and ``awd-lm`` on Shakespeare at equal training time and vocabulary."""
    results = []
    for preset in ("word-lm", "awd-lm"):
        options = dict(preset=preset, seed=args.seed, time_budget=args.time_budget, epochs=1000, min_freq=1,
                       max_vocab=10**9, eval_every=100)  # fmt: skip
        start = time.perf_counter()
        run = rnnkit.train("shakespeare", out=work / preset, progress=False, **options)
        report = json.loads((run / "report.json").read_text())
        row = {"preset": preset, "perplexity": round(report["perplexity"], 1), "vocab": report["vocab_size"],
               "steps": report["steps"], "epochs": report["epochs"], "train_seconds": report["train_seconds"],
               "seconds": round(time.perf_counter() - start, 1),
               "parameters": report["parameters"]}  # fmt: skip
        print(json.dumps(row), file=sys.stderr, flush=True)
        results.append(row)
    return results


def table(results: list[dict], key: str) -> str:
    if key == "preset":
        lines = ["| preset | valid perplexity | vocabulary | steps | epochs | training s |", "|" + "---|" * 6]
        lines += [f"| {r['preset']} | {r['perplexity']} | {r['vocab']:,} | {r['steps']:,} | "
                  f"{r['epochs']:.2f} | {r['train_seconds']:.0f} |" for r in results]  # fmt: skip
        return "\n".join(lines)
    lines = [f"| {key} | config | test accuracy | s | LM perplexity | LM s | mix |", "|" + "---|" * 7]
    for r in results:
        where = r[key] if key == "dataset" else f"{r['fraction']:.0%} ({r['labelled']:,} rows) s{r['seed']}"
        lines.append(f"| {where} | {r['config']} | {r['accuracy']:.3f} | {r['seconds']:.0f} | "
                     f"{r['lm_perplexity'] or '–'} | {r['lm_seconds'] or '–'} | {r['mix']} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), type=lambda s: s.split(","))
    parser.add_argument("--configs", default=",".join(CONFIGS), type=lambda s: s.split(","))
    parser.add_argument("--curve", action="store_true", help="the AG News label curve instead of the suite")
    parser.add_argument("--lm", action="store_true", help="awd-lm against word-lm on Shakespeare instead")
    parser.add_argument("--fractions", default=",".join(map(str, FRACTIONS)),
                        type=lambda s: [float(x) for x in s.split(",")])  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-seeds", default=None, type=lambda s: [int(x) for x in s.split(",")],
                        help="--curve: train every configuration with each seed (default: --seed)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds per stage (default: the recipes' own, 120)")  # fmt: skip
    args = parser.parse_args()
    if args.time_budget is None:
        args.time_budget = 120.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mode = "curve" if args.curve else "lm" if args.lm else "suite"
        results = {"curve": curve, "lm": language_models, "suite": suite}[mode](args, work)
    name = {"curve": "pretrain_curve.json", "lm": "pretrain_lm.json", "suite": "pretrain.json"}[mode]
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "rnnkit": rnnkit.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "time_budget": args.time_budget,
            "seed": args.seed}  # fmt: skip
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(table(results, {"curve": "fraction", "lm": "preset", "suite": "dataset"}[mode]))


if __name__ == "__main__":
    main()
