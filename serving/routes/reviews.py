"""POST and GET /v1/reviews (analysts' corrections), GET /v1/documents/{id} (a stored text)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from serving.deps import AuthDep, CallerDep, StoreDep
from serving.errors import ServiceError
from serving.schemas import (
    ISO_DATE_TIME,
    DocumentOut,
    ReviewIn,
    ReviewOut,
    ReviewPage,
    SentimentLabel,
    StanceLabel,
    error_responses,
    parse_iso,
)

router = APIRouter(
    prefix="/v1", tags=["reviews"], dependencies=[AuthDep], responses=error_responses(400, 401, 413, 422, 500, 503)
)
# Plain `def` handlers: FastAPI runs them in its thread pool, where the blocking database calls belong.


@router.post(
    "/reviews",
    response_model=ReviewOut,
    status_code=201,
    summary="Correct one pair of a stored document (the identical correction twice is stored once: 200)",
    responses={200: {"model": ReviewOut, "description": "the identical correction was already stored"}, **error_responses(404)},
)
def add_review(review: ReviewIn, store: StoreDep, caller: CallerDep, response: Response) -> dict:
    stored, created = store.get().add_review(review.model_dump(), reviewer=caller)
    if not created:
        response.status_code = 200
    return stored


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value, "since")
    except ValueError as error:
        raise ServiceError("invalid_request", str(error)) from None


@router.get("/reviews", response_model=ReviewPage, summary="A page of reviews, oldest first, with filters")
def list_reviews(
    store: StoreDep,
    document_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    model: Annotated[str | None, Query(max_length=200, description="name of the model whose answer was reviewed")] = None,
    stance: StanceLabel | None = None,
    sentiment: SentimentLabel | None = None,
    reviewer: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=ISO_DATE_TIME,
            json_schema_extra={"format": "date-time"},
            description="reviews made at or after this time (ISO 8601, e.g. 2026-12-01T00:00:00Z; no zone: UTC)",
        ),
    ] = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="the previous page's next_after")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict:
    page = store.get().reviews(
        document_id=document_id,
        model=model,
        stance=stance,
        sentiment=sentiment,
        reviewer=reviewer,
        since=parse_since(since),
        after=after,
        limit=limit + 1,
    )
    more = len(page) > limit
    page = page[:limit]
    return {"reviews": page, "next_after": page[-1]["id"] if more else None}


@router.get("/documents/{document_id}", response_model=DocumentOut, summary="A stored document", responses=error_responses(404))
def get_document(document_id: Annotated[int, Path(ge=1, le=2**62)], store: StoreDep) -> dict:
    document = store.get().document(document_id)
    if document is None:
        raise ServiceError("not_found", f"document {document_id} is not stored")
    return document
