"""AG News: the lesson's three models as rnnkit presets against the notebook's own loop, and the default.

Trains on ``../shared/datasets/ag_news/train_subset.csv`` (14,554 rows) and tests on ``test.csv`` (the
official 7,600), all in one run on this machine:

* **notebook** — a faithful re-implementation of the lesson notebook's training loop: ``torch.nn`` modules,
  texts tokenised inside the collate function, random batches of 16 padded to their longest text, dense
  Adam (lr 1e-3) over the whole embedding, 3 epochs; the LSTMs' embeddings start from ``randn - 0.5`` as
  the notebook's do; the RNN averages its outputs over every padded step,
  the LSTM takes its last hidden state after the padding, the packed LSTM gets ``pack_padded_sequence``.
* **rnnkit lesson presets** — ``lesson-rnn``, ``lesson-lstm``, ``lesson-lstm-packed``: the same models and
  batch size through ``rnnkit.train``.

Every run trains on the same rows: 10% of ``train_subset.csv`` (stratified, seeded) is held out once as
validation data for rnnkit's runs (which keep the best evaluation's weights), and the notebook loop
trains on the other 90% too, so both see the same examples for the same number of epochs.
* **rnnkit default** — the ``default`` preset (optionally with ``--vectors``), within its time budget.

Each run's test accuracy is also measured at every evaluation, off the clock, for the plot of test
accuracy against training seconds (``docs/img/ag_news_accuracy.png``), on which the TF-IDF + logistic
regression (0.890) and fastText bigram (0.871) levels measured on this data are drawn. Tokens per second
count real (non-padding) tokens over training time, data loading included, evaluation excluded.

    python benchmarks/ag_news.py                    # the full run (about 10 minutes; run it alone)
    python benchmarks/ag_news.py --vectors ../shared/datasets/glove/glove.6B.50d.100k.txt.gz
    python benchmarks/ag_news.py --quick            # a smoke run on a few hundred rows

Results go to ``benchmarks/results/ag_news.json`` (``--quick``: ``ag_news_quick.json`` and
``ag_news_quick.png`` there) and a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

import rnnkit
from rnnkit.api import ClassifierRun
from rnnkit.data import read_examples, train_valid_split
from rnnkit.data.tokenizers import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "ag_news"
LEVELS = {"TF-IDF + LR": 0.890, "fastText (bigrams)": 0.871}  # measured on the same train/test files
LESSON = ("lesson-rnn", "lesson-lstm", "lesson-lstm-packed")


# --- the notebook's loop -------------------------------------------------------------------------------
class NotebookModel(nn.Module):
    """The notebook's models: embedding → torch.nn RNN/LSTM → linear, with its own way of pooling."""

    def __init__(
        self,
        kind: str,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 64,
        hidden_dim: int = 32,
        draw: str = "notebook",
    ):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        if kind != "rnn":  # LSTMClassifier and LSTMPackClassifier start from randn - 0.5
            if draw == "notebook":  # as the notebook draws it: a second randn
                self.embedding.weight.data = torch.randn_like(self.embedding.weight.data) - 0.5
            else:  # the same distribution in one draw (as rnnkit's embed_mean): another random stream
                with torch.no_grad():
                    self.embedding.weight.add_(-0.5)
        cell = nn.RNN if kind == "rnn" else nn.LSTM
        self.rnn = cell(embed_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)  # (N, L, E)
        if self.kind == "rnn":
            output, _ = self.rnn(x)
            return self.fc(output.mean(dim=1))  # mean over every step, padding included
        if self.kind == "lstm-packed":
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.rnn(x)
        return self.fc(h_n[-1])  # the last hidden state (after the padding, unless packed)


def notebook_run(kind: str, train, test, epochs: int, seed: int, curve: list, draw: str = "notebook") -> dict:
    """Train one notebook model the notebook's way; return accuracy, seconds and tokens/s."""
    torch.manual_seed(seed)
    random.seed(seed)
    tokenizer = build_tokenizer("basic_english")
    counts: dict[str, int] = {}
    for example in train:
        for token in tokenizer.tokenize(example.text):
            counts[token] = counts.get(token, 0) + 1
    itos = ["<pad>", "<unk>", *sorted(counts, key=lambda t: (-counts[t], t))]
    stoi = {t: i for i, t in enumerate(itos)}
    labels = sorted({e.label for e in train})
    label_id = {name: i for i, name in enumerate(labels)}

    def collate_batch(batch):  # the notebook tokenised inside collate, batch by batch
        ids = [torch.tensor([stoi.get(t, 1) for t in tokenizer.tokenize(e.text)] or [1]) for e in batch]
        lengths = torch.tensor([len(i) for i in ids])
        return pad_sequence(ids, batch_first=True), lengths, torch.tensor([label_id[e.label] for e in batch])

    loader = torch.utils.data.DataLoader(train, batch_size=16, shuffle=True, collate_fn=collate_batch)
    test_loader = torch.utils.data.DataLoader(test, batch_size=256, collate_fn=collate_batch)
    model = NotebookModel(kind, len(itos), len(labels), draw=draw)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_s, tokens = 0.0, 0
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for ids, lengths, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(ids, lengths), y)
            loss.backward()
            optimizer.step()
            tokens += int(lengths.sum())
        train_s += time.perf_counter() - t0
        accuracy = notebook_accuracy(model, test_loader)
        curve.append((round(train_s, 2), accuracy))
    return {"accuracy": accuracy, "train_seconds": round(train_s, 2), "tokens_per_s": round(tokens / train_s)}


