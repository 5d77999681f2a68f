"""The FastAPI application: settings, model loading, middleware, routes and error handling."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from serving.errors import ServiceError, error_body, error_headers, install_error_handlers
from serving.metrics import Metrics
from serving.request_queue import BatchQueue
from serving.routes import meta, predict, reviews, trends, web
from serving.settings import Settings
from serving.store import LazyStore
from training.predictor import Document, PairRequest, Predictor

logger = logging.getLogger(__name__)
WARMUP_TEXT = "Tokyo called for maximum pressure on Pyongyang, while the Kremlin urged talks on the peace treaty."


class ModelLoadError(ValueError):
    """The model folder is missing or incomplete: reported as one line by `stanceline serve` and `predict`."""


def load_model(
    folder: str, backend: str = "auto", batch_size: int = 32, threads: int | None = None, spin: bool = True
) -> Predictor:
    """Load a model folder, turning any failure into one line that names the folder and the fix."""
    try:
        return Predictor.from_folder(folder, backend=backend, batch_size=batch_size, threads=threads, spin=spin)
    except FileNotFoundError:
        raise
    except Exception as error:  # a truncated or foreign folder fails in many ways (JSON, safetensors, tokenizer)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(
            f"cannot load the model in {folder}: {type(error).__name__}: {reason[:300]}; "
            "the folder is incomplete or not a Stanceline model: retrain with `make train` or pass --model"
        ) from error


def load_predictor(settings: Settings) -> Predictor:
    """Load the model with its CPU threads set once for the process; they do not spin, because the event
    loop and the planning threads need the same cores."""
    return load_model(settings.model_dir, settings.backend, settings.batch_size, settings.cpu_threads(), spin=False)


async def _send_error(send, error: ServiceError) -> None:
    """A complete error response from ASGI middleware, in the one error shape."""
    payload = json.dumps(error_body(error.code, error.message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error_headers(error).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class HostCheckMiddleware:
    """Answers only requests whose Host header is allowed, so a page on another origin cannot read a local
    instance through DNS rebinding (`*.example.org` allows subdomains)."""

    def __init__(self, app, hosts: list[str]) -> None:
        self.app = app
        self.hosts = hosts

    def allowed(self, host: str) -> bool:
        name = host.lower()
        if name.startswith("["):  # [::1]:8000
            name = name[1 : name.find("]")] if "]" in name else name
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        return any(name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:])) for allowed in self.hosts)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if not self.allowed(host):
            message = f"host {host[:100]!r} is not allowed; set STANCELINE_ALLOWED_HOSTS to serve it"
            await _send_error(send, ServiceError("host_not_allowed", message))
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413, from Content-Length or while streaming, before
    the application parses anything; a body not received within `timeout_s` gets 408 (a slow client
    cannot hold a request open)."""

    def __init__(self, app, limit: int, timeout_s: float = 10.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        try:
            async with asyncio.timeout(self.timeout_s):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limit:
                        await self._refuse(send)
                        return
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            message = f"request body not received within {self.timeout_s:g} s (STANCELINE_READ_TIMEOUT_S)"
            await _send_error(send, ServiceError("request_timeout", message))
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        await _send_error(send, ServiceError("payload_too_large", f"request body exceeds the limit of {self.limit} bytes"))


class MetricsMiddleware:
    """Counts requests and times them by route template and status."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)


def document_auth_only_when_required(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI describes this server: without API keys no route requires the bearer scheme."""
    if settings.api_keys:
        return
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.pop("security", None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Build the app. A `predictor` may be injected (tests); otherwise it loads from `settings.model_dir`."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.ready = False
        app.state.store = LazyStore(settings.database_url)
        if settings.store_predictions:  # storing everything: a wrong database URL fails at start, not per request
            await asyncio.to_thread(app.state.store.get)
        app.state.predictor = predictor or load_predictor(settings)
        app.state.queue = BatchQueue(
            app.state.predictor,
            settings.batch_size,
            settings.batch_wait_ms,
            settings.max_queued_documents,
            metrics,
            max_queued_windows=settings.max_queued_windows,
            max_request_windows=settings.max_request_windows,
            timeout_s=settings.request_timeout_s,
        )
        await asyncio.to_thread(app.state.predictor.predict, [Document(WARMUP_TEXT, [PairRequest("Japan", "North Korea")])])
        await app.state.queue.start()
        app.state.ready = True
        logger.info("serving %s", app.state.predictor.model_info())
        yield
        app.state.ready = False
        await app.state.queue.stop()
        await asyncio.to_thread(app.state.store.close)

    app = FastAPI(
        title="Stanceline",
        version="1",
        summary="Stance (cooperative / pressure / neutral) and sentiment of parties in international news.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(predict.router)
    app.include_router(reviews.router)
    app.include_router(trends.router)
    app.include_router(meta.router)
    app.include_router(web.router)
    document_auth_only_when_required(app, settings)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, timeout_s=settings.read_timeout_s)
    hosts = settings.trusted_hosts()
    if hosts is not None:
        app.add_middleware(HostCheckMiddleware, hosts=hosts)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


__all__ = ["create_app", "ServiceError"]
