"""Quality of the `default` recipe against the linear peers, on every dataset of the tuning suite.

For each dataset, in one run on this machine and on the same train/test split:

* **TF-IDF + LR** — scikit-learn: word 1–2-grams, sublinear tf, min_df 2, LogisticRegression(C=10)
  (the peer baselines of ``../shared/datasets/README.md``);
* **fastText** — ``fasttext-wheel`` supervised, word bigrams, "tuned" settings (dim 50, lr 0.5, 25 epochs);
* **rnnkit default** — ``rnnkit.train(train, test=test)`` with no preset (= the ``default`` recipe): 10 % of
  the training rows are held out for validation (early stopping, the n-gram path's regularisation and the
  mix are chosen there), so rnnkit trains on less data than the peers.

Reports test accuracy, macro-F1 and wall seconds (rnnkit: the whole ``rnnkit.train`` call — reading,
vocabulary, vectors, both paths, report). Datasets: MR, SUBJ, CR, MPQA (``train.csv`` / ``test.csv``), the
AG News subset (14,554 training rows, the official 7,600 test rows) and the bundled ``default`` (WordNet
glosses, 43 classes). Run it alone (other PyTorch processes on the same cores slow it 3–10×)::

    pip install scikit-learn fasttext-wheel       # the peers (`pip install -e '.[peers]'`)
    python benchmarks/quality.py                  # the full table (about 15 minutes on 2 cores)
    python benchmarks/quality.py --quick          # a smoke run: 600 training and 200 test rows each
    python benchmarks/quality.py --datasets mr,cr --seeds 0,1,2
    python benchmarks/quality.py --time-budget 600  # on a loaded machine: keep the safety cap from binding

Results go to ``benchmarks/results/quality.json`` (``--quick``: ``quality_quick.json``) and a Markdown table
to stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import rnnkit
from rnnkit.data import read_examples

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
DATASETS = {  # name → (train spec, test spec)
    "mr": (SHARED / "mr/train.csv", SHARED / "mr/test.csv"),
    "subj": (SHARED / "subj/train.csv", SHARED / "subj/test.csv"),
    "cr": (SHARED / "cr/train.csv", SHARED / "cr/test.csv"),
    "mpqa": (SHARED / "mpqa/train.csv", SHARED / "mpqa/test.csv"),
    "ag_news": (SHARED / "ag_news/train_subset.csv", SHARED / "ag_news/test.csv"),
    "default": ("default", "default:test"),
}


def rows(spec) -> list[tuple[str, str]]:
    return [(e.label, e.text) for e in read_examples(str(spec))]


def subset(data: list, n: int | None, seed: int = 0) -> list:
    if n is None or len(data) <= n:
        return data
    return random.Random(seed).sample(data, n)


def scores(truth: list[str], predicted: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": round(accuracy_score(truth, predicted), 4),
            "macro_f1": round(f1_score(truth, predicted, average="macro"), 4)}  # fmt: skip


def tfidf_lr(train, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x = vectorizer.fit_transform([t for _, t in train])
    model = LogisticRegression(C=10, max_iter=2000).fit(x, [label for label, _ in train])
    predicted = model.predict(vectorizer.transform([t for _, t in test]))
    seconds = round(time.perf_counter() - t0, 1)
    return {**scores([label for label, _ in test], list(predicted)), "seconds": seconds}


def fasttext_bigrams(train, test, folder: Path) -> dict:
    import fasttext

    def clean(text: str) -> str:
        return " ".join(text.split())

    path = folder / "fasttext_train.txt"
    lines = (f"__label__{label.replace(' ', '_')} {clean(t)}\n" for label, t in train)
    path.write_text("".join(lines), "utf-8")
    t0 = time.perf_counter()
    model = fasttext.train_supervised(str(path), dim=50, lr=0.5, epoch=25, wordNgrams=2, verbose=0, thread=2)
    names = {label.replace(" ", "_"): label for label, _ in train}
    def predict(text: str) -> str:
        # model.predict() breaks on NumPy 2 (np.array(copy=False)); its binding answers [(p, label)], or []
        # for a text it has no word of
        answer = model.f.predict(clean(text), 1, 0.0, "strict")
        return names[answer[0][1][len("__label__") :]] if answer else train[0][0]

    predicted = [predict(t) for _, t in test]
    seconds = round(time.perf_counter() - t0, 1)
    return {**scores([label for label, _ in test], predicted), "seconds": seconds}


def write_csv(path: Path, data: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(data)
    return path


def rnnkit_default(train, test, folder: Path, seed: int, time_budget: float | None) -> dict:
    train_csv, test_csv = write_csv(folder / "train.csv", train), write_csv(folder / "test.csv", test)
    t0 = time.perf_counter()
    out = folder / f"run-{seed}"
    extra = {} if time_budget is None else {"time_budget": time_budget}
    run = rnnkit.train(str(train_csv), test=str(test_csv), out=out, seed=seed, progress=False, **extra)
    seconds = time.perf_counter() - t0
    report = json.loads((run / "report.json").read_text())
    recipe = report.get("recipe", {})
    return {
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "seconds": round(seconds, 1),
        "train_seconds": report["train_seconds"],
        "epochs": report["epochs"],
        "stop_reason": report["stop_reason"],
        "mix": (recipe.get("mix") or {}).get("mix"),
        "ngrams_C": (recipe.get("ngrams") or {}).get("C"),
        "vectors_coverage": (report.get("vectors") or {}).get("token_coverage"),
    }


def run_dataset(name: str, args, folder: Path) -> dict:
    train_spec, test_spec = DATASETS[name]
    n_train, n_test = (600, 200) if args.quick else (None, None)
    train, test = subset(rows(train_spec), n_train), subset(rows(test_spec), n_test)
    classes = len({label for label, _ in train})
    result = {"dataset": name, "train": len(train), "test": len(test), "classes": classes}
    result["tfidf_lr"] = tfidf_lr(train, test)
    try:
        result["fasttext"] = fasttext_bigrams(train, test, folder)
    except ImportError:
        result["fasttext"] = None
    runs = [rnnkit_default(train, test, folder, seed, args.time_budget) for seed in args.seeds]
    result["rnnkit_runs"] = runs
    result["rnnkit"] = {key: round(statistics.mean(r[key] for r in runs), 4)
                        for key in ("accuracy", "macro_f1", "seconds")}  # fmt: skip
    return result


def table(results: list[dict]) -> str:
    lines = ["| dataset (train / test rows) | TF-IDF + LR | fastText (bigrams) | rnnkit default "
             "| rnnkit − best peer | rnnkit seconds |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        peers = [r["tfidf_lr"]] + ([r["fasttext"]] if r["fasttext"] else [])
        best = max(p["accuracy"] for p in peers)
        ft = f"{r['fasttext']['accuracy']:.3f} / {r['fasttext']['macro_f1']:.3f}" if r["fasttext"] else "–"
        lines.append(
            f"| {r['dataset']} ({r['train']:,} / {r['test']:,}) "
            f"| {r['tfidf_lr']['accuracy']:.3f} / {r['tfidf_lr']['macro_f1']:.3f} | {ft} "
            f"| **{r['rnnkit']['accuracy']:.3f}** / {r['rnnkit']['macro_f1']:.3f} "
            f"| {r['rnnkit']['accuracy'] - best:+.3f} | {r['rnnkit']['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n\nEach cell: test accuracy / macro-F1."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = ", ".join(DATASETS)
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from: {choices}")
    parser.add_argument("--seeds", default="0", help="rnnkit seeds, comma-separated (the mean is reported)")
    parser.add_argument("--quick", action="store_true", help="600 training and 200 test rows per dataset")
    parser.add_argument("--out", type=Path)
    cap = ("raise the recipe's 120-second safety cap: on a loaded machine the accuracy is then what an idle "
           "one gets (the cap does not bind there)")
    parser.add_argument("--time-budget", type=float, help=cap)
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s): {', '.join(unknown)}")
    torch.set_num_threads(2)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = Path(tmp) / name
            folder.mkdir()
            results.append(run_dataset(name, args, folder))
            print(f"{name}: done", file=sys.stderr, flush=True)
    out = args.out or ROOT / "benchmarks/results" / ("quality_quick.json" if args.quick else "quality.json")
    payload = {"benchmark": "quality", "quick": args.quick, "seeds": args.seeds, "results": results,
               "machine": platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    out.write_text(json.dumps(payload, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
