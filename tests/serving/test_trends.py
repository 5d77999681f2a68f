"""Stance over time: dates through the API, the store, predict and score; the trends engine and its shift
detector on a synthetic feed with planted shifts; `stanceline trends`; /v1/trends; the Trends view."""

from __future__ import annotations

import json
import random
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from serving.app import create_app
from serving.score import output_schema
from serving.store import Store, current_revision, migrate
from serving.trends import ShiftRule, parse_window, period_start, trends_of_rows, trends_of_scored, wilson_interval
from stanceline.cli import main
from tests.serving.conftest import settings_for, start_server
from training.labels import STANCE_LABELS

MODEL = {"name": "m", "version": "1"}


def answer_with(pairs: list[tuple[str, str | None, str]]) -> dict:
    """A stored answer of the predictor's shape for (party, issue, stance) pairs, with one evidence window each."""
    results = []
    for party, issue, stance in pairs:
        scores = {label: (0.8 if label == stance else 0.1) for label in STANCE_LABELS}
        results.append(
            {
                "party": party,
                "issue": issue,
                "stance": {"label": stance, "scores": scores},
                "sentiment": {"label": "neutral", "scores": {"positive": 0.2, "neutral": 0.6, "negative": 0.2}},
                "mentioned": True,
                "evidence": [
                    {"start": 0, "end": 5, "text": "Tokyo", "weight": 1.0, "stance": {"label": stance, "scores": scores}}
                ],
            }
        )
    return {"model": MODEL, "overall": None, "results": results}


# --- statistics -----------------------------------------------------------------------------------------


def test_wilson_interval_matches_published_values():
    low, high = wilson_interval(5, 10)  # Wilson (1927) / Newcombe (1998): 0.2366 to 0.7634
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 20)[0] == 0.0 and 0 < wilson_interval(0, 20)[1] < 0.2
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_periods_and_windows():
    thursday = datetime(2024, 3, 7, 15, 30)
    assert period_start(thursday, "day") == datetime(2024, 3, 7)
    assert period_start(thursday, "week") == datetime(2024, 3, 4)
    assert period_start(thursday, "month") == datetime(2024, 3, 1)
    assert parse_window("2024-01-01", "2024-01-31") == (datetime(2024, 1, 1), datetime(2024, 2, 1))
    assert parse_window("2024-01-01T00:00:00+09:00", None) == (datetime(2023, 12, 31, 15), None)
    with pytest.raises(ValueError, match="must come after"):
        parse_window("2024-02-01", "2024-01-01")
    with pytest.raises(ValueError, match="not a valid ISO 8601"):
        parse_window("2024-02-30", None)


# --- a synthetic feed with planted shifts -----------------------------------------------------------------

FEED_MONTHS = 12


def share_plan() -> dict[tuple[str, str], tuple[int, list[dict[str, float]]]]:
    """Per pair: documents a month and the true stance shares of each month. Planted shifts: Japan on
    North Korea turns cooperative in month 7; China on Taiwan turns neutral in month 4 and back in month 9.
    Russia on Ukraine is stable; Iran on sanctions swings wildly but on too few documents to judge."""
    calm = {"cooperative": 0.3, "pressure": 0.5, "neutral": 0.2}
    return {
        ("Japan", "North Korea"): (
            120,
            [{"cooperative": 0.2, "pressure": 0.6, "neutral": 0.2}] * 6
            + [{"cooperative": 0.6, "pressure": 0.2, "neutral": 0.2}] * 6,
        ),
        ("China", "Taiwan"): (
            100,
            [calm] * 3 + [{"cooperative": 0.1, "pressure": 0.3, "neutral": 0.6}] * 5 + [calm] * 4,
        ),
        ("Russia", "Ukraine"): (80, [calm] * FEED_MONTHS),
        ("Iran", "sanctions"): (
            8,
            [{"cooperative": 0.9, "pressure": 0.05, "neutral": 0.05}, {"cooperative": 0.05, "pressure": 0.9, "neutral": 0.05}]
            * 6,
        ),
    }


PLANTED = {
    ("Japan", "North Korea", datetime(2024, 7, 1)),
    ("China", "Taiwan", datetime(2024, 4, 1)),
    ("China", "Taiwan", datetime(2024, 9, 1)),
}