@torch.no_grad()
def notebook_accuracy(model: nn.Module, loader) -> float:
    model.eval()
    correct = n = 0
    for ids, lengths, y in loader:
        correct += int((model(ids, lengths).argmax(dim=1) == y).sum())
        n += len(y)
    return correct / n


# --- rnnkit runs ---------------------------------------------------------------------------------------
class TestCurve:
    """Trainer callback: test accuracy at every evaluation, measured off the clock.

    The time it takes is added to the run's time budget, so the curve costs the run no training time.
    """

    def __init__(self, test_spec: str, curve: list):
        self.test_spec = test_spec
        self.curve = curve
        self.off_clock = 0.0

    def on_evaluate(self, trainer, record: dict) -> None:
        from rnnkit.api import read_config
        from rnnkit.data import TextEncoder

        t0 = time.perf_counter()
        run = trainer.run  # the pipeline wrote config, vocabulary and labels before training began
        view = ClassifierRun(
            run.path,
            read_config(run),
            TextEncoder.from_dict(run.read_json("vocab.json")),
            run.read_json("labels.json"),
            trainer.model,
            trainer.device,
        )
        accuracy = view.evaluate(self.test_spec)["accuracy"]
        trainer.model.train()  # ClassifierRun put it in eval mode
        spent = time.perf_counter() - t0
        if trainer.config.time_budget is not None:
            trainer.config.time_budget += spent
        self.curve.append((round(record["elapsed_s"] - self.off_clock, 2), accuracy))
        self.off_clock += spent


def rnnkit_run(preset: str, train_spec: str, test_spec: str, out: Path, curve: list, **overrides) -> dict:
    """``rnnkit.train`` with a test-accuracy curve; return the report's numbers."""
    curve_cb = TestCurve(test_spec, curve)
    rnnkit.train(train_spec, preset=preset, test=test_spec, out=out, callbacks=[curve_cb], **overrides)
    report = json.loads((out / "report.json").read_text())
    return {
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "train_seconds": round(report["train_seconds"] - curve_cb.off_clock, 2),
        "tokens_per_s": round(report["tokens_per_s"]),
        "epochs": report["epochs"],
        "stop_reason": report["stop_reason"],
        "device": report["device"],
        "vectors": report.get("vectors"),
    }


