"""Serving benchmark: requests/s and latency of ``rnnkit serve`` under a bounded load on 127.0.0.1.

Each server runs in its own process (``python -m rnnkit serve``), listening on 127.0.0.1 only, and is
stopped when its measurements are done. One client process sends one-text ``POST /v1/predict``
requests over keep-alive connections, ``concurrency`` of them in flight at a time, until ``--requests``
have been answered (or ``--max-seconds`` have passed), at each concurrency (1, 8, 32). Servers:

``eager-single``   PyTorch, one text per forward pass (``--max-batch 1``): the baseline
``eager-batched``  PyTorch, micro-batched (``--max-batch 32 --max-wait-ms 5``)
``onnx-single``    ONNX Runtime, one text per forward pass (for the single-text latency ratio)
``onnx-batched``   ONNX Runtime, micro-batched

Targets (issue 7): micro-batched throughput ≥ 3× the baseline at concurrency 32; ONNX Runtime single-text
latency ≤ 0.7× eager (p50 at concurrency 1, one text per pass; also measured in-process, without HTTP).

The model is the ``default`` preset's architecture (bidirectional GRU, max pooling) trained for a few
steps on AG News (``../shared/datasets/ag_news``; the bundled ``default`` data if absent): serving speed
does not depend on how well the weights are trained. ``--run RUN`` serves an existing run instead.
The texts are AG News test texts. The mean batch size per cell is read from the server's ``/metrics``.

Reliability (issue 16): every request's failure is counted (``errors``: a non-200 answer or a broken
connection), and the server's resident memory (RSS, from ``/proc``) is read after the warm-up and after
``--rss-requests`` more requests at the highest concurrency: memory must stay flat (growth < 10 %).

Writes ``benchmarks/results/serve.json`` and prints a Markdown table.

Usage:
    python benchmarks/serve.py [--quick] [--run RUN] [--requests 2000] [--concurrency 1 8 32] [--threads N]
                               [--servers eager-batched ...] [--rss-requests 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnkit._io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
AG_NEWS = ROOT.parent / "shared" / "datasets" / "ag_news"
HOST = "127.0.0.1"  # never anything else: the load stays on this machine
SERVERS = {
    "eager-single": ["--backend", "eager", "--max-batch", "1"],
    "eager-batched": ["--backend", "eager", "--max-batch", "32", "--max-wait-ms", "5"],
    "onnx-single": ["--backend", "onnx", "--max-batch", "1"],
    "onnx-batched": ["--backend", "onnx", "--max-batch", "32", "--max-wait-ms", "5"],
}


# --- the model and the texts -----------------------------------------------------------------------
def benchmark_texts(n: int) -> list[str]:
    """``n`` AG News test texts (the bundled default test data when the shared copy is absent)."""
    from rnnkit.data import read_examples

    spec = str(AG_NEWS / "test.csv") if (AG_NEWS / "test.csv").is_file() else "default:test"
    texts = [e.text for e in read_examples(spec)]
    return (texts * (n // len(texts) + 1))[:n]


def train_model(out: Path, steps: int, threads: int) -> Path:
    """The ``default`` preset's model, trained ``steps`` steps (enough to be a real run folder)."""
    import rnnkit

    data = str(AG_NEWS / "train_subset.csv") if (AG_NEWS / "train_subset.csv").is_file() else "default"
    options = {"max_steps": steps, "device": "cpu", "threads": threads, "eval_every": 0}
    if data != "default":
        options["test"] = str(AG_NEWS / "test.csv")
    return rnnkit.train(data, preset="default", out=out, **options)


# --- a light HTTP client: one keep-alive connection per worker ---------------------------------------
async def _request(reader, writer, body: bytes) -> bytes:
    writer.write(
        b"POST /v1/predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (HOST.encode(), len(body), body)
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    payload = await reader.readexactly(length)
    if status != 200 or b'"label"' not in payload:
        raise RequestFailed(f"request failed with {status}: {payload[:200]!r}")
    return payload


class RequestFailed(RuntimeError):
    """A non-200 answer."""


async def load(port: int, texts: list[str], concurrency: int, max_seconds: float) -> dict[str, float]:
    """Send every text as one request, ``concurrency`` at a time; throughput and latency percentiles."""
    bodies = [json.dumps({"texts": [t]}).encode() for t in texts]
    latencies: list[float] = []
    next_index = 0
    errors = 0
    deadline = time.perf_counter() + max_seconds

    async def worker():
        nonlocal next_index, errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while next_index < len(bodies) and time.perf_counter() < deadline:
                body = bodies[next_index]
                next_index += 1
                start = time.perf_counter()
                try:
                    await _request(reader, writer, body)
                except RequestFailed:
                    errors += 1
                    continue
                except (OSError, asyncio.IncompleteReadError, ValueError, AttributeError):
                    errors += 1  # a broken connection: count it, open another
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                latencies.append(time.perf_counter() - start)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "errors": errors,
        "stopped_by_time": len(latencies) + errors < len(bodies),
    }


