"""Request and response schemas of the v1 API (users and tests rely on these names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from training.predictor import Document, PairRequest

Offset = Annotated[StrictInt, Field(ge=0)]
SpanField = tuple[Offset, Offset]
"""A `training.text.Span` as the API validates it: two offsets >= 0 (their order is checked later)."""
MAX_NAME_CHARS = 100
"""Longest party, issue or alias accepted. The model reads "<party> on <issue>" before the window, so a
longer target would leave it nothing of the text (and past the model's length the tokenizer fails);
the predictor also checks the target against the model's own length."""
MAX_ALIASES_PER_NAME = 20
MAX_SPANS_PER_PAIR = 64
MAX_ALIAS_ENTRIES = 64
ISO_DATE_TIME = r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"
"""An ISO 8601 date or date-time. Checked as text: a bare number (which pydantic would read as seconds
since 1970) is refused rather than taken for a date."""


def parse_iso(value: str, field: str) -> datetime:
    """An ISO 8601 date or date-time (no zone: UTC) as a datetime; a ValueError that names `field` if the
    text is no real date (2024-02-30)."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a valid ISO 8601 date or date-time") from None


def not_blank(value: str, field: str) -> str:
    """Rejects a value of spaces only: it passes `min_length` yet names nothing."""
    if not value.strip():
        raise ValueError(f"{field} must not be empty or whitespace")
    return value


Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, see the README's error table")
    message: str = Field(description="what is wrong and how to fix it")


class ErrorResponse(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
ERROR_DESCRIPTIONS = {
    400: "malformed JSON (bad_json) or a Host header not allowed (host_not_allowed)",
    401: "missing or wrong API key (unauthorized)",
    408: "request body not received in time (request_timeout)",
    413: "body over the size limit (payload_too_large)",
    422: "invalid fields (invalid_request), or too many pairs, documents or model windows (too_many_items)",
    500: "the model failed on this request (internal)",
    404: "no such stored document (not_found)",
    503: "overloaded, not answered in time, still loading, or the database is down (overloaded, timeout, not_ready, storage_unavailable)",
}


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for the given error statuses, all in the ErrorResponse shape."""
    responses: dict[int | str, dict] = {}
    for status in statuses:
        responses[status] = {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
        if status == 503:
            responses[status]["headers"] = RETRY_AFTER
    return responses


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party: Annotated[Name, Field(description="country, government, leader or organisation")]
    issue: Annotated[Name, Field(description="topic or other party; null: the party alone")] | None = None
    spans: Annotated[list[SpanField], Field(max_length=MAX_SPANS_PER_PAIR)] | None = Field(
        None, description="character offsets pinning the party's mentions"
    )

    _party_not_blank = field_validator("party")(classmethod(lambda cls, value: not_blank(value, "party")))


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": "Tokyo called for maximum pressure on Pyongyang, while Moscow urged talks.",
                    "pairs": [{"party": "Japan", "issue": "North Korea"}, {"party": "Russia", "issue": "North Korea"}],
                }
            ],
            # the rule of `_something_to_answer`, stated in the schema: not (pairs == [] and overall == false)
            "not": {
                "required": ["pairs", "overall"],
                "properties": {"pairs": {"type": "array", "maxItems": 0}, "overall": {"const": False}},
            },
        },
    )

    text: Annotated[StrictStr, Field(min_length=1, description="the article or statement")]
    pairs: list[PairIn] | None = Field(None, description="null: detect pairs; []: only `overall`")
    overall: StrictBool | None = Field(
        None,
        description=(
            "answer `overall` (the whole text's stance and sentiment, read from its lead); null: only when "
            "`pairs` is null or [], so asking for given pairs costs only their windows"
        ),
    )
    aliases: (
        Annotated[dict[Name, Annotated[list[Name], Field(max_length=MAX_ALIASES_PER_NAME)]], Field(max_length=MAX_ALIAS_ENTRIES)]
        | None
    ) = Field(None, description="extra names per party (or issue)")

    store: StrictBool | None = Field(
        None,
        description=(
            "keep the text and this answer in the review store, so its pairs can be corrected through "
            "/v1/reviews; null: the server's STANCELINE_STORE_PREDICTIONS (off unless set)"
        ),
    )
    source: Annotated[StrictStr, Field(max_length=200)] | None = Field(
        None, description="where the text came from (a URL or feed name), kept with a stored document"
    )
    published: (
        Annotated[StrictStr, Field(max_length=64, pattern=ISO_DATE_TIME, json_schema_extra={"format": "date-time"})] | None
    ) = Field(
        None,
        description=(
            "when the text was published (ISO 8601 date or date-time; no zone: UTC), kept with a stored "
            "document for /v1/trends; null: the time the server received it stands in, marked `received`"
        ),
    )

    _text_not_blank = field_validator("text")(classmethod(lambda cls, value: not_blank(value, "text")))

    @field_validator("published")
    @classmethod
    def _published_is_a_date(cls, value: str | None) -> str | None:
        if value is not None:
            parse_iso(value, "published")
        return value

    def published_at(self) -> datetime | None:
        """The publication date as a datetime (None when not given)."""
        return None if self.published is None else parse_iso(self.published, "published")

    @model_validator(mode="after")
    def _something_to_answer(self) -> PredictRequest:
        if self.pairs == [] and self.overall is False:
            raise ValueError("nothing to answer: `pairs` is [] and `overall` is false")
        return self

    @model_validator(mode="after")
    def _spans_inside_text(self) -> PredictRequest:
        for index, pair in enumerate(self.pairs or []):
            for start, end in pair.spans or []:
                if start >= end:
                    raise ValueError(
                        f"pairs[{index}].spans: [{start}, {end}] is empty or reversed: a span's start must be below its end"
                    )
                if end > len(self.text):
                    raise ValueError(f"pairs[{index}].spans: [{start}, {end}] is outside the text (length {len(self.text)})")
                if not self.text[start:end].strip():
                    raise ValueError(f"pairs[{index}].spans: [{start}, {end}] covers only whitespace; pin a mention's words")
        return self

    def to_document(self) -> Document:
        pairs = (
            None
            if self.pairs is None
            else [PairRequest(p.party, p.issue, [tuple(s) for s in p.spans] if p.spans else None) for p in self.pairs]
        )
        return Document(self.text, pairs, dict(self.aliases or {}), self.overall)


