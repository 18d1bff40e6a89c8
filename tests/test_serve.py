"""The HTTP service: requests and limits, concurrency and micro-batching, metrics, shutdown, the CLI."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import rnnkit
from rnnkit.data import TextEncoder
from rnnkit.errors import ConfigError
from rnnkit.export import ExportedClassifier
from rnnkit.serve.app import ServeSettings, create_app, serve_in_thread
from rnnkit.serve.batching import BatcherClosed, MicroBatcher
from rnnkit.serve.metrics import Registry, ServerMetrics
from tiny_text import TINY, write_splits

TEXTS = ["the team won the match", "new software for the cloud server", "bake bread with butter", "goal"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    train, test = write_splits(folder / "data")
    return rnnkit.train(train, test=str(test), out=folder / "run", **{**TINY, "max_steps": 12})


@pytest.fixture(scope="module")
def eager(run_dir):
    return rnnkit.load(run_dir, device="cpu")


@pytest.fixture(scope="module")
def client(eager):
    settings = ServeSettings(max_texts=8, max_chars=200, max_body_bytes=4_000)
    with TestClient(create_app(eager, settings)) as c:
        yield c


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample in a Prometheus text page (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# --- requests --------------------------------------------------------------------------------------
def test_predict_returns_one_prediction_per_text_like_the_python_api(client, eager):
    response = client.post("/v1/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    expected = eager.predict(TEXTS)
    assert [p["text"] for p in predictions] == TEXTS
    for got, want in zip(predictions, expected, strict=True):
        assert set(got) == {"text", "label", "probability", "probs"}
        assert list(got["probs"]) == list(want["probs"])  # every label, most likely first
        assert got["label"] == want["label"]
        assert np.allclose(list(got["probs"].values()), list(want["probs"].values()), atol=1e-5)
        assert sum(got["probs"].values()) == pytest.approx(1.0, abs=1e-4)


def test_top_k_keeps_the_most_likely_labels(client, eager):
    got = client.post("/v1/predict", json={"texts": ["goal"], "top_k": 2}).json()["predictions"][0]
    want = eager.predict(["goal"])[0]
    assert list(got["probs"]) == list(want["probs"])[:2]
    assert client.post("/v1/predict", json={"texts": ["goal"], "top_k": 99}).status_code == 200
    zero = client.post("/v1/predict", json={"texts": ["goal"], "top_k": 0})
    assert error_of(zero)["code"] == "invalid_request"


def test_empty_list_gives_no_predictions(client):
    response = client.post("/v1/predict", json={"texts": []})
    assert response.status_code == 200
    assert response.json() == {"predictions": []}


def test_unicode_and_empty_texts_are_labelled(client, eager):
    texts = ["naïve café 東京 🙂", "", "   "]
    response = client.post("/v1/predict", json={"texts": texts})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["text"] for p in predictions] == texts
    assert [p["label"] for p in predictions] == [p["label"] for p in eager.predict(texts)]


def test_invalid_json_is_422_with_a_json_error(client):
    response = client.post(
        "/v1/predict", content=b'{"texts": ["a"', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert "not valid JSON" in error["message"]


@pytest.mark.parametrize(
    "body, where",
    [({"texts": "one text"}, "texts"), ({"texts": [1, 2]}, "texts.0"), ({}, "texts"), ([], "body")],
)
def test_wrong_fields_are_422_naming_the_field(client, body, where):
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(where)


def test_over_long_text_is_413_naming_the_text_and_limit(client):
    response = client.post("/v1/predict", json={"texts": ["ok", "x" * 201]})
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "text_too_long"
    assert (error["index"], error["limit"]) == (1, 200)
    assert "text 1 has 201 characters; the limit is 200" in error["message"]
    at_limit = client.post("/v1/predict", json={"texts": ["x" * 200]})
    assert at_limit.status_code == 200


def test_too_many_texts_is_413(client):
    response = client.post("/v1/predict", json={"texts": ["a"] * 9})
    assert response.status_code == 413
    error = error_of(response)
    assert (error["code"], error["limit"]) == ("too_many_texts", 8)
    assert "9 texts" in error["message"]


def test_oversized_body_is_413_by_content_length(client):
    body = json.dumps({"texts": ["word " * 1000]}).encode()
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    error = error_of(response)
    assert (error["code"], error["limit"]) == ("body_too_large", 4_000)
    assert f"{len(body):,} bytes" in error["message"]


def test_oversized_body_is_413_when_streamed_without_a_length(client):
    def chunks():  # no Content-Length: the server counts as it reads
        yield b'{"texts": ["'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"]}'

    response = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_unknown_path_and_wrong_task_are_json_errors(client):
    assert error_of(client.get("/nope"))["code"] == "not_found"
    response = client.post("/v1/generate", json={"prime": "a"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "wrong_task"
    assert "language model" in error["message"] and "/v1/predict" in error["message"]


def test_health_model_page_and_docs(client, eager):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["task"] == "classify"
    assert info["labels"] == eager.labels
    assert info["backend"] == "eager"
    assert info["config"]["model"]["cell"] == eager.config.model.cell
    assert info["limits"]["max_texts"] == 8
    page = client.get("/")
    assert page.status_code == 200 and 'id="text"' in page.text
    assert 'fetch("/v1/predict"' in client.get("/static/app.js").text
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_inspect_returns_the_trace_and_the_report_page(client):
    response = client.post("/v1/inspect", json={"text": "the team won", "states": False})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["tokens"] == ["the", "team", "won"]
    assert data["task"] == "classify" and data["states"] is None
    with_states = client.post("/v1/inspect", json={"text": "goal"}).json()
    assert with_states["states"] is not None
    page = client.get("/inspect", params={"text": "the team won"})
    assert page.status_code == 200 and page.text.lstrip().lower().startswith("<!doctype html>")
    assert error_of(client.post("/v1/inspect", json={"text": "x" * 201}))["code"] == "text_too_long"


def test_metrics_count_requests_and_errors(client):
    before = client.get("/metrics").text
    client.post("/v1/predict", json={"texts": ["a"] * 9})
    client.post("/v1/predict", json={"texts": ["goal"]})
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    ok = {"endpoint": "/v1/predict", "status": "200"}
    assert metric(text, "rnnkit_requests_total", **ok) == metric(before, "rnnkit_requests_total", **ok) + 1
    too_many = {"endpoint": "/v1/predict", "code": "too_many_texts"}
    errors_before = metric(before, "rnnkit_errors_total", **too_many)
    assert metric(text, "rnnkit_errors_total", **too_many) == errors_before + 1
    assert metric(text, "rnnkit_request_duration_seconds_count", endpoint="/v1/predict") > 0
    assert metric(text, "rnnkit_batch_size_count") > 0
    for name in ("requests_total", "request_duration_seconds", "batch_size", "errors_total"):
        assert f"# TYPE rnnkit_{name} " in text


# --- concurrency -----------------------------------------------------------------------------------
def test_64_parallel_requests_are_answered_correctly_in_shared_batches(eager):
    texts = [f"{a} {b} match today" if i % 2 else f"{b} bread {a}" for i, (a, b) in
             enumerate((x, y) for x in ("team", "code", "soup", "goal") for y in range(16))]  # fmt: skip
    assert len(set(texts)) == 64
    expected = {t: p for t, p in zip(texts, eager.predict(texts), strict=True)}
    app = create_app(eager, ServeSettings(max_batch=16, max_wait_ms=50))

    async def fire(base: str):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            responses = await asyncio.gather(*(http.post("/v1/predict", json={"texts": [t]}) for t in texts))
            return responses, (await http.get("/metrics")).text

    with serve_in_thread(app) as base:
        responses, text = asyncio.run(fire(base))
    for text_sent, response in zip(texts, responses, strict=True):
        assert response.status_code == 200
        (got,) = response.json()["predictions"]
        want = expected[text_sent]
        assert got["text"] == text_sent
        assert got["label"] == want["label"]
        assert np.allclose(list(got["probs"].values()), list(want["probs"].values()), atol=1e-5)
    batches = metric(text, "rnnkit_batch_size_count")
    singles = metric(text, "rnnkit_batch_size_bucket", le="1")
    assert metric(text, "rnnkit_batch_size_sum") == 64  # every text ran exactly once
    assert batches - singles > 0, f"no batch larger than 1 among {batches:g} batches"
    assert batches < 64
    assert metric(text, "rnnkit_batch_size_bucket", le="16") == batches  # max_batch is respected


def _slow_classifier(seconds: float) -> ExportedClassifier:
    def run(ids, lengths):
        time.sleep(seconds)
        return np.tile([[0.25, 0.75]], (len(ids), 1)).astype(np.float32)

    return ExportedClassifier(run, TextEncoder.fit(["a b"]), ["no", "yes"], backend="onnx")


def test_shutdown_lets_in_flight_requests_finish():
    app = create_app(_slow_classifier(0.5), ServeSettings(max_batch=1))
    results = []
    with serve_in_thread(app) as base:

        def call():
            results.append(httpx.post(f"{base}/v1/predict", json={"texts": ["a", "b"]}, timeout=30))

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.3)  # the request is being answered when the server is told to stop
    worker.join()
    assert [r.status_code for r in results] == [200]
    assert [p["label"] for p in results[0].json()["predictions"]] == ["yes", "yes"]


def test_a_failing_model_gives_500_json_and_the_server_keeps_answering():
    calls = []

    def fail_once(ids, lengths):
        calls.append(len(ids))
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return np.tile([[0.25, 0.75]], (len(ids), 1)).astype(np.float32)

    model = ExportedClassifier(fail_once, TextEncoder.fit(["a b"]), ["no", "yes"], backend="onnx")
    with TestClient(create_app(model), raise_server_exceptions=False) as c:
        failed = c.post("/v1/predict", json={"texts": ["a"]})
        assert failed.status_code == 500
        # The answer carries no exception text (it can hold paths and internals); the log has it.
        assert error_of(failed) == {"code": "internal_error",
                                    "message": "the server failed on this request; see its log"}  # fmt: skip
        assert "out of memory" not in failed.text
        assert c.post("/v1/predict", json={"texts": ["a"]}).json()["predictions"][0]["label"] == "yes"
        text = c.get("/metrics").text
    assert metric(text, "rnnkit_errors_total", endpoint="/v1/predict", code="internal_error") == 1


def test_onnx_backend_serves_the_same_predictions(run_dir, eager):
    with TestClient(create_app(run_dir, ServeSettings(backend="onnx"))) as c:
        assert c.get("/v1/model").json()["backend"] == "onnx"
        predictions = c.post("/v1/predict", json={"texts": TEXTS}).json()["predictions"]
        inspected = c.post("/v1/inspect", json={"text": "goal", "states": False})
    for got, want in zip(predictions, eager.predict(TEXTS), strict=True):
        assert got["label"] == want["label"]
        assert np.allclose([got["probs"][k] for k in want["probs"]], list(want["probs"].values()), atol=1e-4)
    assert inspected.status_code == 200  # inspection runs on the eager weights of the same run


@pytest.fixture(scope="module", params=["onnx", "torchscript"])
def exported(run_dir, request):
    from rnnkit.export import export_model

    suffix = ".onnx" if request.param == "onnx" else ".pt"
    return export_model(run_dir, run_dir.parent / f"model{suffix}", format=request.param).path


def test_an_export_is_served_on_its_own_runtime_and_inspect_is_a_clear_501(exported, eager):
    """Regression: `rnnkit serve model.onnx` said "(eager)", and /v1/inspect failed with a 500."""
    from rnnkit.serve.app import backend_summary

    format = "onnx" if exported.suffix == ".onnx" else "torchscript"
    app = create_app(exported, ServeSettings())  # the default backend, as `rnnkit serve model.onnx` runs
    summary = backend_summary(app)
    assert summary.startswith({"onnx": "ONNX Runtime", "torchscript": "TorchScript"}[format]), summary
    assert "from an export" in summary and "eager" not in summary
    with TestClient(app) as c:
        info = c.get("/v1/model").json()
        assert (info["backend"], info["inspect"]) == (format, False)
        predictions = c.post("/v1/predict", json={"texts": TEXTS}).json()["predictions"]
        assert [p["label"] for p in predictions] == [p["label"] for p in eager.predict(TEXTS)]
        answers = c.post("/v1/inspect", json={"text": "goal"}), c.get("/inspect", params={"text": "goal"})
        for answer in answers:
            assert answer.status_code == 501, answer.text
            error = error_of(answer)
            assert error["code"] == "not_available"
            assert "export cannot be inspected" in error["message"], error
            assert "serve the run folder" in error["message"], error
        assert metric(c.get("/metrics").text, "rnnkit_errors_total", endpoint="/v1/inspect",
                      code="not_available") == 1  # fmt: skip


def test_a_run_folder_says_it_can_be_inspected_and_which_backend_serves_it(run_dir):
    from rnnkit.serve.app import backend_summary

    eager_app = create_app(run_dir, ServeSettings(device="cpu"))
    assert backend_summary(eager_app) == "eager PyTorch on cpu"
    with TestClient(eager_app) as c:
        assert c.get("/v1/model").json()["inspect"] is True
    onnx_app = create_app(run_dir, ServeSettings(backend="onnx"))
    assert backend_summary(onnx_app) == "ONNX Runtime, exported in memory and checked against eager PyTorch"


def test_settings_are_validated():
    with pytest.raises(ConfigError, match=r"max_batch \(--max-batch\) must be a positive integer, got 0"):
        ServeSettings(max_batch=0)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        ServeSettings(max_wait_ms=-1)


# --- a language model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lm_client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm")
    corpus = folder / "corpus.txt"
    corpus.write_text("the cat sat on the mat. the dog ate the bread.\n" * 30, encoding="utf-8")
    run = rnnkit.train(corpus, task="lm", tokenizer="char", out=folder / "run", max_steps=3, embed_dim=8,
                       hidden_dim=8, batch_size=4, device="cpu", threads=1)  # fmt: skip
    lm = rnnkit.load(run, device="cpu")
    with TestClient(create_app(lm, ServeSettings(max_generate_length=50, max_chars=100))) as c:
        yield c, lm


def test_generate_returns_what_the_python_api_generates(lm_client):
    client, lm = lm_client
    response = client.post(
        "/v1/generate", json={"prime": "the ", "length": 20, "seed": 3, "temperature": 0.8}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == lm.generate("the ", 20, seed=3, temperature=0.8)
    assert body["text"].startswith("the ") and (body["prime"], body["length"]) == ("the ", 20)


def test_generate_streams_ndjson_pieces_that_join_to_the_text(lm_client):
    client, lm = lm_client
    with client.stream(
        "POST", "/v1/generate", json={"prime": "the", "length": 15, "seed": 1, "stream": True}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1] == {"done": True}
    pieces = [line["text"] for line in lines[:-1]]
    assert len(pieces) > 2 and pieces[0] == "the"
    assert "".join(pieces) == lm.generate("the", 15, seed=1)


def test_generate_limits_and_wrong_task(lm_client):
    client, _ = lm_client
    too_long = client.post("/v1/generate", json={"length": 51})
    assert too_long.status_code == 413 and error_of(too_long)["limit"] == 50
    assert client.post("/v1/generate", json={"prime": "x" * 101}).status_code == 413
    bad = client.post("/v1/generate", json={"temperature": -1})
    assert bad.status_code == 422 and error_of(bad)["message"].startswith("temperature")
    wrong = client.post("/v1/predict", json={"texts": ["a"]})
    assert wrong.status_code == 400 and "/v1/generate" in error_of(wrong)["message"]
    info = client.get("/v1/model").json()
    assert (info["task"], info["labels"]) == ("lm", None)


# --- the micro-batcher -----------------------------------------------------------------------------
def run_async(coroutine):
    return asyncio.run(coroutine)


def test_batcher_groups_up_to_max_batch_and_keeps_order():
    sizes = []

    def double(items):
        sizes.append(len(items))
        return [2 * x for x in items]

    async def main():
        batcher = MicroBatcher(double, max_batch=4, max_wait_ms=100)
        results = await asyncio.gather(*(batcher.submit([i, 100 + i]) for i in range(5)))
        await batcher.close()
        return results

    assert run_async(main()) == [[2 * i, 200 + 2 * i] for i in range(5)]
    assert sum(sizes) == 10 and max(sizes) == 4


def test_batcher_lone_client_never_waits_but_load_does():
    sizes = []

    def record(items):
        sizes.append(len(items))
        return items

    async def timed(batcher, items):
        start = time.perf_counter()
        await batcher.submit(items)
        return time.perf_counter() - start

    async def main():
        batcher = MicroBatcher(record, max_batch=64, max_wait_ms=300)
        alone = await timed(batcher, ["a"])  # no load: runs at once
        await batcher.submit(["b", "c"])  # a batch of two: load
        late = asyncio.ensure_future(timed(batcher, ["d"]))  # now the next batch waits for company ...
        await asyncio.sleep(0.05)
        await batcher.submit(["e"])  # ... which joins it
        waited = await late
        await batcher.close()
        return alone, waited

    alone, waited = run_async(main())
    assert alone < 0.2
    assert 0.2 < waited < 5
    assert sizes == [1, 2, 2]


def test_batcher_max_batch_1_runs_every_item_alone():
    sizes = []

    async def main():
        batcher = MicroBatcher(lambda items: sizes.append(len(items)) or items, max_batch=1, max_wait_ms=50)
        await asyncio.gather(*(batcher.submit([i]) for i in range(6)))
        await batcher.close()

    run_async(main())
    assert sizes == [1] * 6


def test_batcher_error_reaches_every_request_of_the_batch_and_it_keeps_working():
    def fail_on_boom(items):
        if "boom" in items:
            raise RuntimeError("model failed")
        return items

    async def main():
        batcher = MicroBatcher(fail_on_boom, max_batch=8, max_wait_ms=50)
        first = await asyncio.gather(batcher.submit(["a"]), batcher.submit(["boom"]), return_exceptions=True)
        after = await batcher.submit(["b"])
        await batcher.close()
        return first, after

    first, after = run_async(main())
    assert all(isinstance(r, RuntimeError) and str(r) == "model failed" for r in first)
    assert after == ["b"]


def test_batcher_close_finishes_queued_work_then_refuses_new():
    done = []

    def slow(items):
        time.sleep(0.05)
        done.extend(items)
        return items

    async def main():
        batcher = MicroBatcher(slow, max_batch=2, max_wait_ms=0)
        tasks = [asyncio.ensure_future(batcher.submit([i])) for i in range(6)]
        await asyncio.sleep(0.01)
        await batcher.close()
        with pytest.raises(BatcherClosed):
            await batcher.submit(["late"])
        return [t.result() for t in tasks]

    assert run_async(main()) == [[i] for i in range(6)]
    assert sorted(done) == list(range(6))


def test_batcher_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_batch must be an integer ≥ 1, got 0"):
        MicroBatcher(list, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms must be ≥ 0"):
        MicroBatcher(list, max_wait_ms=-1)


# --- metrics ---------------------------------------------------------------------------------------
def test_prometheus_text_format():
    registry = Registry()
    requests = registry.counter("x_requests_total", "Requests.", ("endpoint",))
    requests.inc(endpoint='/a"b')
    requests.inc(2, endpoint="/c")
    latency = registry.histogram("x_seconds", "Latency.", buckets=(0.1, 1))
    for value in (0.05, 0.1, 0.5, 3):
        latency.observe(value)
    text = registry.render()
    assert 'x_requests_total{endpoint="/a\\"b"} 1' in text
    assert 'x_requests_total{endpoint="/c"} 2' in text
    assert 'x_seconds_bucket{le="0.1"} 2' in text  # bounds are inclusive
    assert 'x_seconds_bucket{le="1"} 3' in text
    assert 'x_seconds_bucket{le="+Inf"} 4' in text
    assert "x_seconds_count 4" in text and "x_seconds_sum 3.65" in text
    with pytest.raises(ValueError, match="takes labels"):
        requests.inc(path="/a")
    with pytest.raises(ValueError, match="only goes up"):
        requests.inc(-1, endpoint="/a")
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("x_seconds", "again")


def test_server_metrics_render_before_any_request():
    text = ServerMetrics().render()
    assert "rnnkit_texts_total 0" in text
    assert "# TYPE rnnkit_batch_size histogram" in text


# --- the command ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rnnkit_serve_command_answers_and_stops_on_ctrl_c(run_dir):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "rnnkit", "serve", str(run_dir), "--port", str(port), "--max-batch", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"rnnkit serve did not start:\n{process.stdout.read()}") from None
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        info = httpx.get(f"http://127.0.0.1:{port}/v1/model").json()
        assert info["batching"]["max_batch"] == 4
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"texts": ["goal"]})
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"on http://127.0.0.1:{port}/" in output


def test_rnnkit_serve_on_an_export_names_its_backend_and_stops_on_sigterm_with_0(run_dir):
    """Regression: `rnnkit serve model.pt` announced "(eager)"; SIGTERM ended it killed by the signal."""
    from rnnkit.export import export_model

    model = export_model(run_dir, run_dir.parent / "command.pt", format="torchscript").path
    port = _free_port()
    command = [sys.executable, "-m", "rnnkit", "serve", str(model), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{port}/v1/inspect"
                inspected = httpx.post(url, json={"text": "goal"}, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"rnnkit serve did not start:\n{process.stdout.read()}") from None
                time.sleep(0.2)
        assert inspected.status_code == 501 and inspected.json()["error"]["code"] == "not_available"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output  # a graceful stop, as on Ctrl-C
    first = output.splitlines()[0]
    assert first == (f"rnnkit: serving {model} (TorchScript, from an export; no inspection: serve the run "
                     f"folder for it) on http://127.0.0.1:{port}/")  # fmt: skip
    assert "interrupted" not in output and "Traceback" not in output
