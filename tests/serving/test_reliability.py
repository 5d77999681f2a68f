"""Regression tests for issue 12: no request can stall, poison or exhaust the service.

Each test names the defect it guards (numbered as in the issue). The model is the real tiny one; where a
test needs the model to be slow or to fail, the classifier is wrapped, never the predictor's planning."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import socket
import threading
import time

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.errors import ServiceError
from serving.metrics import Metrics
from serving.request_queue import BatchQueue
from serving.server import uvicorn_config
from serving.settings import Settings
from stanceline.cli import main
from tests.serving.conftest import settings_for, start_server
from training.predictor import Document, PairRequest, PredictionInputError, Predictor

TEXT = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
LONG_TEXT = " ".join(f"Officials of country number {i} met in the capital and talked at length." for i in range(60))


class GatedClassifier:
    """The real classifier behind a gate: model calls wait until the test opens it, and are recorded.
    A window whose target contains POISON makes the whole call fail, as the tokenizer did on a too-long pair."""

    def __init__(self, real) -> None:
        self.real = real
        self.meta = real.meta
        self.tokenizer = real.tokenizer
        self.gate = threading.Event()
        self.calls: list[list[str]] = []

    def predict(self, pairs):
        self.gate.wait(timeout=30)
        self.calls.append([target for target, _ in pairs])
        if any("POISON" in target for target, _ in pairs):
            raise RuntimeError("Truncation error: Sequence to truncate too short")
        return self.real.predict(pairs)


@pytest.fixture(scope="module")
def predictor(tiny_model) -> Predictor:
    return Predictor.from_folder(tiny_model, backend="torch", threads=1)


def gated_queue(predictor: Predictor, **limits) -> tuple[BatchQueue, GatedClassifier]:
    classifier = GatedClassifier(predictor.classifier)
    options = dict(max_queued_windows=2048, max_request_windows=1024, timeout_s=20.0)
    options.update(limits)
    queue = BatchQueue(Predictor(classifier, predictor.catalog), 8, 0.0, 100, Metrics(), **options)
    return queue, classifier


async def until(condition, timeout: float = 30.0) -> None:
    """Wait for `condition()` (planning runs in threads: on a loaded machine it takes a while)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the queue"
        await asyncio.sleep(0.02)


def heavy_document(pairs: int = 5) -> Document:
    return Document(LONG_TEXT, [PairRequest(f"Country number {i}", "talks") for i in range(pairs)])


def small_document(party: str = "Japan") -> Document:
    return Document(f"{party} signed the accord on trade.", [PairRequest(party, "trade")])


# --- 1. admission by cost, fair scheduling, deadline, Retry-After ---------------------------------------


def test_1_a_request_over_the_window_limit_gets_422_naming_the_limit(tiny_model):
    with TestClient(create_app(settings_for(tiny_model, max_request_windows=6, max_pairs=64))) as client:
        body = {"text": LONG_TEXT, "pairs": [{"party": f"Nowhere{i}", "issue": "tariffs"} for i in range(8)]}
        response = client.post("/v1/predict", json=body)
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "too_many_items"
        assert "the limit is 6" in error["message"] and "STANCELINE_MAX_REQUEST_WINDOWS" in error["message"]
        assert client.post("/v1/predict", json={"text": TEXT, "pairs": []}).status_code == 200


def test_1_the_queue_sheds_by_queued_windows_with_retry_after(predictor):
    async def scenario() -> None:
        heavy_windows = len(predictor.plan(heavy_document(5)).model_inputs)
        assert heavy_windows > 8
        queue, classifier = gated_queue(predictor, max_queued_windows=heavy_windows + 8, max_request_windows=heavy_windows)
        await queue.start()
        heavy = asyncio.create_task(queue.predict([heavy_document(5)]))
        await until(lambda: queue.queued_windows > 8)
        with pytest.raises(ServiceError) as refused:
            await queue.predict([heavy_document(5)])
        assert refused.value.code == "overloaded" and refused.value.retry_after >= 1
        small = asyncio.create_task(queue.predict([small_document()]))  # a small one still fits
        await until(lambda: len(queue._active) == 2)
        classifier.gate.set()
        assert (await small)[0]["results"][0]["party"] == "Japan"
        assert len(await heavy) == 1
        await queue.stop()

    asyncio.run(scenario())


