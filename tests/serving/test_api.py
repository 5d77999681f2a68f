"""Contract tests of the v1 API on the real tiny model (the predictor is not mocked)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.conftest import settings_for
from training.predictor import Document, PairRequest

TEXT = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
PAIRS = [{"party": "Japan", "issue": "missile launches"}, {"party": "Russia", "issue": "missile launches"}]


def check_score(score: dict, labels: set[str]) -> None:
    assert score["label"] in labels
    assert set(score["scores"]) == labels
    assert sum(score["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert score["scores"][score["label"]] == max(score["scores"].values())


def test_predict_answers_each_pair_with_scores_and_evidence(client):
    response = client.post("/v1/predict", json={"text": TEXT, "pairs": PAIRS, "overall": True})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"model", "overall", "results", "document_id"}
    assert body["document_id"] is None, "nothing is stored unless asked"
    assert body["model"]["name"] == "tiny"
    check_score(body["overall"]["stance"], {"cooperative", "pressure", "neutral"})
    check_score(body["overall"]["sentiment"], {"positive", "neutral", "negative"})
    japan, russia = body["results"]
    assert (japan["party"], japan["issue"], japan["mentioned"]) == ("Japan", "missile launches", True)
    assert japan["stance"]["label"] == "pressure" and russia["stance"]["label"] == "cooperative"
    evidence = japan["evidence"][0]
    assert TEXT[evidence["start"] : evidence["end"]] == evidence["text"]
    check_score(evidence["stance"], {"cooperative", "pressure", "neutral"})


def test_without_pairs_the_pairs_are_detected(client):
    body = client.post("/v1/predict", json={"text": TEXT}).json()
    found = {(r["party"], r["issue"]) for r in body["results"]}
    assert ("Japan", "North Korea") in found
    assert any(party == "Russia" for party, _ in found)


def test_empty_pairs_answer_only_overall(client):
    body = client.post("/v1/predict", json={"text": TEXT, "pairs": []}).json()
    assert body["results"] == [] and "stance" in body["overall"]


def test_given_pairs_cost_only_their_windows_unless_overall_is_asked(client):
    predictor = client.app.state.predictor
    sentence = "Japan demanded that North Korea halt its missile launches."
    one_pair = Document(sentence, [PairRequest("Japan", "missile launches")])
    assert len(predictor.plan(one_pair).model_inputs) == 1, "one party in one sentence is one window"
    body = client.post("/v1/predict", json={"text": sentence, "pairs": PAIRS[:1]}).json()
    assert body["overall"] is None and body["results"][0]["party"] == "Japan"
    asked = client.post("/v1/predict", json={"text": sentence, "pairs": PAIRS[:1], "overall": True}).json()
    assert asked["overall"]["stance"]["label"] in {"cooperative", "pressure", "neutral"}
    assert asked["results"][0]["stance"] == body["results"][0]["stance"], "overall does not change the pair's answer"
    detected = client.post("/v1/predict", json={"text": sentence, "overall": False}).json()
    assert detected["overall"] is None and detected["results"]


def test_no_pairs_and_no_overall_is_a_clear_422(client):
    response = client.post("/v1/predict", json={"text": TEXT, "pairs": [], "overall": False})
    assert response.status_code == 422
    assert "nothing to answer" in response.text


@pytest.mark.parametrize("value", [0, 1, "yes", "true"])
def test_overall_must_be_a_json_boolean(client, value):
    response = client.post("/v1/predict", json={"text": TEXT, "pairs": PAIRS, "overall": value})
    assert response.status_code == 422 and "overall" in response.text


def test_spans_pin_a_pronoun_and_aliases_name_unknown_people(client):
    text = "He demanded that the talks on the dam stop. Minister Okoro welcomed mediation on the dam."
    body = client.post(
        "/v1/predict",
        json={
            "text": text,
            "pairs": [{"party": "Egypt", "issue": "dam", "spans": [[0, 2]]}, {"party": "Ethiopia", "issue": "dam"}],
            "aliases": {"Ethiopia": ["Okoro"]},
        },
    ).json()
    egypt, ethiopia = body["results"]
    assert egypt["mentioned"] and ethiopia["mentioned"]
    assert egypt["evidence"][0]["text"].startswith("He demanded")
    assert ethiopia["evidence"][0]["text"].startswith("Minister Okoro")


def test_a_party_absent_from_a_short_text_is_still_answered(client):
    body = client.post(
        "/v1/predict",
        json={"text": "We rejected the treaty and threatened to walk out.", "pairs": [{"party": "Somalia", "issue": "treaty"}]},
    ).json()
    (result,) = body["results"]
    assert result["mentioned"] is False and result["evidence"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text must not be empty"),
        ({"text": 42}, "valid string"),
        ({"text": TEXT, "pairs": [{"issue": "dam"}]}, "party"),
        ({"text": TEXT, "pairs": [{"party": ""}]}, "party"),
        ({"text": TEXT, "pairs": [{"party": "Japan", "spans": [[0, 999]]}]}, "outside the text"),
        ({"text": TEXT, "pairs": [{"party": "Japan", "spans": [[5, 2]]}]}, "empty or reversed"),
        ({"text": TEXT, "pairs": "Japan"}, "pairs"),
        ({"text": TEXT, "aliases": {"Japan": "Tokyo"}}, "aliases"),
        ({"text": TEXT, "pairs": [{"party": f"P{i}"} for i in range(6)]}, "limit is 5"),
        ({"txt": TEXT}, "text"),
    ],
)
def test_bad_requests_get_422_naming_the_problem(client, body, fragment):
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] in {"invalid_request", "too_many_items"}
    assert fragment in error["message"]


def test_malformed_json_gets_400(client):
    response = client.post("/v1/predict", content=b'{"text": "unterminated', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_a_body_over_the_limit_gets_413_before_parsing(client):
    response = client.post(
        "/v1/predict", content=b'{"text": "' + b"a" * 30_000 + b'"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_batch_answers_every_document_with_its_id(client):
    documents = [
        {"id": "a", "text": TEXT, "pairs": PAIRS},
        {"id": 7, "text": "Kenya ratified the treaty on fisheries.", "pairs": []},
    ]
    body = client.post("/v1/predict/batch", json={"documents": documents}).json()
    assert [r["id"] for r in body["results"]] == ["a", 7]
    assert len(body["results"][0]["results"]) == 2 and body["results"][1]["results"] == []


def test_batch_limits_and_errors_name_the_document(client):
    too_many = {"documents": [{"id": i, "text": TEXT} for i in range(4)]}
    assert client.post("/v1/predict/batch", json=too_many).json()["error"]["message"] == "documents has 4 items; the limit is 3"
    bad = {"documents": [{"id": 1, "text": TEXT}, {"id": 2, "text": ""}]}
    response = client.post("/v1/predict/batch", json=bad)
    assert response.status_code == 422 and "documents.1.text" in response.json()["error"]["message"]
    missing_id = client.post("/v1/predict/batch", json={"documents": [{"text": TEXT}]})
    assert missing_id.status_code == 422 and "id" in missing_id.json()["error"]["message"]


def test_health_model_metrics_and_docs(client):
    assert client.get("/health").json()["status"] == "ok"
    model = client.get("/v1/model").json()
    assert model["labels"] == {"stance": ["cooperative", "pressure", "neutral"], "sentiment": ["positive", "neutral", "negative"]}
    assert model["training_data"]["files"] and "dev" in model["metrics"]
    assert (
        model["backend"] == "torch" and model["backend_check"] is model["int8_check"] is None
    )  # the tiny model has no ONNX copy
    assert model["profile"] == "fast"  # the tiny recipe keeps TrainConfig's default profile
    assert model["window_pooling"] == "geometric"
    client.post("/v1/predict", json={"text": TEXT})
    metrics = client.get("/metrics").text
    assert 'stanceline_requests_total{method="POST",route="/v1/predict",status="200"}' in metrics
    assert "stanceline_request_latency_seconds_bucket" in metrics and "stanceline_batch_windows_count" in metrics
    assert "stanceline_queue_depth" in metrics
    assert client.get("/docs").status_code == 200
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"


def test_health_is_503_until_the_model_is_loaded(tiny_model):
    app = create_app(settings_for(tiny_model))
    with TestClient(app) as loaded:
        assert loaded.get("/health").status_code == 200
    assert TestClient(app).get("/health").status_code == 503  # no lifespan ran: nothing loaded


def test_api_keys_are_required_when_configured(tiny_model):
    with TestClient(create_app(settings_for(tiny_model, api_keys=["k1", "k2"]))) as keyed:
        assert keyed.post("/v1/predict", json={"text": TEXT}).status_code == 401
        assert keyed.post("/v1/predict", json={"text": TEXT}, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert keyed.post("/v1/predict", json={"text": TEXT}, headers={"Authorization": "Bearer k2"}).status_code == 200
        assert keyed.get("/v1/model").status_code == 401
        assert keyed.get("/health").status_code == 200


def test_overload_is_refused_with_503_not_queued_forever(tiny_model):
    with TestClient(create_app(settings_for(tiny_model, max_queued_documents=0))) as tight:
        response = tight.post("/v1/predict", json={"text": TEXT})
    assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"


def test_many_simultaneous_requests_each_get_their_own_answer(live_server):
    parties = [
        "Japan",
        "Russia",
        "China",
        "Germany",
        "Poland",
        "Egypt",
        "Kenya",
        "Norway",
        "India",
        "Chile",
        "Vietnam",
        "Jordan",
        "Israel",
        "Mexico",
        "Canada",
        "Brazil",
        "Armenia",
        "Georgia",
        "Iran",
        "Qatar",
    ]

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
            return await asyncio.gather(
                *[
                    http.post(
                        "/v1/predict",
                        json={"text": f"{party} signed the accord on trade.", "pairs": [{"party": party, "issue": "trade"}]},
                    )
                    for party in parties
                ]
            )

    responses = asyncio.run(fire())
    assert all(response.status_code == 200 for response in responses)
    assert [r.json()["results"][0]["party"] for r in responses] == parties
    assert all(r.json()["results"][0]["evidence"][0]["text"].startswith(p) for r, p in zip(responses, parties, strict=True))
    metrics = httpx.get(f"{live_server}/metrics").text
    batched = [line for line in metrics.splitlines() if line.startswith("stanceline_batch_documents_count")]
    assert batched and float(batched[0].split()[-1]) < len(parties) + 1, "concurrent requests shared model batches"
