"""Request and response schemas of the v1 API (users and tests rely on these names)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator, model_validator

from training.predictor import Document, PairRequest

Span = tuple[StrictInt, StrictInt]


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party: Annotated[StrictStr, Field(min_length=1, description="country, government, leader or organisation")]
    issue: StrictStr | None = Field(None, description="topic or other party; null: the party alone")
    spans: list[Span] | None = Field(None, description="character offsets pinning the party's mentions")

    @field_validator("party")
    @classmethod
    def _party_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("party must not be blank")
        return value


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": "Tokyo called for maximum pressure on Pyongyang, while Moscow urged talks.",
                    "pairs": [{"party": "Japan", "issue": "North Korea"}, {"party": "Russia", "issue": "North Korea"}],
                }
            ]
        },
    )

    text: Annotated[StrictStr, Field(min_length=1, description="the article or statement")]
    pairs: list[PairIn] | None = Field(None, description="null: detect pairs; []: only `overall`")
    aliases: dict[StrictStr, list[StrictStr]] | None = Field(None, description="extra names per party")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be empty or whitespace")
        return value

    @model_validator(mode="after")
    def _spans_inside_text(self) -> PredictRequest:
        for index, pair in enumerate(self.pairs or []):
            for start, end in pair.spans or []:
                if not 0 <= start < end <= len(self.text):
                    raise ValueError(f"pairs[{index}].spans: [{start}, {end}] is outside the text (length {len(self.text)})")
        return self

    def to_document(self) -> Document:
        pairs = (
            None
            if self.pairs is None
            else [PairRequest(p.party, p.issue, [tuple(s) for s in p.spans] if p.spans else None) for p in self.pairs]
        )
        return Document(self.text, pairs, dict(self.aliases or {}))


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
    overall: Overall
    results: list[PairResult]


class BatchAnswer(PredictResponse):
    id: str | int


class BatchResponse(BaseModel):
    results: list[BatchAnswer]
