"""GET /v1/trends (stance shares over time per pair, with shifts) and GET /v1/trends/documents (the
documents behind one period of a pair), over the review store's dated documents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from serving.deps import AuthDep, StoreDep
from serving.errors import ServiceError
from serving.schemas import ISO_DATE_TIME, Period, PeriodDocuments, TrendsPage, error_responses, parse_iso
from serving.store import as_utc, isoformat
from serving.trends import parse_window, period_end, period_start, trends_of_rows
from training.labels import STANCE_LABELS

router = APIRouter(prefix="/v1", tags=["trends"], dependencies=[AuthDep], responses=error_responses(400, 401, 422, 500, 503))
# Plain `def` handlers: FastAPI runs them in its thread pool, where the blocking database calls belong.

PartyQuery = Query(min_length=1, max_length=100)


def date_query(description: str, alias: str | None = None):
    """An ISO 8601 date or date-time query parameter (checked as text, like /v1/reviews' `since`)."""
    return Query(
        alias=alias, max_length=64, pattern=ISO_DATE_TIME, json_schema_extra={"format": "date-time"}, description=description
    )


def window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    try:
        return parse_window(start, end)
    except ValueError as error:
        raise ServiceError("invalid_request", str(error)) from None


def period_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "start": isoformat(row["period"]),
        "end": isoformat(row["period_end"]),
        "documents": row["documents"],
        "undated": row["undated"],
        "stances": {
            label: {
                "count": row[f"{label}_count"],
                "share": row[f"{label}_share"],
                "low": row[f"{label}_low"],
                "high": row[f"{label}_high"],
                "mean_score": row[f"{label}_mean_score"],
            }
            for label in STANCE_LABELS
        },
    }


def pair_out(pair: dict[str, Any]) -> dict[str, Any]:
    return {
        **{key: pair[key] for key in ("party", "issue", "documents", "undated", "largest_change")},
        "periods": [period_out(row) for row in pair["periods"]],
        "shifts": [
            {**shift, "period": isoformat(shift["period"]), "previous_period": isoformat(shift["previous_period"])}
            for shift in pair["shifts"]
        ],
    }


@router.get("/trends", response_model=TrendsPage, summary="Stance shares per (party, issue) and period, with shifts")
def get_trends(
    store: StoreDep,
    party: Annotated[str | None, PartyQuery] = None,
    issue: Annotated[str | None, PartyQuery] = None,
    period: Period = "month",
    start: Annotated[str | None, date_query("published at or after (ISO 8601; no zone: UTC)", "from")] = None,
    end: Annotated[str | None, date_query("published before (a date alone: through that day)", "to")] = None,
    after: Annotated[int, Query(ge=0, le=10**6, description="the previous page's next_after")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="pairs per page")] = 20,
) -> dict:
    begins, ends = window(start, end)
    rows = store.get().stance_rows(begins, ends)
    pairs = trends_of_rows(rows, period, party=party, issue=issue, start=begins, end=ends).pairs()
    page = pairs[after : after + limit]
    return {
        "period": period,
        "pairs": [pair_out(pair) for pair in page],
        "next_after": after + limit if after + limit < len(pairs) else None,
    }


@router.get(
    "/trends/documents",
    response_model=PeriodDocuments,
    summary="The documents of one period of a pair, with the stance and evidence of their newest answer",
)
def get_period_documents(
    store: StoreDep,
    party: Annotated[str, PartyQuery],
    at: Annotated[str, date_query("any moment of the period, e.g. a /v1/trends period's `start`")],
    issue: Annotated[str | None, Query(min_length=1, max_length=100, description="omit for the party's overall answers")] = None,
    period: Period = "month",
    after: Annotated[int, Query(ge=0, le=2**62, description="the previous page's next_after (a document id)")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict:
    try:
        moment = as_utc(parse_iso(at, "at"))
    except ValueError as error:
        raise ServiceError("invalid_request", str(error)) from None
    start = period_start(moment, period)
    end = period_end(start, period)
    page = store.get().pair_documents(party, issue, start, end, after=after, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return {
        "party": party,
        "issue": issue,
        "start": isoformat(start),
        "end": isoformat(end),
        "documents": page,
        "next_after": page[-1]["document_id"] if more else None,
    }
