"""/v1/reviews through the API: store an answer, correct its pairs, read the corrections back."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from serving.app import create_app
from tests.serving.conftest import settings_for

ARTICLES = [
    "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue.",
    "China urged restraint over Taiwan and warned the United States against arms sales. Germany called for dialogue.",
    "Iran rejected the sanctions imposed by the European Union. France said it remained open to talks with Tehran.",
]
STANCES = ("cooperative", "pressure", "neutral")
SENTIMENTS = ("positive", "neutral", "negative")


@pytest.fixture
def reviews_client(tiny_model, database_url):
    with TestClient(create_app(settings_for(tiny_model, database_url=database_url, max_pairs=20))) as client:
        yield client


def stored(client: TestClient, text: str) -> tuple[int, list[dict]]:
    answer = client.post("/v1/predict", json={"text": text, "store": True})
    assert answer.status_code == 200, answer.text
    return answer.json()["document_id"], answer.json()["results"]


def test_twenty_corrections_through_the_api_are_kept_and_listed(reviews_client):
    posted = []
    for text in ARTICLES:
        document_id, results = stored(reviews_client, text)
        assert document_id is not None
        for pair in [r for r in results if r["issue"]]:
            if len(posted) == 20:
                break
            evidence = pair["evidence"][0]
            body = {
                "document_id": document_id,
                "party": pair["party"],
                "issue": pair["issue"],
                "stance": STANCES[len(posted) % 3],
                "sentiment": SENTIMENTS[len(posted) % 3],
                "evidence": [[evidence["start"], evidence["end"]]],
                "reviewer": f"analyst-{len(posted) % 2}",
            }
            response = reviews_client.post("/v1/reviews", json=body)
            assert response.status_code == 201, response.text
            assert response.json()["predicted"] == {"stance": pair["stance"]["label"], "sentiment": pair["sentiment"]["label"]}
            posted.append(response.json())
    assert len(posted) >= 12, "the tiny model finds enough pairs in three articles"
    listed, after = [], 0
    while after is not None:
        page = reviews_client.get("/v1/reviews", params={"limit": 5, "after": after}).json()
        listed += page["reviews"]
        after = page["next_after"]
    assert listed == posted
    pressure = reviews_client.get("/v1/reviews", params={"stance": "pressure"}).json()["reviews"]
    assert pressure == [review for review in posted if review["stance"] == "pressure"]
    assert reviews_client.get("/v1/reviews", params={"model": "no-such-model"}).json()["reviews"] == []


def russia_correction(document_id: int, **changes) -> dict:
    """A valid correction of Russia's pair in ARTICLES[0]; `changes` replace any field."""
    body = {
        "document_id": document_id,
        "party": "Russia",
        "issue": "missile launches",
        "stance": "cooperative",
        "sentiment": "neutral",
        "evidence": [[59, 87]],
        "reviewer": "analyst-1",
    }
    return {**body, **changes}