class BatchDocument(PredictRequest):
    id: StrictStr | StrictInt = Field(description="echoed back with the answer")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[BatchDocument]


class Score(BaseModel):
    label: str
    scores: dict[str, float]


class Evidence(BaseModel):
    start: int
    end: int
    text: str
    weight: float = Field(description="share of the pair's answer this window carries; the list is heaviest first")
    stance: Score


class PairResult(BaseModel):
    party: str
    issue: str | None
    stance: Score
    sentiment: Score
    mentioned: bool
    evidence: list[Evidence]


class Overall(BaseModel):
    stance: Score
    sentiment: Score


class ModelRef(BaseModel):
    name: str
    version: str


class PredictResponse(BaseModel):
    model: ModelRef
    overall: Overall | None = Field(description="null unless asked for (see the request's `overall`)")
    results: list[PairResult]
    document_id: int | None = Field(None, description="the stored document's id, for /v1/reviews; null when not stored")


class BatchAnswer(PredictResponse):
    id: str | int


class BatchResponse(BaseModel):
    results: list[BatchAnswer]


StanceLabel = Literal["cooperative", "pressure", "neutral"]
SentimentLabel = Literal["positive", "neutral", "negative"]


class ReviewIn(BaseModel):
    """A reviewer's correction of one pair of a stored document."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "document_id": 1,
                    "party": "Russia",
                    "issue": "North Korea",
                    "stance": "cooperative",
                    "sentiment": "neutral",
                    "evidence": [[48, 74]],
                    "reviewer": "analyst-1",
                }
            ]
        },
    )

    document_id: Annotated[StrictInt, Field(ge=1, le=2**62, description="from a /v1/predict answer made with store=true")]
    party: Name
    issue: Annotated[Name, Field(description="the issue or other party (required: the training format needs one)")]
    stance: StanceLabel
    sentiment: SentimentLabel
    evidence: Annotated[list[SpanField], Field(min_length=1, max_length=MAX_SPANS_PER_PAIR)] | None = Field(
        None,
        description=(
            "character offsets (code points, end exclusive) of the sentences that show the answer; "
            "null: the windows the stored answer cited for this pair"
        ),
    )
    reviewer: Annotated[StrictStr, Field(min_length=1, max_length=100)] | None = Field(
        None, description="who made the correction; null: the API key's name, or `anonymous` when the server has no keys"
    )
    note: Annotated[StrictStr, Field(max_length=2000)] = ""

    _not_blank = field_validator("party", "issue", "reviewer")(
        classmethod(lambda cls, value, info: value if value is None else not_blank(value, info.field_name))
    )


class PredictedLabels(BaseModel):
    stance: str | None
    sentiment: str | None


class ReviewOut(BaseModel):
    id: int
    document_id: int
    party: str
    issue: str
    stance: str
    sentiment: str
    evidence: list[tuple[int, int]]
    reviewer: str
    note: str
    created_at: str = Field(description="UTC, ISO 8601")
    model: ModelRef | None = Field(description="the model of the newest stored answer on the document when reviewed")
    predicted: PredictedLabels | None = Field(description="what that answer said for this pair (null: not answered)")
    evidence_source: Literal["request", "cited"] = Field(
        description="`request` when the evidence was sent, `cited` when it was taken from the windows the stored answer cited"
    )


class ReviewPage(BaseModel):
    reviews: list[ReviewOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null: this is the last page")


class DocumentOut(BaseModel):
    id: int
    sha256: str
    text: str
    source: str | None
    received_at: str
    published: str = Field(description="UTC, ISO 8601: as sent with the document, or its received time")
    published_source: Literal["given", "received"] = Field(
        description="`given` when the date came with the document, `received` when the received time stands in for it"
    )


Period = Literal["day", "week", "month"]


class StanceShare(BaseModel):
    count: int
    share: float
    low: float = Field(description="95% Wilson interval of the share, lower end")
    high: float = Field(description="95% Wilson interval of the share, upper end")
    mean_score: float = Field(description="mean calibrated score of this label over the period's documents")


class PeriodOut(BaseModel):
    start: str = Field(description="UTC, ISO 8601; pass as `at` to /v1/trends/documents")
    end: str = Field(description="the next period's start")
    documents: int
    undated: int = Field(description="documents dated by the time the server received them (no `published` sent)")
    stances: dict[StanceLabel, StanceShare]


class ShiftOut(BaseModel):
    stance: StanceLabel
    period: str = Field(description="start of the period whose share changed (UTC, ISO 8601)")
    previous_period: str = Field(description="start of the period it is compared with")
    share_before: float
    share_after: float
    change: float
    documents_before: int
    documents_after: int
    z: float
    p_value: float = Field(description="two-proportion z-test, Bonferroni-corrected over the pair's tests")


class PairTrend(BaseModel):
    party: str
    issue: str | None
    documents: int
    undated: int
    largest_change: float = Field(description="largest change of a share between consecutive periods with enough documents")
    periods: list[PeriodOut]
    shifts: list[ShiftOut]


class TrendsPage(BaseModel):
    period: Period
    pairs: list[PairTrend] = Field(description="most active pairs first")
    next_after: int | None = Field(description="pass as `after` for the next page of pairs; null: this is the last page")


class PeriodDocument(BaseModel):
    document_id: int
    published: str
    published_source: Literal["given", "received"]
    source: str | None
    excerpt: str = Field(description="the text's first 300 characters")
    stance: Score
    sentiment: Score
    evidence: list[Evidence]


class PeriodDocuments(BaseModel):
    party: str
    issue: str | None
    start: str
    end: str
    documents: list[PeriodDocument]
    next_after: int | None = Field(description="pass as `after` for the next page; null: this is the last page")