def synthetic_feed(seed: int) -> list[dict]:
    """Scored rows in `stanceline score`'s output schema: one document per answered pair, labels drawn
    from the plan's shares, dates spread over each month of 2024."""
    generator = random.Random(seed)
    rows = []
    for (party, issue), (per_month, months) in share_plan().items():
        for month, shares in enumerate(months, start=1):
            for _ in range(per_month):
                stance = generator.choices(STANCE_LABELS, weights=[shares[label] for label in STANCE_LABELS])[0]
                scores = {label: (0.7 if label == stance else 0.15) for label in STANCE_LABELS}
                answer = answer_with([(party, issue, stance)])
                rows.append(
                    {
                        "line": len(rows) + 1,
                        "id": f"d{len(rows)}",
                        "model": "m@1",
                        "overall_stance": None,
                        "overall_sentiment": None,
                        "pairs": 1,
                        "answer": json.dumps(answer),
                        "error_code": None,
                        "error_message": None,
                        "published": datetime(2024, month, generator.randint(1, 28), generator.randint(0, 23)),
                        "published_source": "given",
                        "stances": [{"party": party, "issue": issue, "stance": stance, **scores}],
                    }
                )
    return rows


def write_scored(rows: list[dict], folder: Path, files: int = 3) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // files)
    for index in range(files):
        table = pa.Table.from_pylist(rows[index * size : (index + 1) * size], schema=output_schema())
        pq.write_table(table, folder / f"feed-{index:06d}.parquet")
    return folder


@pytest.mark.parametrize("seed", range(5))
def test_the_detector_finds_each_planted_shift_and_nothing_else(tmp_path, seed):
    folder = write_scored(synthetic_feed(seed), tmp_path / "scored")
    trends = trends_of_scored([str(folder)], "month", threads=1)
    found = {(shift["party"], shift["issue"], shift["period"]) for shift in trends.shifts}
    assert found == PLANTED
    japan = next(shift for shift in trends.shifts if shift["party"] == "Japan" and shift["stance"] == "cooperative")
    assert japan["share_before"] < 0.35 < 0.45 < japan["share_after"] and japan["p_value"] < 0.05
    counts = {(pair["party"], pair["issue"]): pair["documents"] for pair in trends.pairs()}
    assert counts == {pair: per_month * FEED_MONTHS for pair, (per_month, _) in share_plan().items()}
    first = trends.rows[0]
    assert sum(first[f"{label}_count"] for label in STANCE_LABELS) == first["documents"]
    assert first["cooperative_low"] <= first["cooperative_share"] <= first["cooperative_high"]


def test_a_stricter_rule_or_a_period_too_fine_invents_nothing(tmp_path):
    folder = write_scored(synthetic_feed(0), tmp_path / "scored")
    strict = trends_of_scored([str(folder)], "month", threads=1, rule=ShiftRule(min_change=0.5))
    assert strict.shifts == []
    weekly = trends_of_scored([str(folder)], "week", threads=1)
    # Weeks hold about a quarter of each month's documents: only the planted changes can show, never a calm pair.
    assert {(shift["party"], shift["issue"]) for shift in weekly.shifts} <= {("Japan", "North Korea"), ("China", "Taiwan")}
    weeks = {shift["period"] for shift in weekly.shifts if shift["party"] == "Japan"}
    assert all(datetime(2024, 6, 24) <= week <= datetime(2024, 7, 1) for week in weeks)


def test_the_trends_command_writes_tables_and_a_report(tmp_path, capsys):
    folder = write_scored(synthetic_feed(1), tmp_path / "scored")
    output = tmp_path / "trends"
    assert main(["trends", str(folder), "--output", str(output), "--threads", "1", "--top", "2"]) == 0
    import pyarrow.parquet as pq

    series = pq.read_table(output / "trends.parquet").to_pylist()
    assert len(series) == 4 * FEED_MONTHS and {"cooperative_share", "cooperative_low", "pressure_mean_score"} <= set(series[0])
    assert (output / "trends.csv").read_text().startswith('"party","issue","period"')
    shifts = (output / "shifts.csv").read_text().splitlines()
    assert len(shifts) > 1 and all(("Japan" in line or "China" in line) for line in shifts[1:])
    report = (output / "report.html").read_text()
    # The 2 most active pairs, then the next by change: Russia (Iran never has enough documents to compare).
    assert report.count("<svg") == 3 and "Iran" not in report and "Russia on Ukraine" in report
    assert "Japan on North Korea" in report and "shift:" in report and "http" not in report.replace("http://www.w3.org", "")
    assert "shift(s) ->" in capsys.readouterr().err

    main(["trends", str(folder), "--output", str(tmp_path / "one"), "--party", "Iran", "--period", "week", "--threads", "1"])
    assert {row["party"] for row in pq.read_table(tmp_path / "one" / "trends.parquet").to_pylist()} == {"Iran"}


