# ruff: noqa: E501  (tables of request bodies read best one per line)
"""The server against hostile and careless clients (issue 16): every client-caused failure is a 4xx with
a clear message, never a 500; an oversized body's 413 is readable by every client; slow, idle or
vanished clients cannot hold the server; requests for another host are refused.

Each test runs a real uvicorn server on 127.0.0.1 (a free port) with ``rnnkit serve``'s settings.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit
from fuzz_helpers import TINY
from rnnkit.serve.app import create_app, serve_in_thread
from rnnkit.serve.settings import ServeSettings
from tiny_text import texts, write_csv


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    write_csv(root / "train.csv", texts(60, seed=2))
    (root / "corpus.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 40, encoding="utf-8")
    clf = rnnkit.train(root / "train.csv", preset="lesson-rnn", out=root / "clf", **TINY)
    lm_options = {k: v for k, v in TINY.items() if k != "batch_size"}
    lm = rnnkit.train(root / "corpus.txt", task="lm", out=root / "lm", tokenizer="char", layers=1,
                      batch_size=4, bptt=8, **lm_options)  # fmt: skip
    return {"clf": rnnkit.load(clf, device="cpu"), "lm": rnnkit.load(lm, device="cpu")}


SETTINGS = dict(max_body_bytes=10_000, timeout_keep_alive=1.0, max_concurrent_jobs=2)


@pytest.fixture(scope="module")
def clf_url(runs):
    options = ServeSettings(**SETTINGS)
    with serve_in_thread(create_app(runs["clf"], options), settings=options, graceful_timeout=2) as url:
        yield url


@pytest.fixture(scope="module")
def lm_url(runs):
    options = ServeSettings(**SETTINGS)
    with serve_in_thread(create_app(runs["lm"], options), settings=options, graceful_timeout=2) as url:
        yield url


def post_raw(url: str, path: str, body: bytes, headers: dict | None = None) -> httpx.Response:
    return httpx.post(url + path, content=body, headers={"content-type": "application/json", **(headers or {})},
                      timeout=30)  # fmt: skip


def assert_client_error(response: httpx.Response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    error = response.json()["error"]
    assert error["code"] and error["message"]
    return error


# --- bodies no client should be able to turn into a 500 ------------------------------------------------------
BAD_PREDICT_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"texts"',
    b'{"texts": "a string"}',
    b'{"texts": [1, 2]}',
    b'{"texts": [null]}',
    b'{"texts": ["\\ud800"]}',
    b'{"texts": ["ok", "\\udfff"]}',
    b'{"texts": ["a"], "top_k": 0}',
    b'{"texts": ["a"], "top_k": -1}',
    b'{"texts": ["a"], "top_k": 1e308}',
    b'{"texts": ["a"], "top_k": "x"}',
    b'{"texts": ["a"], "top_k": NaN}',
    b'{"texts": ["a"], "top_k": 1' + b"0" * 5000 + b"}",
    b'{"texts": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b"\xff\xfe\x00garbage",
    b'{"texts": ["' + b"x" * 20_000 + b'"]}',  # over the 10,000-byte body limit
]


@pytest.mark.parametrize("body", BAD_PREDICT_BODIES, ids=lambda b: b[:30].decode("latin-1"))
def test_bad_predict_bodies_are_4xx(clf_url, body):
    assert_client_error(post_raw(clf_url, "/v1/predict", body))


BAD_GENERATE = [
    {"length": 0},
    {"length": -1},
    {"length": 10**30},
    {"length": 1e308},
    {"temperature": -1},
    {"top_p": 0},
    {"top_p": 2},
    {"top_k": 0},
    {"seed": 1e23},
    {"seed": -1},
    {"seed": 2**64},
    {"prime": "\ud800"},
    {"prime": 5},
    {"stream": "yes please"},
]


@pytest.mark.parametrize("fields", BAD_GENERATE, ids=lambda f: json.dumps(f)[:30])
def test_bad_generate_bodies_are_4xx(lm_url, fields):
    body = json.dumps({"prime": "the", "length": 3, **fields}).encode()
    assert_client_error(post_raw(lm_url, "/v1/generate", body))


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 1e308},
        {"top_p": 1e-300},
        {"temperature": 1e-300},
        {"top_k": 10**9},
        {"seed": 2**64 - 1},
    ],
    ids=lambda f: json.dumps(f)[:30],
)
def test_extreme_but_valid_generation_works(lm_url, fields):
    response = httpx.post(lm_url + "/v1/generate", json={"prime": "the", "length": 5, **fields}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["text"].startswith("the")


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=st.binary(max_size=200))
def test_random_bytes_never_give_500(clf_url, body):
    response = post_raw(clf_url, "/v1/predict", body)
    assert response.status_code < 500, response.text


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=False), st.integers(), st.text(max_size=5), st.none(), st.booleans(),
        st.lists(st.integers(), max_size=2),
    ),
    field=st.sampled_from(["length", "temperature", "top_k", "top_p", "seed", "prime", "stream"]),
)  # fmt: skip
def test_any_generate_field_value_never_gives_500(lm_url, field, value):
    body = json.dumps({"prime": "the", "length": 3, field: value}).encode()
    response = post_raw(lm_url, "/v1/generate", body)
    assert response.status_code < 500, (field, value, response.text)


def test_a_500_carries_no_exception_text(runs):
    from fastapi.testclient import TestClient

    class Broken:
        task, labels, encoder, path = "classify", ["a", "b"], None, "/secret/place"

        def predict(self, texts, top_k=None):
            raise RuntimeError("/secret/place/model.safetensors exploded")

    with TestClient(create_app(Broken()), raise_server_exceptions=False) as client:
        response = client.post("/v1/predict", json={"texts": ["x"]})
    assert response.status_code == 500
    assert "secret" not in response.text and "exploded" not in response.text


def test_model_info_has_no_absolute_path(clf_url, runs):
    info = httpx.get(clf_url + "/v1/model").json()
    assert info["run"] == runs["clf"].path.name
    assert str(runs["clf"].path.parent) not in json.dumps(info)


# --- the 413 for an oversized body is read by every client ----------------------------------------------------
BIG = b'{"texts": ["' + b"x" * 2_000_000 + b'"]}'


def test_413_is_readable_by_urllib(clf_url):
    request = urllib.request.Request(
        clf_url + "/v1/predict", data=BIG, headers={"content-type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["code"] == "body_too_large"


def test_413_is_readable_by_httpx(clf_url):
    response = post_raw(clf_url, "/v1/predict", BIG)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_413_is_readable_by_curl(clf_url, tmp_path):
    body = tmp_path / "big.json"
    body.write_bytes(BIG)
    out = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H", "content-type: application/json",
         "--data-binary", f"@{body}", clf_url + "/v1/predict"],
        capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    text, code = out.stdout.rsplit("\n", 1)
    assert code == "413", out
    assert json.loads(text)["error"]["code"] == "body_too_large"


def test_413_for_a_chunked_body_without_length(clf_url):
    def chunks():
        for _ in range(50):
            yield b"x" * 10_000

    response = httpx.post(
        clf_url + "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# --- slow, idle and many clients ----------------------------------------------------------------------------------
def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_idle_keep_alive_connection_is_closed(clf_url):
    sock = _connect(clf_url)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.2)
    sock.recv(4096)
    start = time.monotonic()
    assert _closed_within(sock, 10)  # timeout_keep_alive is 1 s
    assert time.monotonic() - start < 8


def test_half_sent_headers_are_closed(runs, monkeypatch):
    from rnnkit.serve import app as app_module

    monkeypatch.setattr(app_module, "HEADER_TIMEOUT", 1.0)
    options = ServeSettings(**SETTINGS)
    with serve_in_thread(create_app(runs["clf"], options), settings=options, graceful_timeout=2) as url:
        sock = _connect(url)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its headers
        start = time.monotonic()
        assert _closed_within(sock, 10)
        assert time.monotonic() - start < 5
        drip = _connect(url)  # one byte at a time used to keep it open forever
        for byte in b"GET /health HTTP/1.1\r\n":
            try:
                drip.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
        assert _closed_within(drip, 5)
        assert httpx.get(url + "/health").status_code == 200


def test_a_stalled_body_gets_408_or_is_closed(runs):
    options = ServeSettings(**SETTINGS)
    from rnnkit.serve import app as app_module

    old = app_module.BODY_TIMEOUT
    app_module.BODY_TIMEOUT = 1.0
    try:
        app = create_app(runs["clf"], options)
        with serve_in_thread(app, settings=options, graceful_timeout=2) as url:
            sock = _connect(url)
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"texts\"")  # fmt: skip
            sock.settimeout(10)
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 408") or answer == b"", answer[:200]
    finally:
        app_module.BODY_TIMEOUT = old


def test_host_header_is_checked(clf_url):
    assert httpx.get(clf_url + "/health").status_code == 200
    assert httpx.get(clf_url + "/health", headers={"host": "localhost:1234"}).status_code == 200
    refused = httpx.get(clf_url + "/health", headers={"host": "evil.example.com"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "host_not_allowed"


def test_allowed_hosts_option(runs):
    options = ServeSettings(**SETTINGS, allowed_hosts="api.example.com")
    with serve_in_thread(create_app(runs["clf"], options), settings=options, graceful_timeout=2) as url:
        assert httpx.get(url + "/health", headers={"host": "api.example.com"}).status_code == 200
        assert httpx.get(url + "/health").status_code == 400


def test_generation_stops_when_the_client_disconnects(runs, monkeypatch):
    """A non-streamed /v1/generate whose client has gone stops sampling (it kept going for all `length`)."""
    sampled = []
    lm = runs["lm"]
    real_stream = type(lm).stream

    def counting_stream(self, *args, **kwargs):
        for piece in real_stream(self, *args, **kwargs):
            sampled.append(piece)
            time.sleep(0.01)
            yield piece

    monkeypatch.setattr(type(lm), "stream", counting_stream)
    options = ServeSettings(**{**SETTINGS, "max_generate_length": 100_000})
    with serve_in_thread(create_app(lm, options), settings=options, graceful_timeout=2) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/generate", json={"prime": "the", "length": 5_000}, timeout=0.5)
        time.sleep(1.0)
        count = len(sampled)
        time.sleep(1.0)
        assert len(sampled) == count, "sampling went on after the client left"
        assert count < 1_000


def test_connection_limit_answers_503_not_hang(runs):
    options = ServeSettings(**{**SETTINGS, "max_connections": 2})
    with serve_in_thread(create_app(runs["clf"], options), settings=options, graceful_timeout=2) as url:
        idle = [_connect(url) for _ in range(3)]
        time.sleep(0.2)
        response = httpx.get(url + "/health", timeout=10)
        assert response.status_code in (200, 503)
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(url + "/health", timeout=10).status_code == 200


def test_sigterm_under_load_finishes_in_flight_requests(runs):
    """SIGTERM while generations are running: they finish (200), new connections are refused, and the
    process exits within the graceful timeout."""
    import concurrent.futures
    import signal
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "serve", str(runs["lm"].path), "--port", str(port), "--device", "cpu",
         "--graceful-timeout", "20", "--max-concurrent-jobs", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            body = {"prime": "the", "length": 1500, "seed": 1}
            futures = [pool.submit(httpx.post, url + "/v1/generate", json=body, timeout=60) for _ in range(4)]
            time.sleep(1.0)  # the generations are running
            start = time.monotonic()
            server.send_signal(signal.SIGTERM)
            answers = [f.result() for f in futures]
        assert [a.status_code for a in answers] == [200] * 4
        assert all(len(a.json()["text"]) > 100 for a in answers)
        server.wait(timeout=30)
        assert time.monotonic() - start < 25
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
