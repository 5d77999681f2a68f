"""POST /v1/predict and /v1/predict/batch."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from serving.deps import AuthDep, QueueDep, SettingsDep, StoreDep
from serving.errors import ServiceError
from serving.schemas import BatchRequest, BatchResponse, PredictRequest, PredictResponse, error_responses
from serving.settings import Settings

router = APIRouter(
    prefix="/v1", tags=["predict"], dependencies=[AuthDep], responses=error_responses(400, 401, 408, 413, 422, 500, 503)
)


async def keep(request: PredictRequest, answer: dict, settings: Settings, store: StoreDep) -> dict:
    """Store the document and its answer when the request (or the server's setting) asks for it."""
    wanted = settings.store_predictions if request.store is None else request.store
    document_id = None
    if wanted:
        document_id = await run_in_threadpool(
            lambda: store.get().store_answer(request.text, request.source, answer["model"], answer, request.published_at())
        )
    return {**answer, "document_id": document_id}


def check_limits(request: PredictRequest, settings: Settings, where: str = "") -> None:
    if len(request.text) > settings.max_text_chars:
        raise ServiceError(
            "too_many_items", f"{where}text has {len(request.text)} characters; the limit is {settings.max_text_chars}"
        )
    if request.pairs is not None and len(request.pairs) > settings.max_pairs:
        raise ServiceError("too_many_items", f"{where}pairs has {len(request.pairs)} items; the limit is {settings.max_pairs}")


@router.post("/predict", response_model=PredictResponse, summary="Stance and sentiment of parties in one text")
async def predict(request: PredictRequest, queue: QueueDep, settings: SettingsDep, store: StoreDep) -> dict:
    check_limits(request, settings)
    (answer,) = await queue.predict([request.to_document()])
    return await keep(request, answer, settings, store)


@router.post("/predict/batch", response_model=BatchResponse, summary="The same for many documents")
async def predict_batch(request: BatchRequest, queue: QueueDep, settings: SettingsDep, store: StoreDep) -> dict:
    if len(request.documents) > settings.max_documents:
        raise ServiceError(
            "too_many_items", f"documents has {len(request.documents)} items; the limit is {settings.max_documents}"
        )
    for index, document in enumerate(request.documents):
        check_limits(document, settings, where=f"documents[{index}].")
    answers = await queue.predict([document.to_document() for document in request.documents])
    kept = [await keep(document, answer, settings, store) for document, answer in zip(request.documents, answers, strict=True)]
    return {"results": [{"id": document.id, **answer} for document, answer in zip(request.documents, kept, strict=True)]}