# --- the run -------------------------------------------------------------------------------------------
def subset(examples: list, n: int, seed: int) -> list:
    rng = random.Random(seed)
    return rng.sample(examples, n) if n < len(examples) else examples


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8))
    colors = {
        "rnn": "tab:blue",
        "lstm": "tab:orange",
        "lstm-packed": "tab:green",
    }  # notebook and preset alike
    for name, run in results["runs"].items():
        if not run.get("curve"):
            continue
        xs, ys = zip(*run["curve"], strict=True)
        model = name.split(" ")[1].removeprefix("lesson-")
        notebook = name.startswith("notebook")
        ax.plot(
            xs,
            ys,
            "--" if notebook else "-",
            marker="o",
            markersize=3,
            label=name,
            color=colors.get(model, "black"),
            linewidth=2.2 if model == "default" else 1.2,
        )
    for (label, level), where in zip(LEVELS.items(), ("bottom", "top"), strict=True):
        ax.axhline(level, color="tab:red", linestyle=":", linewidth=1)
        ax.text(ax.get_xlim()[0], level, f" {label} {level:.3f}", color="tab:red", va=where, fontsize=8)
    ax.set(
        xlabel="training seconds",
        ylabel="test accuracy",
        title=f"AG News ({results['machine']['threads']} "
        f"threads, {results['machine']['processor'] or platform.machine()})",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def table(results: dict) -> str:
    lines = ["| run | test accuracy | train s | tokens/s | speed vs notebook |", "|---|---|---|---|---|"]
    runs = results["runs"]
    for name, run in runs.items():
        base = runs.get("notebook " + name.removeprefix("rnnkit ").removeprefix("lesson-"))
        ratio = f"{run['tokens_per_s'] / base['tokens_per_s']:.2f}×" if base and base is not run else ""
        lines.append(
            f"| {name} | {run['accuracy']:.4f} | {run['train_seconds']:.1f} | {run['tokens_per_s']:,} "
            f"| {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few rows, one epoch, short budget")
    parser.add_argument(
        "--data-dir", type=Path, default=DATA, help="folder with train_subset.csv and test.csv"
    )
    parser.add_argument("--vectors", help="pretrained vectors for the default preset (e.g. GloVe 50d)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma-separated: notebook, lesson, default")
    parser.add_argument(
        "--models", default="rnn,lstm,lstm-packed", help="lesson models to run (comma-separated)"
    )
    parser.add_argument("--out", type=Path, help="JSON results (default: benchmarks/results/ag_news.json)")
    parser.add_argument(
        "--notebook-draw",
        choices=["notebook", "once"],
        default="notebook",
        help="the notebook LSTMs' shifted embedding: drawn as the notebook does (a second randn), or "
        "shifted in place (the same distribution and weights as rnnkit's, another random stream)",
    )
    parser.add_argument("--device", default="cpu", help="device of the rnnkit default run (cpu or cuda)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_csv, test_csv = args.data_dir / "train_subset.csv", args.data_dir / "test.csv"
    if not train_csv.is_file():
        sys.exit(f"AG News not found in {args.data_dir} (see ../shared/datasets/README.md)")
    skip = set(filter(None, args.skip.split(",")))
    results_dir = ROOT / "benchmarks" / "results"
    work = Path(tempfile.mkdtemp(prefix="ag_news_"))

    train, test = read_examples(train_csv), read_examples(test_csv)
    epochs = 3
    default_overrides: dict = {}
    if args.quick:
        train, test, epochs = subset(train, 800, 1), subset(test, 400, 2), 1
        default_overrides = {"epochs": 1, "time_budget": 20.0}
    train, valid = train_valid_split(train, 0.1, args.seed)  # the same training rows for every run
    train_spec, valid_spec, test_spec = (str(work / f"{name}.csv") for name in ("train", "valid", "test"))
    for examples, spec in ((train, train_spec), (valid, valid_spec), (test, test_spec)):
        write_csv(examples, spec)
    if args.vectors:
        default_overrides["vectors"] = args.vectors

    results = {
        "machine": {
            "processor": platform.processor(),
            "threads": args.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "data": {"train": len(train), "valid": len(valid), "test": len(test), "quick": args.quick},
        "levels": LEVELS,
        "runs": {},
    }
    common = {"threads": args.threads, "seed": args.seed, "device": "cpu", "valid": valid_spec}
    for kind, preset in zip(("rnn", "lstm", "lstm-packed"), LESSON, strict=True):
        if kind not in args.models.split(","):
            continue
        if "notebook" not in skip:
            curve: list = []
            run = notebook_run(kind, train, test, epochs, args.seed, curve, args.notebook_draw)
            results["runs"][f"notebook {kind}"] = {**run, "curve": curve}
            print(f"notebook {kind}: {run}", file=sys.stderr)
        if "lesson" not in skip:
            curve = []
            run = rnnkit_run(preset, train_spec, test_spec, work / preset, curve, epochs=epochs, **common)
            results["runs"][f"rnnkit {preset}"] = {**run, "curve": curve}
            print(f"rnnkit {preset}: {run}", file=sys.stderr)
    if "default" not in skip:
        curve = []
        settings = {**common, "device": args.device, **default_overrides}
        run = rnnkit_run("default", train_spec, test_spec, work / "default", curve, **settings)
        name = (
            "rnnkit default"
            + (" + vectors" if args.vectors else "")
            + (" (cuda)" if args.device != "cpu" else "")
        )
        results["runs"][name] = {**run, "curve": curve}
        print(f"{name}: {run}", file=sys.stderr)

    suffix = "_quick" if args.quick else ""
    out_json = args.out or results_dir / f"ag_news{suffix}.json"
    out_png = (
        results_dir / "ag_news_quick.png" if args.quick else ROOT / "docs" / "img" / "ag_news_accuracy.png"
    )
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1) + "\n")
    if args.out is None:
        plot(results, out_png)
    print(table(results))
    print(f"\nresults: {out_json}" + ("" if args.out else f"\nplot:    {out_png}"))


def write_csv(examples: list, path: str) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows((e.label, e.text) for e in examples)


if __name__ == "__main__":
    main()