def test_1_a_small_request_is_answered_before_a_heavy_one_queued_earlier(predictor):
    async def scenario() -> None:
        queue, classifier = gated_queue(predictor)
        await queue.start()
        finished: list[str] = []

        async def run(name: str, document: Document) -> None:
            await queue.predict([document])
            finished.append(name)

        heavy = asyncio.create_task(run("heavy", heavy_document(12)))
        await until(lambda: len(queue._active) == 1)
        small = asyncio.create_task(run("small", small_document()))
        await until(lambda: len(queue._active) == 2)
        classifier.gate.set()
        await asyncio.gather(heavy, small)
        assert finished == ["small", "heavy"]
        assert all(len(call) <= 8 for call in classifier.calls), "no model call is larger than batch_size"
        windows = len(predictor.plan(heavy_document(12)).model_inputs) + len(predictor.plan(small_document()).model_inputs)
        assert windows > 8 and len(classifier.calls) >= math.ceil(windows / 8), "the heavy request was split over model calls"
        await queue.stop()

    asyncio.run(scenario())


def test_1_a_request_past_its_deadline_gets_503_and_leaves_the_queue(predictor):
    async def scenario() -> None:
        queue, classifier = gated_queue(predictor, timeout_s=0.5)
        await queue.start()
        started = time.monotonic()
        with pytest.raises(ServiceError) as late:
            await queue.predict([heavy_document(3)])
        assert late.value.code == "timeout" and late.value.status == 503
        assert "STANCELINE_REQUEST_TIMEOUT_S" in late.value.message
        assert time.monotonic() - started < 10
        assert queue.queued_windows == 0
        classifier.gate.set()
        queue.timeout_s = 30.0  # the queue still answers once the model is free
        assert (await queue.predict([small_document()]))[0]["results"]
        await queue.stop()

    asyncio.run(scenario())


def test_1_every_503_carries_retry_after(tiny_model):
    with TestClient(create_app(settings_for(tiny_model, max_queued_windows=0))) as client:
        response = client.post("/v1/predict", json={"text": TEXT})
    assert response.status_code == 503 and response.json()["error"]["code"] == "overloaded"
    assert int(response.headers["retry-after"]) >= 1
    unloaded = TestClient(create_app(settings_for(tiny_model))).post("/v1/predict", json={"text": TEXT})
    assert unloaded.status_code == 503 and unloaded.headers["retry-after"]


def test_1_settings_refuse_a_request_limit_the_queue_could_never_admit():
    with pytest.raises(ValueError, match="max_request_windows"):
        Settings(max_request_windows=4096, max_queued_windows=1024)


# --- 3. one bad request fails alone ---------------------------------------------------------------------


def test_3_a_failing_request_fails_alone_and_is_logged(predictor, caplog):
    async def scenario() -> list:
        queue, classifier = gated_queue(predictor)
        await queue.start()
        guilty = Document(TEXT, [PairRequest("POISON", "trade")])
        tasks = [asyncio.create_task(queue.predict([small_document(p)])) for p in ("Japan", "Kenya", "Chile")]
        tasks.insert(1, asyncio.create_task(queue.predict([guilty])))
        await until(lambda: len(queue._active) == 4)
        classifier.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await queue.stop()
        return results

    with caplog.at_level(logging.ERROR, logger="serving.request_queue"):
        japan, guilty, kenya, chile = asyncio.run(scenario())
    assert isinstance(guilty, ServiceError) and guilty.status == 500 and "Truncation error" in guilty.message
    assert [answer[0]["results"][0]["party"] for answer in (japan, kenya, chile)] == ["Japan", "Kenya", "Chile"]
    assert any("model call failed" in record.message for record in caplog.records)


@pytest.mark.parametrize(
    ("pair", "fragment"),
    [
        ({"party": "x" * 101, "issue": "trade"}, "pairs.0.party"),
        ({"party": "Japan", "issue": "y" * 101}, "pairs.0.issue"),
        ({"party": " ".join("abcdefghijklmnopqrstuvwxyz" * 2)[:99], "issue": "trade"}, "tokens"),
    ],
)
def test_3_party_or_issue_too_long_for_the_model_gets_422(client, pair, fragment):
    response = client.post("/v1/predict", json={"text": TEXT, "pairs": [pair]})
    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]["message"]


