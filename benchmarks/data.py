"""Data pipeline benchmark on AG News: throughput of each stage, and padding waste per batching scheme.

Measures, on ``../shared/datasets/ag_news`` (``train_subset.csv`` + ``test.csv``, columns ``label,text``):

- throughput in examples/s of reading the CSV files, tokenizing (``basic_english``, ``char``, ``bpe``),
  building the vocabulary, and encoding to ids — and of the whole read → tokenize → vocabulary path;
- the share of padded token positions per epoch at batch size 64 (the lesson's setting), averaged over
  epochs: random batches (shuffle, cut every 64) versus :class:`rnnkit.data.BucketBatchSampler`, with
  a row count and with a token budget, for several pool sizes. Target: bucketing wastes ≤ 5 %.

Writes ``benchmarks/results/data.json`` and prints a table. Cheap: no model, no torch threads.

Usage:
    python benchmarks/data.py [--quick] [--data-dir ../shared/datasets/ag_news] [--out FILE]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import time
from pathlib import Path

from rnnkit._io import atomic_write_json
from rnnkit.data import BucketBatchSampler, TextEncoder, read_examples
from rnnkit.data.batching import padding_fraction
from rnnkit.data.text import Vocabulary
from rnnkit.data.tokenizers import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 64


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call, started after a garbage collection (less noise between stages)."""
    gc.collect()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def throughput(texts: list[str], read_seconds: float, bpe_vocab_size: int) -> dict[str, dict[str, float]]:
    """Seconds and examples/s of tokenizing, vocabulary building and encoding, per tokenizer."""
    n = len(texts)
    results = {}
    for name in ("basic_english", "char", "bpe"):
        tokenizer, train_s = timed(build_tokenizer, name, texts, bpe_vocab_size=bpe_vocab_size)
        tokens, tokenize_s = timed(tokenizer.tokenize_many, texts)
        vocab, vocab_s = timed(Vocabulary.build, tokens)
        mean_tokens = sum(map(len, tokens)) / n
        del tokens
        encoder = TextEncoder(tokenizer, vocab)
        _, encode_s = timed(encoder.encode_many, texts)
        pipeline_s = read_seconds + train_s + tokenize_s + vocab_s
        results[name] = {
            "tokenizer_train_s": round(train_s, 3),
            "tokenize_per_s": round(n / tokenize_s),
            "vocab_build_per_s": round(n / vocab_s),
            "encode_per_s": round(n / encode_s),
            "read_tokenize_vocab_per_s": round(n / pipeline_s),
            "vocab_size": len(vocab),
            "mean_tokens": round(mean_tokens, 1),
        }
    return results


def random_batches(n: int, seed: int) -> list[list[int]]:
    """The naive scheme: shuffle, then cut every ``BATCH_SIZE``."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]


def padding(lengths: list[int], epochs: int) -> dict[str, dict[str, float]]:
    """Padded share of token positions and batch count per epoch, for each batching scheme."""
    mean_len = sum(lengths) / len(lengths)
    schemes = {"random": None}
    for pool in (10, 50, 100, 200):  # 100 is the default
        schemes[f"bucket rows=64 pool={pool}"] = {"batch_size": BATCH_SIZE, "pool_batches": pool}
    budget = round(BATCH_SIZE * mean_len)
    schemes[f"bucket max_tokens={budget} pool=100"] = {"batch_size": None, "max_tokens": budget}
    schemes["sorted (shuffle=False)"] = {"batch_size": BATCH_SIZE, "shuffle": False}
    results = {}
    for name, kwargs in schemes.items():
        fractions, counts = [], []
        for epoch in range(epochs):
            if kwargs is None:
                batches = random_batches(len(lengths), seed=epoch)
            else:
                sampler = BucketBatchSampler(lengths, seed=0, **kwargs)
                sampler.set_epoch(epoch)
                batches = list(sampler)
            fractions.append(padding_fraction(batches, lengths))
            counts.append(len(batches))
        results[name] = {
            "padding_fraction": round(sum(fractions) / epochs, 4),
            "batches_per_epoch": round(sum(counts) / epochs, 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets/ag_news")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/data.json")
    parser.add_argument(
        "--quick", action="store_true", help="first 2,000 training rows, 2 epochs (smoke test)"
    )
    args = parser.parse_args()

    files = [args.data_dir / "train_subset.csv", args.data_dir / "test.csv"]
    examples, read_s = timed(lambda: [e for f in files for e in read_examples(f)])
    read_per_s = len(examples) / read_s
    train = read_examples(files[0])
    if args.quick:
        train = train[:2000]
    texts = [e.text for e in train]
    epochs = 2 if args.quick else 10
    read_s_train = len(texts) / read_per_s  # the reading share of this subset, at the measured rate

    stages = throughput(texts, read_s_train, bpe_vocab_size=2000 if args.quick else 8000)
    lengths = {
        name: [len(t) for t in build_tokenizer(name).tokenize_many(texts)] for name in ("basic_english",)
    }
    waste = padding(lengths["basic_english"], epochs)

    result = {
        "benchmark": "data",
        "dataset": "ag_news train_subset" + (" (first 2000, --quick)" if args.quick else ""),
        "examples": len(texts),
        "read_per_s": round(read_per_s),
        "read_rows": len(examples),
        "tokenizers": stages,
        "batch_size": BATCH_SIZE,
        "epochs_averaged": epochs,
        "padding_basic_english": waste,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    atomic_write_json(args.out, result)

    print(f"AG News, {len(texts)} training texts; reading CSV: {read_per_s:,.0f} examples/s")
    print("\ntokenizer       tokenize/s    vocab/s   encode/s  read+tok+vocab/s  train s   vocab  tokens")
    for name, s in stages.items():
        print(f"{name:14s} {s['tokenize_per_s']:>11,} {s['vocab_build_per_s']:>10,} {s['encode_per_s']:>10,} "
              f"{s['read_tokenize_vocab_per_s']:>17,} {s['tokenizer_train_s']:>8.2f} {s['vocab_size']:>7,} "
              f"{s['mean_tokens']:>7}")  # fmt: skip
    print(f"\npadding at batch size {BATCH_SIZE} (basic_english lengths, mean over {epochs} epochs)")
    for name, w in waste.items():
        print(
            f"{name:34s} {100 * w['padding_fraction']:6.2f} %   {w['batches_per_epoch']:7.1f} batches/epoch"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
