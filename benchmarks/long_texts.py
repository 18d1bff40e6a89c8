"""Long texts: does the classifier read past the first tokens? A synthetic test where it must.

Each document is 300–1,500 words drawn from a shared vocabulary, with three words of its class hidden at
random places — mostly *after* the first 200 tokens. The labels are balanced, so a model that reads only
a document's beginning sits near chance on the documents whose clues all come later. Compared, on the
same rows, in one run:

* **cut at 200** — the recurrent network alone, reading the first 200 tokens (what ``default`` did before
  texts were read whole: ``--max-len 200`` cut them in the batches);
* **head + tail** — the recurrent network alone, reading the first and last 128 tokens (``--max-len 256``);
* **default** — the ``default`` recipe: head + tail for the network, every token for the n-gram path.

    python benchmarks/long_texts.py            # 1,200 training and 400 test documents (a few minutes)
    python benchmarks/long_texts.py --quick    # 300 / 100
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
from pathlib import Path

import torch

import rnnkit

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {
    "space": ["orbit", "rocket", "planet", "comet", "nasa"],
    "sport": ["goal", "league", "coach", "stadium", "striker"],
    "food": ["recipe", "flour", "oven", "spice", "dessert"],
}
FILLER = [f"w{i}" for i in range(3000)]  # words that say nothing about the class


def documents(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    labels = sorted(CLASSES)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = rng.choices(FILLER, k=rng.randint(300, 1500))
        for _ in range(3):  # clues anywhere but the first 100 words
            words.insert(rng.randint(100, len(words)), rng.choice(CLASSES[label]))
        rows.append((label, " ".join(words)))
    return rows


def write(path: Path, rows: list[tuple[str, str]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return str(path)


VARIANTS = {
    "cut at 200 (RNN, head only)": {"ngrams": False, "max_len": 200, "cut_head_only": True},
    "head + tail 256 (RNN)": {"ngrams": False, "max_len": 256},
    "default (head + tail RNN + n-grams)": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_train, n_test = (300, 100) if args.quick else (1200, 400)
    torch.set_num_threads(2)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = write(tmp / "train.csv", documents(n_train, seed=1))
        test_rows = documents(n_test, seed=2)
        head_only = [(label, " ".join(text.split()[:200])) for label, text in test_rows]
        test = write(tmp / "test.csv", test_rows)
        for name, settings in VARIANTS.items():
            settings = dict(settings)
            cut_head = settings.pop("cut_head_only", False)
            t0 = time.perf_counter()
            train_spec = train
            if cut_head:  # the old behaviour: every text cut to its first 200 tokens before the model
                with open(train, newline="", encoding="utf-8") as f:
                    rows = [(r["label"], " ".join(r["text"].split()[:200])) for r in csv.DictReader(f)]
                train_spec = write(tmp / "train_head.csv", rows)
            run = rnnkit.train(train_spec, test=write(tmp / "t.csv", head_only) if cut_head else test,
                               out=tmp / name.split()[0], progress=False, **settings)  # fmt: skip
            report = json.loads((run / "report.json").read_text())
            results.append({"variant": name, "accuracy": round(report["accuracy"], 4),
                            "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    print("| variant | test accuracy | seconds |\n|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['accuracy']:.3f} | {r['seconds']:.0f} |")
    out = ROOT / "benchmarks/results" / ("long_texts_quick.json" if args.quick else "long_texts.json")
    payload = {"benchmark": "long_texts", "train": n_train, "test": n_test, "results": results}
    out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