def test_3_aliases_are_bounded_in_the_schema(client):
    too_many = {"text": TEXT, "aliases": {"Japan": [f"name{i}" for i in range(21)]}}
    assert client.post("/v1/predict", json=too_many).status_code == 422
    too_long = {"text": TEXT, "aliases": {"Japan": ["n" * 101]}}
    assert client.post("/v1/predict", json=too_long).status_code == 422


def test_3_predict_cli_writes_an_error_for_a_line_the_model_fails_on_and_goes_on(tiny_model, tmp_path, monkeypatch):
    from training.backends import Classifier

    real = Classifier.predict

    def failing(self, pairs):
        if any("Poisonia" in target for target, _ in pairs):
            raise RuntimeError("Truncation error: Sequence to truncate too short")
        return real(self, pairs)

    monkeypatch.setattr(Classifier, "predict", failing)
    source = tmp_path / "docs.jsonl"
    lines = [
        {"id": "a", "text": TEXT, "pairs": [{"party": "Japan", "issue": "missile launches"}]},
        {"id": "guilty", "text": TEXT, "pairs": [{"party": "Poisonia", "issue": "trade"}]},
        {"id": "long", "text": TEXT, "pairs": [{"party": "p" * 300}]},
        {"id": "b", "text": TEXT, "pairs": []},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "answers.jsonl"
    assert main(["predict", "--input", str(source), "--output", str(output), "--model", str(tiny_model), "--batch", "4"]) == 0
    answers = [json.loads(line) for line in output.read_text().splitlines()]
    assert [answer["id"] for answer in answers] == ["a", "guilty", "long", "b"]
    assert "results" in answers[0] and "results" in answers[3]
    assert answers[1]["error"]["code"] == "internal" and "Truncation error" in answers[1]["error"]["message"]
    assert answers[2]["error"]["code"] == "invalid_request" and "party" in answers[2]["error"]["message"]


# --- 4. API keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["k1,k2", " k1 , k2 ", '["k1", "k2"]'])
def test_4_api_keys_from_the_environment_as_comma_or_json_list(tiny_model, monkeypatch, value):
    monkeypatch.setenv("STANCELINE_API_KEYS", value)
    settings = Settings(model_dir=str(tiny_model), threads=1, allowed_hosts=["testserver"])
    assert settings.api_keys == ["k1", "k2"]
    with TestClient(create_app(settings)) as keyed:
        assert keyed.post("/v1/predict", json={"text": TEXT}, headers={"Authorization": "Bearer k2"}).status_code == 200
        assert keyed.post("/v1/predict", json={"text": TEXT}, headers={"Authorization": "Bearer k3"}).status_code == 401


def test_4_a_malformed_json_key_list_is_a_clear_settings_error(monkeypatch):
    monkeypatch.setenv("STANCELINE_API_KEYS", '["k1"')
    with pytest.raises(ValueError, match="JSON list"):
        Settings()


def test_4_a_non_ascii_bearer_token_gets_401_and_a_non_ascii_key_works(tiny_model):
    with TestClient(create_app(settings_for(tiny_model, api_keys=["clé-1"]))) as keyed:
        wrong = keyed.post("/v1/predict", json={"text": TEXT}, headers={"Authorization": "Bearer clé-2".encode()})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        right = keyed.post("/v1/predict", json={"text": TEXT}, headers={"Authorization": "Bearer clé-1".encode()})
        assert right.status_code == 200


# --- 5. pinned spans in whitespace ----------------------------------------------------------------------


def test_5_a_span_covering_only_whitespace_gets_422(client, predictor):
    text = "Japan spoke.   Russia agreed."
    response = client.post("/v1/predict", json={"text": text, "pairs": [{"party": "Egypt", "spans": [[12, 15]]}]})
    assert response.status_code == 422 and "only whitespace" in response.json()["error"]["message"]
    with pytest.raises(PredictionInputError, match="only whitespace"):
        predictor.plan(Document(text, [PairRequest("Egypt", None, [(12, 15)])]))


# --- 6. slow and oversized clients ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_server(tiny_model):
    url, server, thread = start_server(settings_for(tiny_model, read_timeout_s=1.0, max_header_bytes=4096, access_log=False))
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def raw_exchange(url: str, payload: bytes, wait: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(payload)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def test_6_oversized_headers_get_431(guarded_server):
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    reply = raw_exchange(guarded_server, request)
    assert reply.startswith(b"HTTP/1.1 431") and b"headers_too_large" in reply


def test_6_headers_sent_too_slowly_get_408_and_the_connection_closes(guarded_server):
    started = time.monotonic()
    reply = raw_exchange(guarded_server, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply
    assert time.monotonic() - started < 4


def test_6_a_body_sent_too_slowly_gets_408(guarded_server):
    host, port = guarded_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
        connection.sendall(b'Content-Length: 100\r\n\r\n{"text": ')
        reply = connection.recv(65536)
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply


def test_6_the_server_limits_connections(tiny_model):
    settings = settings_for(tiny_model, max_connections=77)
    assert uvicorn_config(None, settings).limit_concurrency == 77


# --- 7. protocol details, health, host, model folder ----------------------------------------------------


def test_7_405_carries_allow_and_the_error_shape(client):
    response = client.get("/v1/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_7_a_body_that_is_not_utf8_json_is_bad_json(client):
    response = client.post("/v1/predict", content=b'{"text": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_json"


def test_7_openapi_documents_the_bearer_scheme_when_keys_are_set(tiny_model, client):
    with TestClient(create_app(settings_for(tiny_model, api_keys=["k1"]))) as keyed:
        spec = keyed.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/predict"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in client.get("/openapi.json").json()["paths"]["/v1/predict"]["post"], "no keys: no auth"


def test_7_openapi_documents_every_error_in_the_error_shape(client):
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path in ("/v1/predict", "/v1/predict/batch"):
        responses = spec["paths"][path]["post"]["responses"]
        assert {"400", "401", "408", "413", "422", "500", "503"} <= set(responses)
        for status in ("400", "422", "503"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
        assert "Retry-After" in responses["503"]["headers"]


def test_7_health_is_503_when_the_batching_worker_died(tiny_model):
    with TestClient(create_app(settings_for(tiny_model))) as client:
        assert client.get("/health").status_code == 200
        queue = client.app.state.queue
        client.portal.call(lambda: _cancel(queue))
        response = client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "worker stopped"
        assert client.post("/v1/predict", json={"text": TEXT}).status_code == 503


async def _cancel(queue: BatchQueue) -> None:
    queue._worker.cancel()
    await asyncio.sleep(0)


def test_7_hosts_other_than_loopback_are_refused_by_default(tiny_model):
    settings = Settings(model_dir=str(tiny_model), threads=1)  # host 127.0.0.1, allowed_hosts unset
    with TestClient(create_app(settings), base_url="http://localhost:8000") as client:
        assert client.get("/health").status_code == 200
        rebound = client.get("/health", headers={"Host": "attacker.example"})
        assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "host_not_allowed"
        assert client.get("/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/health", headers={"Host": "[::1]:8000"}).status_code == 200
    with TestClient(
        create_app(settings_for(tiny_model, allowed_hosts=["*.example.org"])), base_url="http://a.example.org"
    ) as client:
        assert client.get("/health").status_code == 200


@pytest.fixture
def broken_models(tiny_model, tmp_path):
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_model, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    no_meta = tmp_path / "no-meta"
    shutil.copytree(tiny_model, no_meta)
    (no_meta / "stanceline.json").unlink()
    return [truncated, no_meta, tmp_path / "missing"]


@pytest.mark.parametrize("command", ["serve", "predict"])
def test_7_a_bad_model_folder_is_one_line_from_serve_and_predict(broken_models, tmp_path, capsys, command):
    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": 1, "text": TEXT}) + "\n")
    for folder in broken_models:
        extra = ["--input", str(source), "--output", str(tmp_path / "o.jsonl")] if command == "predict" else ["--port", "1"]
        assert main([command, "--model", str(folder), *extra]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("stanceline")]
        assert len(lines) == 1 and str(folder) in lines[0], lines
