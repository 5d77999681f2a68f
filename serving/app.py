"""The FastAPI application: settings, model loading, middleware, routes and error handling."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from serving.batching import BatchQueue
from serving.errors import ServiceError, error_body, install_error_handlers
from serving.metrics import Metrics
from serving.routes import meta, predict, web
from serving.settings import Settings
from training.predictor import Document, PairRequest, Predictor

logger = logging.getLogger(__name__)
WARMUP_TEXT = "Tokyo called for maximum pressure on Pyongyang, while the Kremlin urged talks on the peace treaty."


def load_predictor(settings: Settings) -> Predictor:
    """Load the model with its CPU threads set once for the process."""
    return Predictor.from_folder(
        settings.model_dir, backend=settings.backend, batch_size=settings.batch_size, threads=settings.cpu_threads()
    )


class BodyLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413, from Content-Length or while streaming, before
    the application parses anything."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
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
        payload = json.dumps(error_body("payload_too_large", f"request body exceeds the limit of {self.limit} bytes")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


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


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """Build the app. A `predictor` may be injected (tests); otherwise it loads from `settings.model_dir`."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.ready = False
        app.state.predictor = predictor or load_predictor(settings)
        app.state.queue = BatchQueue(
            app.state.predictor, settings.batch_size, settings.batch_wait_ms, settings.max_queued_documents, metrics
        )
        await asyncio.to_thread(app.state.predictor.predict, [Document(WARMUP_TEXT, [PairRequest("Japan", "North Korea")])])
        await app.state.queue.start()
        app.state.ready = True
        logger.info("serving %s", app.state.predictor.model_info())
        yield
        app.state.ready = False
        await app.state.queue.stop()

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
    app.include_router(meta.router)
    app.include_router(web.router)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


__all__ = ["create_app", "ServiceError"]