# --- one server ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(run: Path, options: list[str], threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    command = [sys.executable, "-m", "rnnkit", "serve", str(run), "--host", HOST, "--port", str(port),
               "--threads", str(threads), *options]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read()}")
        try:
            if b'"ok"' in http_get(port, "/health"):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start within 120 s")


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc")


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def http_get(port: int, path: str) -> bytes:
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).split(b"\r\n\r\n", 1)[1]


def batch_totals(port: int) -> tuple[float, float]:
    """``(texts, forward passes)`` so far, from the server's ``rnnkit_batch_size`` histogram."""
    text = http_get(port, "/metrics").decode()
    total = re.search(r"^rnnkit_batch_size_sum (\S+)$", text, re.MULTILINE)
    count = re.search(r"^rnnkit_batch_size_count (\S+)$", text, re.MULTILINE)
    return (float(total.group(1)) if total else 0.0), (float(count.group(1)) if count else 0.0)


def measure_server(name: str, run: Path, texts: list[str], args) -> dict[str, dict]:
    process, port = start_server(run, SERVERS[name], args.threads)
    try:
        asyncio.run(load(port, texts[: args.warmup], 4, 60))  # warm-up: allocations, first runs
        rss_start = rss_bytes(process.pid)
        cells = {}
        for concurrency in args.concurrency:
            before = batch_totals(port)
            cell = asyncio.run(load(port, texts[: args.requests], concurrency, args.max_seconds))
            after = batch_totals(port)
            passes = after[1] - before[1]
            cell["mean_batch"] = round((after[0] - before[0]) / passes, 2) if passes else None
            cells[str(concurrency)] = cell
            print(f"  {name:<14} c={concurrency:<3} {cell['requests_per_s']:>8.1f} req/s  "
                  f"p50 {cell['p50_ms']:>7.2f} ms  p99 {cell['p99_ms']:>7.2f} ms  "
                  f"mean batch {cell['mean_batch']}  errors {cell['errors']}", flush=True)  # fmt: skip
        if args.rss_requests:
            top = max(args.concurrency)
            rss_before = rss_bytes(process.pid)
            many = (texts * (args.rss_requests // len(texts) + 1))[: args.rss_requests]
            soak = asyncio.run(load(port, many, top, 10 * args.max_seconds))
            rss_after = rss_bytes(process.pid)
            cells["rss"] = {
                "after_warmup_mb": round(rss_start / 2**20, 1),
                "before_mb": round(rss_before / 2**20, 1),
                "after_mb": round(rss_after / 2**20, 1),
                "growth": round(rss_after / rss_before - 1, 4),
                "requests": soak["requests"],
                "errors": soak["errors"],
                "concurrency": top,
            }
            print(f"  {name:<14} RSS {cells['rss']['before_mb']} MB -> {cells['rss']['after_mb']} MB over "
                  f"{soak['requests']:,} requests at c={top} ({cells['rss']['growth']:+.1%}), "
                  f"errors {soak['errors']}", flush=True)  # fmt: skip
        return cells
    finally:
        stop_server(process)


# --- in-process single-text latency (no HTTP) ------------------------------------------------------
def in_process_latency(run: Path, texts: list[str], threads: int) -> dict[str, float]:
    """Median milliseconds of one ``predict([text])`` call, eager vs ONNX Runtime."""
    import torch

    from rnnkit.export import load_predictor

    torch.set_num_threads(threads)
    out = {}
    for backend in ("eager", "onnx"):
        predictor = load_predictor(run, backend, device="cpu", threads=threads)
        times = []
        with torch.inference_mode():
            for text in texts[:20]:
                predictor.predict([text])  # warm-up
            for text in texts:
                start = time.perf_counter()
                predictor.predict([text])
                times.append(time.perf_counter() - start)
        out[f"{backend}_p50_ms"] = round(1000 * statistics.median(times), 3)
        del predictor
    out["onnx_over_eager"] = round(out["onnx_p50_ms"] / out["eager_p50_ms"], 3)
    return out


# --- report ----------------------------------------------------------------------------------------
def ratios(servers: dict[str, dict], top: str) -> dict[str, float | None]:
    """The targets' ratios: batched over baseline requests/s at the top concurrency; ONNX over eager p50."""

    def ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
        return round(a / b, digits) if a and b else None

    def rps(name: str) -> float | None:
        return servers.get(name, {}).get(top, {}).get("requests_per_s")

    def p50(name: str) -> float | None:
        return servers.get(name, {}).get("1", {}).get("p50_ms")

    return {
        f"eager_batched_over_baseline_rps_c{top}": ratio(rps("eager-batched"), rps("eager-single")),
        f"onnx_batched_over_baseline_rps_c{top}": ratio(rps("onnx-batched"), rps("eager-single")),
        "onnx_over_eager_p50_c1": ratio(p50("onnx-single"), p50("eager-single"), 3),
    }


def table(servers: dict[str, dict], concurrency: list[int]) -> str:
    lines = ["| server | concurrency | requests/s | p50 ms | p99 ms | mean batch | errors |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, cells in servers.items():
        for c in concurrency:
            cell = cells[str(c)]
            lines.append(f"| {name} | {c} | {cell['requests_per_s']:.1f} | {cell['p50_ms']:.2f} | "
                         f"{cell['p99_ms']:.2f} | {cell['mean_batch']} | {cell.get('errors', 0)} |")  # fmt: skip # noqa: E501
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 60 requests at concurrency 1 and 8")
    p.add_argument(
        "--run", type=Path, help="serve this run folder (default: train the default preset briefly)"
    )
    p.add_argument("--requests", type=int, default=2000, help="requests per server and concurrency")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="server inference threads [default: half the cores; the rest serve HTTP and run the client]",
    )
    p.add_argument("--max-seconds", type=float, default=180, help="time cap per server and concurrency")
    p.add_argument("--warmup", type=int, default=100, help="requests sent before measuring each server")
    p.add_argument("--servers", nargs="+", choices=list(SERVERS), default=list(SERVERS), help="servers to run")  # noqa: E501
    p.add_argument("--rss-requests", type=int, default=10_000, help="requests after the cells, at the top "
                   "concurrency, over which the server's RSS is compared (0: skip)")  # fmt: skip
    p.add_argument("--out", type=Path, help="JSON file [default: benchmarks/results/serve.json; with --quick "
                   "a file in the temporary folder, so smoke runs never replace real results]")  # fmt: skip
    args = p.parse_args()
    if args.quick:
        args.requests, args.concurrency, args.warmup, args.max_seconds = 60, [1, 8], 10, 60
        args.rss_requests = min(args.rss_requests, 200)
    if args.out is None:
        quick_out = Path(tempfile.gettempdir()) / "rnnkit-serve-quick.json"
        args.out = quick_out if args.quick else ROOT / "benchmarks/results/serve.json"

    texts = benchmark_texts(max(args.requests, args.warmup, 200))
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_model(Path(tmp) / "run", steps=5 if args.quick else 50, threads=args.threads)
        print(f"serving {run} on {HOST} with {args.threads} thread(s)", flush=True)
        latency = {}
        if "onnx-single" in args.servers:
            latency = in_process_latency(run, texts[: 50 if args.quick else 500], args.threads)
            eager_ms, onnx_ms = latency["eager_p50_ms"], latency["onnx_p50_ms"]
            print(f"  in-process single text: eager {eager_ms} ms, onnx {onnx_ms} ms", flush=True)
        servers = {name: measure_server(name, run, texts, args) for name in args.servers}
        config = json.loads((run / "config.json").read_text())["config"]["model"]

    top = str(max(args.concurrency))
    result = {
        "benchmark": "serve",
        "quick": args.quick,
        "host": HOST,
        "requests_per_cell": args.requests,
        "concurrency": args.concurrency,
        "server_threads": args.threads,
        "model": {
            k: config[k] for k in ("cell", "embed_dim", "hidden_dim", "layers", "bidirectional", "pool")
        },
        "texts": "ag_news test" if (AG_NEWS / "test.csv").is_file() else "bundled default test",
        "servers": servers,
        "in_process_single_text": latency,
        "ratios": ratios(servers, top),
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },  # fmt: skip
    }
    atomic_write_json(args.out, result)
    print()
    print(table(servers, args.concurrency))
    print()
    for key, value in result["ratios"].items():
        print(f"{key}: {value}")
    if latency:
        print(f"in-process onnx/eager single-text p50: {latency['onnx_over_eager']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