def test_a_repeated_correction_answers_200_with_the_stored_one(reviews_client):
    document_id, _ = stored(reviews_client, ARTICLES[0])
    body = russia_correction(document_id)
    first = reviews_client.post("/v1/reviews", json=body)
    again = reviews_client.post("/v1/reviews", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert len(reviews_client.get("/v1/reviews").json()["reviews"]) == 1


@pytest.mark.parametrize(
    ("change", "status", "code", "words"),
    [
        ({"document_id": 999}, 404, "not_found", "predict with store=true first"),
        ({"evidence": [[0, 10_000]]}, 422, "invalid_request", "outside the document"),
        ({"evidence": []}, 422, "invalid_request", "evidence"),
        ({"stance": "hostile"}, 422, "invalid_request", "stance"),
        ({"reviewer": "  "}, 422, "invalid_request", "reviewer must not be empty"),
        ({"issue": None}, 422, "invalid_request", "issue"),
    ],
)
def test_bad_corrections_get_an_error_that_names_the_problem(reviews_client, change, status, code, words):
    document_id, _ = stored(reviews_client, ARTICLES[0])
    response = reviews_client.post("/v1/reviews", json={**russia_correction(document_id), **change})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code and words in response.json()["error"]["message"]


def test_nothing_is_kept_unless_asked(tiny_model, tmp_path):
    database = tmp_path / "kept.db"
    settings = settings_for(tiny_model, database_url=f"sqlite:///{database}")
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/predict", json={"text": ARTICLES[0]})
        batch = client.post("/v1/predict/batch", json={"documents": [{"id": "a", "text": ARTICLES[1]}]})
    assert answer.json()["document_id"] is None and batch.json()["results"][0]["document_id"] is None
    assert not database.exists(), "no database is created for a server that was never asked to store"


def test_the_server_setting_stores_every_answer_and_a_request_can_opt_out(tiny_model, tmp_path):
    url = f"sqlite:///{tmp_path / 'all.db'}"
    with TestClient(create_app(settings_for(tiny_model, database_url=url, store_predictions=True))) as client:
        kept = client.post("/v1/predict", json={"text": ARTICLES[0]}).json()["document_id"]
        skipped = client.post("/v1/predict", json={"text": ARTICLES[1], "store": False}).json()["document_id"]
        batch = client.post("/v1/predict/batch", json={"documents": [{"id": 7, "text": ARTICLES[2], "source": "feed"}]})
        document = client.get(f"/v1/documents/{batch.json()['results'][0]['document_id']}").json()
        missing = client.get("/v1/documents/999")
    assert kept == 1 and skipped is None
    assert document["text"] == ARTICLES[2] and document["source"] == "feed"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_reviews_need_the_api_key_when_the_server_sets_one(tiny_model, tmp_path):
    settings = settings_for(tiny_model, database_url=f"sqlite:///{tmp_path / 'k.db'}", api_keys=["s3cret"])
    with TestClient(create_app(settings)) as client:
        refused = client.get("/v1/reviews")
        allowed = client.get("/v1/reviews", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert allowed.status_code == 200 and allowed.json() == {"reviews": [], "next_after": None}


def test_an_unreachable_database_is_a_503_that_names_it_and_predicting_without_storing_still_works(tiny_model):
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    assert make_url(url).get_backend_name() == "postgresql"
    with TestClient(create_app(settings_for(tiny_model, database_url=url))) as client:
        plain = client.post("/v1/predict", json={"text": ARTICLES[0]})
        storing = client.post("/v1/predict", json={"text": ARTICLES[0], "store": True})
    assert plain.status_code == 200
    assert storing.status_code == 503 and storing.json()["error"]["code"] == "storage_unavailable"
    assert storing.headers["Retry-After"] == "5"


def test_the_default_database_lives_under_data(tiny_model):
    from serving.settings import Settings

    assert Path(make_url(Settings().database_url).database).parent == Path("data")


def test_a_label_flip_needs_no_evidence_and_no_reviewer(reviews_client):
    """An analyst flipping a label sends only the pair and the labels: the review keeps the windows the
    stored answer cited, and says so; the reviewer is `anonymous` on a server without keys."""
    document_id, results = stored(reviews_client, ARTICLES[0])
    pair = next(r for r in results if r["issue"])
    body = {
        "document_id": document_id,
        "party": pair["party"],
        "issue": pair["issue"],
        "stance": "pressure",
        "sentiment": "negative",
    }
    response = reviews_client.post("/v1/reviews", json=body)
    assert response.status_code == 201, response.text
    review = response.json()
    assert review["evidence"] == [[e["start"], e["end"]] for e in pair["evidence"]]
    assert review["evidence_source"] == "cited" and review["reviewer"] == "anonymous"
    assert reviews_client.get("/v1/reviews").json()["reviews"] == [review]
    given = reviews_client.post("/v1/reviews", json=russia_correction(document_id)).json()
    assert given["evidence_source"] == "request" and given["evidence"] == [[59, 87]]


def test_without_evidence_a_pair_the_answer_never_cited_is_refused_by_name(reviews_client):
    document_id, _ = stored(reviews_client, ARTICLES[0])
    body = {"document_id": document_id, "party": "Brazil", "issue": "trade", "stance": "neutral", "sentiment": "neutral"}
    response = reviews_client.post("/v1/reviews", json=body)
    assert response.status_code == 422
    assert "no evidence given" in response.json()["error"]["message"] and "'Brazil'" in response.json()["error"]["message"]
    assert reviews_client.get("/v1/reviews").json()["reviews"] == []


def test_the_reviewer_defaults_to_the_api_keys_name(tiny_model, tmp_path):
    keys = ["analyst-7:s3cret", "plainkey"]
    settings = settings_for(tiny_model, database_url=f"sqlite:///{tmp_path / 'named.db'}", api_keys=keys)
    with TestClient(create_app(settings)) as client:
        names = []
        for key in ("s3cret", "plainkey"):
            headers = {"Authorization": f"Bearer {key}"}
            answer = client.post("/v1/predict", json={"text": ARTICLES[0], "store": True}, headers=headers).json()
            body = russia_correction(answer["document_id"], reviewer=None, stance=STANCES[len(names)])
            names.append(client.post("/v1/reviews", json=body, headers=headers).json()["reviewer"])
        refused = client.post("/v1/reviews", json=body, headers={"Authorization": "Bearer analyst-7:s3cret"})
    assert names[0] == "analyst-7"
    assert names[1].startswith("key-") and len(names[1]) == 12 and "plainkey" not in names[1]
    assert refused.status_code == 401, "the name is not part of the key"


@pytest.mark.parametrize("since", ["0.5", "1700000000", "yesterday", "2026-13-40"])
def test_since_must_be_a_date(reviews_client, since):
    response = reviews_client.get("/v1/reviews", params={"since": since})
    assert response.status_code == 422 and "since" in response.json()["error"]["message"]


def test_since_accepts_dates_and_date_times(reviews_client):
    for since in ("2026-12-01", "2026-12-01T08:00:00Z", "2026-12-01 08:00+02:00"):
        assert reviews_client.get("/v1/reviews", params={"since": since}).status_code == 200, since


def test_an_empty_span_is_called_empty(reviews_client):
    document_id, _ = stored(reviews_client, ARTICLES[0])
    review = reviews_client.post("/v1/reviews", json=russia_correction(document_id, evidence=[[5, 5]]))
    predict = reviews_client.post("/v1/predict", json={"text": ARTICLES[0], "pairs": [{"party": "Japan", "spans": [[0, 0]]}]})
    for response in (review, predict):
        assert response.status_code == 422 and "is empty" in response.json()["error"]["message"], response.text


def test_a_wrong_method_lists_every_method_of_the_path(reviews_client):
    response = reviews_client.request("DELETE", "/v1/reviews")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["allow"].split(",")}
