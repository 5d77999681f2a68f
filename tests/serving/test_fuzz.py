"""Property-based fuzz of the request schema, in-process against the app on the real tiny model.

Whatever a client sends, the answer is a valid answer (200) or an error in the one error shape with a
4xx status; never a 500 and never a 200 with null scores."""

from __future__ import annotations

import json
import math
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import settings_for

STANCES, SENTIMENTS = {"cooperative", "pressure", "neutral"}, {"positive", "neutral", "negative"}
WORDS = [
    "Japan",
    "Russia",
    "Kenya",
    "the Kremlin",
    "Tokyo",
    "sanctions",
    "trade",
    "talks",
    "🙂",
    "é",
    " ",
    "\n",
    ".",
    "",
    "x" * 120,
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
names = st.one_of(st.sampled_from(WORDS), st.text(max_size=30), json_values)
texts = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=30).map(" ".join),
    st.text(max_size=300),
    json_values,
)
spans = st.lists(st.tuples(st.integers(-5, 400), st.integers(-5, 400)).map(list), max_size=3)
pairs = st.fixed_dictionaries({"party": names}, optional={"issue": names | st.none(), "spans": spans | st.none()})
bodies = st.one_of(
    st.fixed_dictionaries(
        {"text": texts},
        optional={
            "pairs": st.none() | st.lists(pairs, max_size=6),
            "aliases": st.none() | st.dictionaries(st.sampled_from(WORDS), st.lists(names, max_size=3), max_size=3),
            "extra": json_values,
        },
    ),
    json_values,
)


@pytest.fixture(scope="module")
def fuzz_client(tiny_model):
    from fastapi.testclient import TestClient

    from serving.app import create_app

    with TestClient(create_app(settings_for(tiny_model, max_request_windows=64, max_queued_windows=256))) as client:
        yield client


def check_score(score: dict, labels: set[str]) -> None:
    assert score["label"] in labels and set(score["scores"]) == labels
    assert all(isinstance(p, float) and math.isfinite(p) for p in score["scores"].values())


def check_answer(response, body) -> None:
    assert response.status_code < 500, (response.status_code, response.text, body)
    payload = response.json()
    if response.status_code != 200:
        assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}, payload
        assert payload["error"]["message"]
        return
    if payload["overall"] is not None or body.get("overall") or not body.get("pairs"):
        check_score(payload["overall"]["stance"], STANCES)
        check_score(payload["overall"]["sentiment"], SENTIMENTS)
    for result in payload["results"]:
        check_score(result["stance"], STANCES)
        check_score(result["sentiment"], SENTIMENTS)
        assert result["evidence"], "every answered pair cites evidence"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_any_predict_body_gets_an_answer_or_a_clean_4xx(fuzz_client, body):
    check_answer(fuzz_client.post("/v1/predict", json=body), body)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(documents=st.lists(bodies, max_size=3), ids=st.lists(st.integers() | st.text(max_size=5), min_size=3, max_size=3))
def test_any_batch_body_gets_answers_or_a_clean_4xx(fuzz_client, documents, ids):
    documents = [{**document, "id": ids[i]} if isinstance(document, dict) else document for i, document in enumerate(documents)]
    response = fuzz_client.post("/v1/predict/batch", json={"documents": documents})
    assert response.status_code < 500, (response.text, documents)
    if response.status_code == 200:
        for answer in response.json()["results"]:
            if answer["overall"] is not None:
                check_score(answer["overall"]["stance"], STANCES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | texts.map(lambda t: json.dumps(t).encode()[:-1]))
def test_any_raw_bytes_get_a_clean_4xx(fuzz_client, raw):
    response = fuzz_client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (200, 400, 422), (response.status_code, response.text, raw)
    assert "error" in response.json() or response.status_code == 200


@pytest.fixture(scope="module")
def stored_document(fuzz_client) -> int:
    text = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
    return fuzz_client.post("/v1/predict", json={"text": text, "store": True}).json()["document_id"]


labels = st.sampled_from(sorted(STANCES | SENTIMENTS) + ["", "hostile"]) | json_values
review_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "document_id": st.integers(-2, 3) | st.sampled_from([2**62, 2**63, 2**80]) | json_values,
            "party": names,
            "issue": names,
            "stance": labels,
            "sentiment": labels,
            "evidence": spans | json_values,
            "reviewer": names | st.just("analyst\x00"),
        },
        optional={"note": texts, "extra": json_values},
    ),
    json_values,
)
review_queries = st.dictionaries(
    st.sampled_from(["document_id", "model", "stance", "sentiment", "reviewer", "since", "after", "limit"]),
    st.text(max_size=12)
    | st.integers(-3, 2**70).map(str)
    | st.sampled_from(["9999-12-31T23:00:00-05:00", "0001-01-01T00:00+05:00"]),
    max_size=4,
)


def check_clean(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        payload = response.json()
        assert set(payload) == {"error"} and payload["error"]["message"], payload


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=review_bodies)
def test_any_review_body_is_stored_or_gets_a_clean_4xx(fuzz_client, stored_document, body):
    response = fuzz_client.post("/v1/reviews", json=body)
    check_clean(response)
    if response.status_code in (200, 201):
        assert response.json()["document_id"] == stored_document


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=review_queries, document=st.integers(-3, 2**70).map(str) | st.text(max_size=6))
def test_any_review_listing_or_document_lookup_gets_a_page_or_a_clean_4xx(fuzz_client, query, document):
    listing = fuzz_client.get("/v1/reviews", params=query)
    check_clean(listing)
    if listing.status_code == 200:
        assert set(listing.json()) == {"reviews", "next_after"}
    check_clean(fuzz_client.get(f"/v1/documents/{quote(document, safe='')}"))