def test_the_trends_command_explains_bad_input(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = tmp_path / "old"
    old.mkdir()
    pq.write_table(pa.table({"id": ["a"], "answer": ["{}"]}), old / "chunk.parquet")
    assert main(["trends", str(old), "--output", str(tmp_path / "out")]) == 2
    assert "before dates; score the input again" in capsys.readouterr().err
    assert main(["trends", str(tmp_path / "missing"), "--output", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["trends", "--output", str(tmp_path / "out")]) == 2
    assert "--from-store" in capsys.readouterr().err
    assert main(["trends", str(old), "--output", str(tmp_path / "out"), "--to", "2024-13-01"]) == 2
    assert "not a valid ISO 8601" in capsys.readouterr().err


# --- the store --------------------------------------------------------------------------------------------


def test_migration_0003_dates_stored_documents_by_their_received_time(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = Store(url, upgrade=False)
    try:
        migrate(store.engine, "0002")
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO documents (sha256, text, received_at) VALUES ('x', 'Tokyo spoke.', '2024-05-06 07:08:09')")
            )
        migrate(store.engine)
        assert current_revision(store.engine) == "0003"
        document = store.document(1)
        assert document["published"] == "2024-05-06T07:08:09+00:00" and document["published_source"] == "received"
        migrate(store.engine, "0002", down=True)
        assert not {"published", "published_source"} & {
            column["name"] for column in inspect(store.engine).get_columns("documents")
        }
    finally:
        store.close()


def test_the_store_keeps_a_given_date_and_marks_the_received_time(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        given = store.store_answer(
            "Tokyo pressed Pyongyang.", None, MODEL, answer_with([("Japan", "North Korea", "pressure")]), datetime(2024, 2, 3)
        )
        undated = store.store_answer("Moscow urged talks.", None, MODEL, answer_with([("Russia", "North Korea", "cooperative")]))
        assert store.document(given)["published"] == "2024-02-03T00:00:00+00:00"
        assert store.document(given)["published_source"] == "given" and store.document(undated)["published_source"] == "received"
        # Sent again with a date: the date replaces the received time; a later, different date does not replace it.
        store.store_answer(
            "Moscow urged talks.", None, MODEL, answer_with([("Russia", "North Korea", "cooperative")]), datetime(2024, 1, 5)
        )
        store.store_answer(
            "Moscow urged talks.", None, MODEL, answer_with([("Russia", "North Korea", "pressure")]), datetime(2025, 1, 5)
        )
        assert store.document(undated)["published"] == "2024-01-05T00:00:00+00:00"
        rows = store.stance_rows()
        assert {(row["party"], row["stance"]) for row in rows} == {("Japan", "pressure"), ("Russia", "pressure")}, "newest answer"
        assert [row["party"] for row in store.stance_rows(datetime(2024, 2, 1))] == ["Japan"]
        trends = trends_of_rows(rows, "month")
        assert [(row["party"], row["period"], row["documents"]) for row in trends.rows] == [
            ("Japan", datetime(2024, 2, 1), 1),
            ("Russia", datetime(2024, 1, 1), 1),
        ]
        (document,) = store.pair_documents("Japan", "North Korea", datetime(2024, 2, 1), datetime(2024, 3, 1))
        assert document["stance"]["label"] == "pressure" and document["evidence"][0]["text"] == "Tokyo"
        assert store.pair_documents("Japan", "Russia", datetime(2024, 2, 1), datetime(2024, 3, 1)) == []
    finally:
        store.close()


# --- through the API, predict and score, on the tiny real model -----------------------------------------

ARTICLES = [
    "Japan demanded that North Korea halt its missile launches.",
    "Russia offered to host talks on the missile issue with North Korea.",
    "Japan and North Korea agreed to resume talks on the abductions.",
]
DATES = ["2024-01-10", "2024-01-20T08:00:00Z", "2024-02-11", "2024-02-25T23:30:00-02:00", "2024-03-15", "2024-04-02"]


def post_dated_articles(client, headers=None) -> list[dict]:
    """Six dated stored articles over four months and one without a date; returns the answers."""
    answers = []
    for index, published in enumerate(DATES):
        body = {"text": f"{ARTICLES[index % 3]} Report {index}.", "store": True, "published": published, "source": "wire"}
        response = client.post("/v1/predict", json=body, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    undated = client.post("/v1/predict", json={"text": ARTICLES[0] + " Undated.", "store": True}, headers=headers)
    return [*answers, undated.json()]


@pytest.fixture(scope="module")
def keyed_client(tiny_model):
    settings = settings_for(tiny_model, api_keys=["analyst:s3cret"], max_documents=10)
    with TestClient(create_app(settings)) as client:
        yield client


KEY = {"Authorization": "Bearer s3cret"}


def test_dated_articles_show_in_trends_behind_the_api_keys(keyed_client):
    answers = post_dated_articles(keyed_client, KEY)
    document = keyed_client.get(f"/v1/documents/{answers[3]['document_id']}", headers=KEY).json()
    assert document["published"] == "2024-02-26T01:30:00+00:00" and document["published_source"] == "given"
    assert keyed_client.get(f"/v1/documents/{answers[-1]['document_id']}", headers=KEY).json()["published_source"] == "received"

    assert keyed_client.get("/v1/trends").status_code == 401
    page = keyed_client.get("/v1/trends", params={"from": "2024-01-01", "to": "2024-12-31"}, headers=KEY).json()
    assert page["period"] == "month" and page["pairs"]
    answered = {(result["party"], result["issue"]) for answer in answers[:-1] for result in answer["results"]}
    assert {(pair["party"], pair["issue"]) for pair in page["pairs"]} == answered
    japan = next(pair for pair in page["pairs"] if pair["party"] == "Japan" and pair["issue"] == "North Korea")
    expected = sum(("Japan", "North Korea") in {(r["party"], r["issue"]) for r in answer["results"]} for answer in answers[:-1])
    assert japan["documents"] == expected and japan["undated"] == 0 and japan["shifts"] == []
    first = japan["periods"][0]
    assert first["start"] == "2024-01-01T00:00:00+00:00" and first["end"] == "2024-02-01T00:00:00+00:00"
    assert abs(sum(share["share"] for share in first["stances"].values()) - 1) < 1e-9
    assert [pair["documents"] for pair in page["pairs"]] == sorted((pair["documents"] for pair in page["pairs"]), reverse=True)

    everything = keyed_client.get("/v1/trends", headers=KEY).json()
    assert sum(pair["undated"] for pair in everything["pairs"]) == len(answers[-1]["results"])

    first_page = keyed_client.get("/v1/trends", params={"limit": 1}, headers=KEY).json()
    assert len(first_page["pairs"]) == 1 and first_page["next_after"] == 1
    second = keyed_client.get("/v1/trends", params={"limit": 1, "after": 1}, headers=KEY).json()
    assert second["pairs"][0] != first_page["pairs"][0]

    one = keyed_client.get("/v1/trends", params={"party": "Japan", "issue": "North Korea", "period": "week"}, headers=KEY).json()
    assert [(pair["party"], pair["issue"]) for pair in one["pairs"]] == [("Japan", "North Korea")]

    listed = keyed_client.get(
        "/v1/trends/documents", params={"party": "Japan", "issue": "North Korea", "at": first["start"]}, headers=KEY
    ).json()
    assert listed["start"] == first["start"] and len(listed["documents"]) == first["documents"]
    assert all(doc["published"].startswith("2024-01") and doc["evidence"] for doc in listed["documents"])
    assert all(doc["evidence"][0]["text"] in ARTICLES[0] + ARTICLES[2] for doc in listed["documents"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "year"}, "period"),
        ({"from": "2024-02-30"}, "not a valid ISO 8601"),
        ({"from": "1700000000"}, "from"),
        ({"from": "2024-03-01", "to": "2024-02-01"}, "must come after"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_trend_queries_are_refused_with_a_message(keyed_client, params, message):
    response = keyed_client.get("/v1/trends", params=params, headers=KEY)
    assert response.status_code == 422 and message in response.json()["error"]["message"], response.text


def test_bad_dates_in_a_predict_request_are_refused(keyed_client):
    for published, message in (("2024-02-30", "not a valid ISO 8601"), ("yesterday", "published"), (1700000000, "published")):
        response = keyed_client.post("/v1/predict", json={"text": ARTICLES[0], "published": published}, headers=KEY)
        assert response.status_code == 422 and message in response.json()["error"]["message"], response.text
    response = keyed_client.get("/v1/trends/documents", params={"party": "Japan"}, headers=KEY)
    assert response.status_code == 422 and "at" in response.json()["error"]["message"]


def test_predict_and_score_carry_the_date_to_their_output(tiny_model, tmp_path):
    from serving.app import load_model
    from serving.predict_files import predict_file
    from serving.score import plan_chunks, score_chunk

    lines = [
        {"id": 1, "text": ARTICLES[0], "published": "2024-05-01T10:00:00+02:00"},
        {"id": 2, "text": ARTICLES[1]},
        {"id": 3, "text": ARTICLES[2], "published": "2024-13-01"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    predict_file(source, tmp_path / "out.jsonl", str(tiny_model), backend="torch")
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written[0]["published"] == "2024-05-01T10:00:00+02:00" and "published" not in written[1]
    assert written[2]["error"]["code"] == "invalid_request"

    import pyarrow.parquet as pq

    (chunk,) = plan_chunks([str(source)], str(tmp_path / "scored"), 10)
    (tmp_path / "scored").mkdir()
    score_chunk(load_model(str(tiny_model), backend="torch"), chunk)
    rows = pq.read_table(chunk.output).to_pylist()
    assert rows[0]["published"] == datetime(2024, 5, 1, 8) and rows[0]["published_source"] == "given"
    assert rows[1]["published_source"] == "received" and rows[2]["error_code"] == "invalid_request"
    answer = json.loads(rows[0]["answer"])
    assert [(s["party"], s["issue"], s["stance"]) for s in rows[0]["stances"]] == [
        (r["party"], r["issue"], r["stance"]["label"]) for r in answer["results"]
    ]
    assert rows[0]["stances"][0]["cooperative"] == answer["results"][0]["stance"]["scores"]["cooperative"]
    trends = trends_of_scored([str(tmp_path / "scored")], "month", threads=1)
    assert {row["period"] for row in trends.rows} == {datetime(2024, 5, 1), period_start(rows[1]["published"], "month")}


# --- the Trends view in headless Chromium ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT = Path("/work/logs/trends.png")


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless Chromium not installed: `apt-get install chromium chromium-driver` to run the web page test",
)
def test_the_trends_view_draws_the_chart_and_lists_a_periods_documents(tiny_model, tmp_path):
    import httpx
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    url, server, thread = start_server(settings_for(tiny_model, database_url=f"sqlite:///{tmp_path / 'web.db'}"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            post_dated_articles(client)
        browser.get(url + "/trends")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda driver: driver.find_element(By.ID, "status").get_attribute("data-loading") == "0")
        assert browser.find_elements(By.CSS_SELECTOR, "#trend-svg g.period"), "the most active pair is drawn at once"
        assert browser.find_elements(By.CSS_SELECTOR, "#pairs li"), "the most active pairs are listed"
        browser.find_element(By.ID, "party").send_keys("Japan")
        browser.find_element(By.ID, "issue").send_keys("North Korea")
        browser.find_element(By.ID, "show").click()
        wait.until(lambda driver: driver.find_element(By.ID, "status").get_attribute("data-loading") == "0")
        assert browser.find_element(By.ID, "chart-title").text.startswith("Japan on North Korea")
        periods = browser.find_elements(By.CSS_SELECTOR, "#trend-svg g.period")
        assert len(periods) >= 2 and browser.find_elements(By.CSS_SELECTOR, "#trend-svg rect.share")
        assert browser.find_elements(By.CSS_SELECTOR, "#trend-svg rect.count")
        periods[0].find_element(By.CSS_SELECTOR, "rect.count").click()
        wait.until(until.presence_of_element_located((By.CSS_SELECTOR, "#documents li")))
        items = browser.find_elements(By.CSS_SELECTOR, "#documents li")
        assert items and all(item.find_elements(By.TAG_NAME, "q") for item in items), "each document shows its evidence"
        assert "2024-01" in browser.find_element(By.ID, "documents-status").text
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=10)


# --- the check on the bundled corpus's real dates ----------------------------------------------------------


def load_wire_check():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "wire_trends_check.py"
    spec = importlib.util.spec_from_file_location("wire_trends_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wire_check_compares_model_and_gold_trends_on_real_dates(tiny_model):
    check = load_wire_check()
    articles = check.read_articles(check.DEFAULT_FILES, limit=4)
    assert all(article["date"] and article["annotations"] for article in articles)
    gold, answered = check.gold_and_model_rows(articles, str(tiny_model), "torch", batch=2)
    assert len(gold) == len(answered) == sum(len(article["annotations"]) for article in articles)
    identical = check.compare(gold, gold)
    assert identical["mean_abs_share_difference"] == 0 and identical["label_agreement"] == 1
    result = check.compare(gold, answered)
    disagreeing = sum(a["stance"] != b["stance"] for a, b in zip(gold, answered, strict=True))
    assert (result["mean_abs_share_difference"] > 0) == (disagreeing > 0)
    assert 0 <= result["mean_abs_share_difference"] <= 2 / 3 and result["pairs"] == len({(r["party"], r["issue"]) for r in gold})
