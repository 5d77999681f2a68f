"""GET /health, /v1/model and /metrics."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.deps import AuthDep, PredictorDep
from serving.schemas import RETRY_AFTER, error_responses
from training.modeling import describe

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    summary="200 once a model is loaded and warm and its batching worker runs, else 503",
    responses={503: {"description": "still loading, or the batching worker stopped", "headers": RETRY_AFTER}},
)
async def health(request: Request) -> JSONResponse:
    if not getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "5"})
    if not request.app.state.queue.running:
        return JSONResponse({"status": "worker stopped"}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok", "model": request.app.state.predictor.model_info()})


@router.get(
    "/v1/model",
    summary="The served model: labels, base model, training data, metrics",
    dependencies=[AuthDep],
    responses=error_responses(400, 401, 503),
)
async def model(predictor: PredictorDep) -> dict:
    info = describe(Path(predictor.classifier.folder))
    meta = info["meta"]
    return {
        "name": meta["name"],
        "version": meta["created"],
        "profile": meta.get("profile") or "",
        "base_model": meta["base_model"],
        "backend": predictor.classifier.backend.name,
        "backend_check": info["backends"],
        "int8_check": info["backends"],  # the check's earlier name, kept for existing clients
        "labels": {"stance": meta["stance_labels"], "sentiment": meta["sentiment_labels"]},
        "input": {"max_length": meta["max_length"], "window_chars": meta["window_chars"]},
        "window_pooling": predictor.pooling,
        "training_data": info["data"],
        "metrics": info["metrics"],
    }


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
