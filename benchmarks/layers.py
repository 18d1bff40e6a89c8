"""How fast rnnkit's layers run ragged batches, next to raw torch.nn.

For LSTM and GRU, uni- and bidirectional, at (E, H, N) in {(64, 32, 16), (128, 128, 64), (300, 256, 128)},
on batches whose lengths are drawn uniformly from 5..80 (each batch padded to its longest), it
measures real (non-padding) tokens per second of

* ``packed``    raw ``torch.nn`` fed ``pack_padded_sequence`` (the baseline every ratio is relative to),
* ``padded``    raw ``torch.nn`` on the padded batch (fast, but wrong for ragged batches: the reverse
                direction starts on padding and the final states are the padding's),
* ``fast``      ``rnnkit.nn`` with ``backend="fast"``,
* ``reference`` ``rnnkit.nn`` with ``backend="reference"`` (the cells step by step),

for a training step (forward + backward) and for inference (forward under ``torch.no_grad``). It
prints a Markdown table of ratios to ``packed`` and writes everything to ``benchmarks/results/layers.json``.

    python benchmarks/layers.py                 # the full run (~15 min on 2 cores; run it alone)
    python benchmarks/layers.py --quick         # a smoke run: one small size, a few short batches
    python benchmarks/layers.py --threads 1     # torch.set_num_threads (default: every core)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import GRU, LSTM
from rnnkit.utils import resolve_device

SIZES = [(64, 32, 16), (128, 128, 64), (300, 256, 128)]  # (E, H, N)
VARIANTS = ("packed", "padded", "fast", "reference")
LAYERS = {"lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU)}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "layers.json"


def make_batches(count: int, n: int, e: int, min_len: int, max_len: int, device, seed: int):
    """``count`` batches of ``n`` sequences with lengths uniform in ``min_len..max_len``."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
        x = torch.randn(n, int(lengths.max()), e, generator=g)
        batches.append((x.to(device), lengths))
    return batches


def variant_fn(name: str, cell: str, e: int, h: int, bidirectional: bool, device):
    """A function ``(x, lengths) -> (output, h_n)`` for one variant, and its module."""
    ours_cls, torch_cls = LAYERS[cell]
    theirs = torch_cls(e, h, bidirectional=bidirectional, batch_first=True).to(device)
    if name in ("fast", "reference"):
        ours = ours_cls(e, h, bidirectional=bidirectional, batch_first=True, backend=name).to(device)
        ours.load_state_dict(theirs.state_dict())

        def run(x, lengths):
            output, final = ours(x, lengths=lengths)
            return output, final[0] if isinstance(final, tuple) else final

        return run, ours

    if name == "padded":

        def run(x, lengths):
            output, final = theirs(x)
            return output, final[0] if isinstance(final, tuple) else final

        return run, theirs

    def run(x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        output, final = theirs(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
        return output, final[0] if isinstance(final, tuple) else final

    return run, theirs


def time_batches(run, module, batches, train: bool, device) -> float:
    """Seconds to run every batch once (a training step or an inference pass each)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for x, lengths in batches:
        if train:
            module.zero_grad(set_to_none=True)
            output, h_n = run(x, lengths)
            (output.sum() + h_n.sum()).backward()
        else:
            with torch.no_grad():
                run(x, lengths)
    sync()
    return time.perf_counter() - start


def measure(cell, e, h, n, bidirectional, args, device) -> dict:
    """Real tokens/s of every variant, train and inference, interleaved round by round."""
    batches = make_batches(args.batches, n, e, args.min_len, args.max_len, device, seed=args.seed)
    tokens = sum(int(lengths.sum()) for _, lengths in batches)
    result = {"cell": cell, "bidirectional": bidirectional, "E": e, "H": h, "N": n, "tokens": tokens}
    for mode in ("train", "inference"):
        runs = {name: variant_fn(name, cell, e, h, bidirectional, device) for name in args.variants}
        seconds = {name: [] for name in runs}
        for run, module in runs.values():  # warm-up: kernels, allocator, oneDNN primitives
            time_batches(run, module, batches[:1], mode == "train", device)
        for _ in range(args.repeats):
            for name, (run, module) in runs.items():
                subset = batches if name != "reference" else batches[: args.reference_batches]
                elapsed = time_batches(run, module, subset, mode == "train", device)
                seconds[name].append(elapsed * len(batches) / len(subset))
        speed = {name: tokens / statistics.median(s) for name, s in seconds.items()}
        result[mode] = {
            "tokens_per_s": {name: round(v, 1) for name, v in speed.items()},
            "ratio_to_packed": {name: round(v / speed["packed"], 3) for name, v in speed.items()}
            if "packed" in speed
            else {},
        }
    return result


def table(results: list[dict], variants) -> str:
    """A Markdown table: packed tokens/s and every variant's ratio to it, train | inference."""
    others = [v for v in variants if v != "packed"]
    head = ["layer", "E, H, N"]
    for mode in ("train", "inference"):
        head += [f"{mode}: packed tok/s"] + [f"{mode}: {v}" for v in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        name = f"{r['cell'].upper()} {'bi' if r['bidirectional'] else 'uni'}"
        row = [name, f"{r['E']}, {r['H']}, {r['N']}"]
        for mode in ("train", "inference"):
            row.append(f"{r[mode]['tokens_per_s']['packed']:,.0f}")
            row += [f"{r[mode]['ratio_to_packed'][v]:.2f}×" for v in others]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: smallest size, few short batches")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--batches", type=int, default=6, help="batches per measurement")
    p.add_argument("--repeats", type=int, default=3, help="rounds; the median round is reported")
    p.add_argument("--reference-batches", type=int, default=2, help="batches timed for the (slow) reference")
    p.add_argument("--min-len", type=int, default=5)
    p.add_argument("--max-len", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sizes",
        nargs="+",
        type=_size,
        default=SIZES,
        metavar="E,H,N",
        help="sizes to run (default: all three)",
    )
    p.add_argument("--cells", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results (default: results/layers.json, layers_quick.json)",
    )
    args = p.parse_args(argv)
    if "packed" not in args.variants:
        p.error("--variants must include packed: every ratio is relative to it")
    if args.quick:
        args.sizes = args.sizes[:1]
        args.batches, args.repeats, args.reference_batches, args.max_len = 2, 1, 1, 20
    if args.out is None:  # a smoke run never overwrites the full run's results
        args.out = DEFAULT_OUT.with_name("layers_quick.json") if args.quick else DEFAULT_OUT
    return args


def _size(text: str) -> tuple[int, int, int]:
    try:
        e, h, n = (int(v) for v in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a size is E,H,N (three integers), got {text!r}") from err
    return e, h, n


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results = []
    for e, h, n in args.sizes:
        for cell in args.cells:
            for bidirectional in (False, True):
                result = measure(cell, e, h, n, bidirectional, args, device)
                results.append(result)
                ratios = "  ".join(
                    f"{m} fast {result[m]['ratio_to_packed'].get('fast', float('nan')):.2f}x"
                    for m in ("train", "inference")
                )
                print(
                    f"{cell} {'bi' if bidirectional else 'uni'} E={e} H={h} N={n}: {ratios}", file=sys.stderr
                )
    report = {
        "benchmark": "layers",
        "quick": args.quick,
        "torch": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "lengths": [args.min_len, args.max_len],
        "batches": args.batches,
        "repeats": args.repeats,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results, args.variants))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
