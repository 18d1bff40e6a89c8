"""The HTTP service: a FastAPI app over one loaded model, with micro-batching, limits and metrics.

``create_app(run_dir_or_model, settings)`` builds the app; ``serve(...)`` runs it with uvicorn
(``rnnkit serve RUN`` calls it). Endpoints:

=========================  ====================================================================
``GET /``                  the web page: type a text, see the label and a bar per class
``POST /v1/predict``       ``{"texts": [...], "top_k": K}`` → ``{"predictions": [...]}`` (classifier)
``POST /v1/generate``      ``{"prime", "length", "temperature", "top_k", "top_p", "seed", "stream"}``
                           → ``{"text"}``, or NDJSON lines ``{"text": piece}`` (language model)
``POST /v1/inspect``       ``{"text", "states"}`` → the inspection data of :mod:`rnnkit.inspect`
``GET /inspect?text=``     the inspection report page for a text (both: 501 when serving an exported file)
``GET /v1/model``          task, labels, settings summary, backend, limits
``GET /health``            ``{"status": "ok"}``
``GET /metrics``           Prometheus text: requests, latency, batch sizes, errors, queue
``GET /docs``              OpenAPI documentation (``/openapi.json``)
=========================  ====================================================================

Every error is JSON, ``{"error": {"code", "message", ...}}``: a request over a limit (body bytes,
texts per request, characters per text) gets 413, a malformed one (invalid JSON, wrong fields) 422.

>>> from fastapi.testclient import TestClient
>>> from rnnkit.export import ExportedClassifier
>>> from rnnkit.data import TextEncoder
>>> import numpy as np
>>> fake = ExportedClassifier(lambda ids, lengths: np.tile([[0.25, 0.75]], (len(ids), 1)),
...                           TextEncoder.fit(["a b"]), ["no", "yes"], backend="onnx")
>>> with TestClient(create_app(fake)) as client:
...     client.post("/v1/predict", json={"texts": ["a"], "top_k": 1}).json()
{'predictions': [{'text': 'a', 'label': 'yes', 'probability': 0.75, 'probs': {'yes': 0.75}}]}
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..errors import InputError
from .batching import BatcherClosed, MicroBatcher
from .metrics import CONTENT_TYPE, ServerMetrics
from .settings import ServeSettings

logger = logging.getLogger(__name__)

__all__ = [
    "ServeSettings",
    "create_app",
    "serve",
    "backend_summary",
    "serve_in_thread",
    "ApiError",
]


class ApiError(HTTPException):
    """An error answered as ``{"error": {"code", "message", **extra}}`` with ``status``.

    It is an ``HTTPException`` so FastAPI passes it through unchanged even when it is raised while
    the request body is being read (the body-size limit).
    """

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(status_code=status, detail=message)
        self.code = code
        self.message = message
        self.extra = extra


# ---------------------------------------------------------------------------------------------------
# request bodies
# ---------------------------------------------------------------------------------------------------
class PredictRequest(BaseModel):
    texts: list[str] = Field(description="Texts to label (an empty list gives no predictions).")
    top_k: int | None = Field(None, ge=1, description="Keep only the K most likely labels per text.")


class Prediction(BaseModel):
    text: str
    label: str
    probability: float
    probs: dict[str, float] = Field(description="Label → probability, most likely first.")


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class GenerateRequest(BaseModel):
    prime: str = Field("", description="Text to continue (empty: start fresh).")
    length: int = Field(200, ge=1, description="Tokens to generate.")
    temperature: float = Field(1.0, ge=0, description="0 is greedy; below 1 safer, above 1 wilder.")
    top_k: int | None = Field(None, ge=1, description="Sample among the K most likely tokens.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling: smallest set with mass ≥ p.")
    seed: int | None = Field(None, description="Makes the sampling reproducible.")
    stream: bool = Field(False, description='Send NDJSON lines {"text": piece} as tokens are sampled.')


class InspectRequest(BaseModel):
    text: str = Field(description="The text to inspect.")
    states: bool = Field(True, description="Include every token's states and gates (the bulk of the data).")


# ---------------------------------------------------------------------------------------------------
# middleware: body size and metrics
# ---------------------------------------------------------------------------------------------------
DRAIN_BYTES = 64 * 2**20  # an oversized body is read and discarded up to this much before the 413 ...
DRAIN_SECONDS = 5.0  # ... and for at most this long, so that every client reads the answer
BODY_TIMEOUT = 30.0  # seconds a client may pause while sending a request body


async def _drain(receive, bound: int = DRAIN_BYTES, timeout: float = DRAIN_SECONDS) -> None:
    """Read and discard the rest of a request body (up to ``bound`` bytes and ``timeout`` seconds).

    A server that answers 413 and closes the connection while the client is still sending makes the
    client's operating system see a reset, and clients such as Python's urllib report "connection reset"
    instead of the 413; reading the body first lets them read the answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = 0
    while seen <= bound:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except (asyncio.TimeoutError, Exception):  # a client that stops sending, or a connection gone
            return
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes: by Content-Length up front, else while reading; the body
    is drained first (see :func:`_drain`). A client that pauses over :data:`BODY_TIMEOUT` seconds while
    sending its body gets 408."""

    def __init__(self, app, limit: int, body_timeout: float | None = None):
        self.app = app
        self.limit = limit
        self.body_timeout = BODY_TIMEOUT if body_timeout is None else body_timeout

    def _error(self, size: str) -> ApiError:
        return ApiError(
            413,
            "body_too_large",
            f"the request body is {size} bytes; the limit is {self.limit:,}",
            limit=self.limit,
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            error = self._error(f"{int(declared[:30]):,}")
            response = _error_response(error.status_code, error.code, error.message, **error.extra)
            response.headers["connection"] = "close"
            scope.setdefault("state", {})["error_code"] = error.code
            await _drain(receive)
            return await response(scope, receive, send)
        seen = 0
        finished = False

        async def limited_receive():
            nonlocal seen, finished
            if finished:  # the body has been read: wait for the client to go (no timeout)
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                raise ApiError(408, "body_timeout", f"no body data for {self.body_timeout:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if seen > self.limit:
                    if not finished:
                        await _drain(receive)
                    raise self._error(f"over {self.limit:,}")
            return message

        return await self.app(scope, limited_receive, send)


class _Measure:
    """Count every request by endpoint and status, time it, and track how many are in flight."""

    def __init__(self, app, metrics: ServerMetrics, endpoints: set[str]):
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        self.metrics.in_flight.inc()

        async def measured_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        except Exception:  # answered (500, internal_error) by the outermost middleware, after this one
            scope.setdefault("state", {})["error_code"] = "internal_error"
            raise
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or (
                scope["path"] if scope["path"] in self.endpoints else "other"
            )
            self.metrics.requests.inc(endpoint=endpoint, status=str(status))
            self.metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)
            code = scope.get("state", {}).get("error_code")
            if status >= 400:
                self.metrics.errors.inc(endpoint=endpoint, code=code or str(status))


def _error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    501: "not_implemented",
    503: "unavailable",
}


def _install_error_handlers(app: FastAPI) -> None:
    def answer(request: Request, status: int, code: str, message: str, **extra: Any) -> JSONResponse:
        request.scope.setdefault("state", {})["error_code"] = code
        return _error_response(status, code, message, **extra)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return answer(request, exc.status_code, exc.code, exc.message, **exc.extra)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return answer(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = jsonable_encoder(exc.errors(), exclude={"input", "url"})
        if any(e.get("type") == "json_invalid" for e in errors):
            where = next(e for e in errors if e.get("type") == "json_invalid")
            detail = where.get("ctx", {}).get("error", "invalid JSON")
            return answer(request, 422, "invalid_json", f"the request body is not valid JSON: {detail}")
        first = errors[0] if errors else {}
        place = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return answer(
            request, 422, "invalid_request", f"{place}: {first.get('msg', 'invalid request')}", details=errors
        )

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError):
        return answer(request, 422, "invalid_input", str(exc))

    @app.exception_handler(BatcherClosed)
    async def closed(request: Request, exc: BatcherClosed):
        return answer(request, 503, "shutting_down", str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug: logged with its traceback by uvicorn
        # The answer names no exception: its text can hold paths and internals (the log has it all).
        return answer(request, 500, "internal_error", "the server failed on this request; see its log")


# ---------------------------------------------------------------------------------------------------
# the model behind the app
# ---------------------------------------------------------------------------------------------------
def _task(model: Any) -> str:
    task = getattr(model, "task", None)
    if task is None and getattr(model, "config", None) is not None:
        task = model.config.task
    return task or "classify"


def _model_info(model: Any, settings: ServeSettings, inspectable: bool = True) -> dict[str, Any]:
    """``GET /v1/model``: what the server runs and how."""
    config = getattr(model, "config", None)
    torch_model = getattr(model, "model", None)
    info: dict[str, Any] = {
        "task": _task(model),
        "backend": getattr(model, "backend", "eager"),
        "labels": list(model.labels) if getattr(model, "labels", None) is not None else None,
        "vocab_size": len(model.encoder) if getattr(model, "encoder", None) is not None else None,
        "parameters": sum(p.numel() for p in torch_model.parameters()) if torch_model is not None else None,
        "config": None,
        "run": os.path.basename(os.path.normpath(str(model.path))) if getattr(model, "path", None) else None,
        "inspect": inspectable,
        "rnnkit_version": __version__,
        "limits": {
            name: getattr(settings, name)
            for name in ("max_texts", "max_chars", "max_body_bytes", "max_generate_length")
        },
        "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
    }
    if config is not None:
        info["config"] = {
            "model": dataclasses.asdict(config.model),
            "tokenizer": config.data.tokenizer,
            "max_len": config.data.max_len,
            "preset": config.preset,
        }
    return info


def _load(model: Any, settings: ServeSettings) -> tuple[Any, Any]:
    """``(the model to serve, an eager run for inspection or None)``."""
    from ..api import load
    from ..export import exported_from_run, is_run_folder, load_predictor

    if not isinstance(model, (str, os.PathLike)):
        return model, (model if hasattr(model, "model") else None)
    if settings.backend == "eager":  # a run folder on PyTorch, or an export (file or folder) as it is
        served = load(model, device=settings.device)
        return served, (served if hasattr(served, "model") else None)
    if is_run_folder(model):  # export in memory (checked against eager); inspect on eager
        eager = load(model, device="cpu")
        return exported_from_run(eager, settings.backend, threads=settings.threads), eager
    return load_predictor(model, settings.backend, threads=settings.threads), None


def _predict_batch(model: Any):
    """The micro-batcher's function: every label's probability for each text."""

    def run(texts: list[str]) -> list[dict[str, Any]]:
        return model.predict(texts)

    return run


def _inference_mode():
    import torch

    return torch.inference_mode()


# ---------------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------------
def create_app(model: str | os.PathLike | Any, settings: ServeSettings | None = None) -> FastAPI:
    """Build the HTTP app for one model.

    Args:
        model: a run folder (or, for the onnx / torchscript backends, an export), or an already
            loaded model: ``rnnkit.load(run)``'s result or an :class:`~rnnkit.export.ExportedClassifier`.
        settings: limits, batching and backend (default :class:`ServeSettings`).

    Returns:
        A FastAPI app. The micro-batcher starts with the first request and finishes the queued work
        when the app shuts down (its lifespan's end).

    Raises:
        RunFolderError: nothing loadable at ``model``; ConfigError: bad settings.
    """
    settings = settings or ServeSettings()
    served, inspectable = _load(model, settings)
    task = _task(served)
    metrics = ServerMetrics()
    batcher = MicroBatcher(
        _predict_batch(served),
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        on_batch=lambda size, seconds: (
            metrics.batch_size.observe(size),
            metrics.batch_seconds.observe(seconds),
            metrics.texts.inc(size),
        ),
        on_queue=metrics.queue.set,
        wrap=_inference_mode,
    )
    jobs = asyncio.Semaphore(settings.max_concurrent_jobs)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await batcher.close()  # in-flight requests finish; uvicorn has stopped taking new ones

    app = FastAPI(
        title="rnnkit",
        version=__version__,
        summary="A recurrent text model over HTTP: predict, generate, inspect.",
        lifespan=lifespan,
    )
    app.state.model = served
    app.state.inspectable = inspectable
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.batcher = batcher
    _install_error_handlers(app)

    def require_task(wanted: str, endpoint: str) -> None:
        if task != wanted:
            other = "/v1/generate" if task == "lm" else "/v1/predict"
            raise ApiError(
                400,
                "wrong_task",
                f"{endpoint} needs a {_TASK_NAMES[wanted]}; this server runs a "
                f"{_TASK_NAMES.get(task, task)} (use {other})",
                task=task,
            )

    def check_text(text: str, index: int | None = None, field: str = "text") -> None:
        where = f"{field} {index}" if index is not None else field
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # JSON may escape a lone surrogate ("\ud800"); no text holds one
            raise ApiError(
                422, "invalid_text", f"{where} is not valid Unicode text (a lone surrogate at {e.start})"
            ) from None
        if len(text) > settings.max_chars:
            where = f"{field} {index}" if index is not None else field
            raise ApiError(
                413,
                "text_too_long",
                f"{where} has {len(text):,} characters; the limit is {settings.max_chars:,}",
                limit=settings.max_chars,
                index=index,
            )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_static_text("index.html"))

    @app.get("/health", summary="Liveness: the model is loaded and answering")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "task": task, "backend": getattr(served, "backend", "eager")}

    @app.get("/v1/model", summary="What this server runs: task, labels, settings summary, limits")
    async def model_info() -> dict[str, Any]:
        return _model_info(served, settings, inspectable is not None)

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        summary="Label texts",
        responses={
            413: {"description": "Too many texts, a text too long, or a body too large"},
            422: {"description": "Invalid JSON or fields"},
        },
    )
    async def predict(body: PredictRequest) -> JSONResponse:
        require_task("classify", "/v1/predict")
        if len(body.texts) > settings.max_texts:
            raise ApiError(
                413,
                "too_many_texts",
                f"the request has {len(body.texts):,} texts; the limit is {settings.max_texts:,}",
                limit=settings.max_texts,
            )
        for i, text in enumerate(body.texts):
            check_text(text, i)
        results = await batcher.submit(body.texts)
        # A ready response skips FastAPI's re-validation of what the model just produced (the schema
        # above still documents it): less work per request, more requests per second.
        return JSONResponse({"predictions": [_top(result, body.top_k) for result in results]})

    @app.post("/v1/generate", summary="Continue a prime with a language model (optionally streamed)")
    async def generate(body: GenerateRequest, request: Request):
        require_task("lm", "/v1/generate")
        check_text(body.prime, field="prime")
        if body.length > settings.max_generate_length:
            raise ApiError(
                413,
                "too_long",
                f"length is {body.length:,} tokens; the limit is {settings.max_generate_length:,}",
                limit=settings.max_generate_length,
            )
        pieces = _generation(served, body)
        if body.stream:
            return StreamingResponse(_ndjson(pieces, jobs), media_type="application/x-ndjson")
        async with jobs:
            text = await _until_disconnected(request, pieces)
        return {"text": text, "prime": body.prime, "length": body.length}

    @app.post("/v1/inspect", summary="Every token's states and gates, and how the output moves")
    async def inspect(body: InspectRequest) -> dict[str, Any]:
        check_text(body.text)
        inspection = await _inspection(inspectable, body.text, jobs)
        return inspection.to_dict(states=body.states)

    @app.get("/inspect", response_class=HTMLResponse, summary="The inspection report page for a text")
    async def inspect_page(text: str) -> HTMLResponse:
        from ..inspect.report import render_report

        check_text(text)
        inspection = await _inspection(inspectable, text, jobs)
        return HTMLResponse(render_report(inspection))

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    app.mount("/static", StaticFiles(packages=[("rnnkit.serve", "static")]), name="static")
    endpoints = {route.path for route in app.routes}
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(_Measure, metrics=metrics, endpoints=endpoints)
    return app


_TASK_NAMES = {"classify": "classifier", "lm": "language model"}


def _static_text(name: str) -> str:
    return resources.files("rnnkit.serve").joinpath("static", name).read_text(encoding="utf-8")


def _top(result: dict[str, Any], top_k: int | None) -> dict[str, Any]:
    """A prediction with only its ``top_k`` most likely labels (``probs`` is already sorted)."""
    if top_k is None or top_k >= len(result["probs"]):
        return result
    return {**result, "probs": dict(list(result["probs"].items())[:top_k])}


def _generation(model: Any, body: GenerateRequest):
    """The generated pieces: an iterator that samples as it is consumed (in a worker thread)."""
    options = {"temperature": body.temperature, "top_k": body.top_k, "top_p": body.top_p, "seed": body.seed}
    return model.stream(body.prime, body.length, **options)


async def _until_disconnected(request: Request, pieces) -> str:
    """Join the generated pieces in a worker thread; stop sampling as soon as the client disconnects."""
    stop = threading.Event()

    def run() -> str:
        out = []
        for piece in pieces:
            out.append(piece)
            if stop.is_set():
                break
        return "".join(out)

    work = asyncio.ensure_future(asyncio.to_thread(run))
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            stop.set()  # the client has gone: the thread stops after its current token
        return await work
    finally:
        watch.cancel()


async def _disconnected(request: Request) -> None:
    """Return once the client has closed its connection (the request body has already been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _ndjson(pieces, jobs: asyncio.Semaphore):
    """One JSON line per generated piece, then ``{"done": true}``; sampling runs in a thread."""
    done = object()
    async with jobs:
        while True:
            piece = await asyncio.to_thread(next, pieces, done)
            if piece is done:
                break
            yield json.dumps({"text": piece}, ensure_ascii=False) + "\n"
    yield json.dumps({"done": True}) + "\n"


async def _inspection(run: Any, text: str, jobs: asyncio.Semaphore):
    if run is None:
        raise ApiError(
            501,
            "not_available",
            "this export cannot be inspected (inspection needs the model's PyTorch weights); serve the run "
            "folder it was exported from (with any --backend) to inspect",
        )
    try:
        from ..inspect.record import inspect_text
    except ImportError as e:  # pragma: no cover - the inspect package ships with rnnkit
        raise ApiError(501, "not_available", f"inspection is not available in this installation ({e})") from e
    async with jobs:
        try:
            return await asyncio.to_thread(inspect_text, run, text)
        except ValueError as e:
            raise ApiError(422, "invalid_input", str(e)) from e


def serve(
    model: str | os.PathLike | Any, settings: ServeSettings | None = None, *, log_level: str = "info"
) -> None:
    """Run the app with uvicorn until interrupted (Ctrl-C / SIGTERM stop it gracefully).

    Args:
        model: as for :func:`create_app`, or an app it built (``rnnkit serve`` builds the app first, so
            that it can say what serves the model before it announces the server).
        settings: host, port, limits, batching, backend.
        log_level: uvicorn's log level.
    """
    import uvicorn

    settings = settings or ServeSettings()
    app = model if isinstance(model, FastAPI) else create_app(model, settings)
    uvicorn.run(_HostCheck(app, settings.hosts_allowed()), **uvicorn_options(settings), log_level=log_level)


_BACKEND_NAMES = {"eager": "eager PyTorch", "onnx": "ONNX Runtime", "torchscript": "TorchScript"}


def backend_summary(app: FastAPI) -> str:
    """What runs the model of an app from :func:`create_app`, in words, for ``rnnkit serve``'s first line:
    ``eager PyTorch on cpu``; ``ONNX Runtime, exported in memory and checked against eager PyTorch``; or,
    for an exported file, ``ONNX Runtime, from an export; no inspection: serve the run folder for it``."""
    served, inspectable = app.state.model, app.state.inspectable
    backend = getattr(served, "backend", "eager")
    name = _BACKEND_NAMES.get(backend, backend)
    if backend == "eager":
        device = getattr(served, "device", None)
        return f"{name} on {device}" if device is not None else name
    if inspectable is not None:
        return f"{name}, exported in memory and checked against eager PyTorch"
    return f"{name}, from an export; no inspection: serve the run folder for it"


HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers
MAX_HEADER_BYTES = 64 * 1024  # largest request line + headers


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """uvicorn's settings for a server that slow, idle or numerous clients cannot exhaust: idle keep-alive
    connections close after ``timeout_keep_alive``; headers must arrive within :data:`HEADER_TIMEOUT`
    (``HeaderTimeoutH11``) and fit :data:`MAX_HEADER_BYTES`; beyond ``max_connections`` connections
    a request is answered 503 at once; SIGTERM / Ctrl-C give in-flight requests ``graceful_timeout``.
    (uvicorn is imported here: it is the ``serve`` extra.)"""
    return dict(
        host=settings.host,
        port=settings.port,
        http=_header_timeout_protocol(),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=settings.timeout_keep_alive,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.graceful_timeout,
    )


def _header_timeout_protocol():
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        """uvicorn's h11 protocol, closing a connection whose request headers do not arrive in time
        (uvicorn's own keep-alive timer stops at the first byte, so one byte at a time kept it open)."""

        header_timeout = HEADER_TIMEOUT

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._waiting_cycle = self.cycle
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

        def _disarm(self) -> None:
            timer = getattr(self, "_header_timer", None)
            if timer is not None:
                timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            waiting = self.cycle is self._waiting_cycle or self.cycle is None
            if waiting and not self.transport.is_closing():
                self.transport.close()  # no complete request: nothing to answer

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and self.cycle is not getattr(self, "_waiting_cycle", None):
                self._disarm()  # a request's headers arrived

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._disarm()
                self._arm()  # the next request's headers get the same time

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutH11


class _HostCheck:
    """Answer 400 to a request whose Host header is not one of ``allowed`` (``"*"``: any), so a web page
    on another site cannot reach a server on localhost through DNS rebinding."""

    def __init__(self, app, allowed: list[str]):
        self.app = app
        self.allowed = set(allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "*" not in self.allowed:
            raw = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1").strip().lower()
            if raw.startswith("["):  # [::1]:8000
                host = raw[1:].split("]", 1)[0]
            else:  # name:8000, or a bare IPv6 address
                host = raw.split(":", 1)[0] if raw.count(":") <= 1 else raw
            if host not in self.allowed:
                response = _error_response(
                    400, "host_not_allowed", f"Host {raw[:100]!r} is not served here (see --allowed-hosts)"
                )
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


@contextmanager
def serve_in_thread(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 30.0,
    graceful_timeout: float = 30.0,
    settings: ServeSettings | None = None,
) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yield its base URL; stop it gracefully on exit.

    For tests, notebooks and benchmarks: ``port=0`` picks a free port.

    Args:
        app: from :func:`create_app`.
        host, port: where to listen.
        timeout: seconds to wait for the server to start.
        graceful_timeout: seconds in-flight requests get to finish when the block ends.
        settings: if given, run as ``rnnkit serve`` does: its timeouts, connection limit and Host check
            (:func:`uvicorn_options`), on ``host`` and ``port``.

    Raises:
        RuntimeError: the server did not start within ``timeout``.
    """
    import uvicorn

    options: dict[str, Any] = {}
    if settings is not None:
        options = uvicorn_options(settings)
        app = _HostCheck(app, settings.hosts_allowed())
    options.update(host=host, port=port, timeout_graceful_shutdown=graceful_timeout)
    config = uvicorn.Config(app, log_level="warning", **options)
    server = uvicorn.Server(config)  # off the main thread, uvicorn leaves the signals to the caller
    thread = threading.Thread(target=server.run, name="rnnkit-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port} within {timeout:g} s")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=graceful_timeout + 5)
