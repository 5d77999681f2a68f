"""The review store on real databases: SQLite always, PostgreSQL when one is reachable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from serving.store import Store, StoreError, current_revision, migrate

TEXT = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
MODEL = {"name": "tiny", "version": "1"}
ANSWER = {
    "model": MODEL,
    "results": [
        {"party": "Russia", "issue": "missile launches", "stance": {"label": "neutral"}, "sentiment": {"label": "neutral"}}
    ],
}


def correction(document_id: int, **changes) -> dict:
    review = {
        "document_id": document_id,
        "party": "Russia",
        "issue": "missile launches",
        "stance": "cooperative",
        "sentiment": "positive",
        "evidence": [[59, 87]],
        "reviewer": "analyst-1",
        "note": "",
    }
    return {**review, **changes}


@pytest.fixture
def store(database_url):
    opened = Store(database_url)
    yield opened
    opened.close()


def test_migrations_create_and_drop_the_schema_both_ways(database_url):
    store = Store(database_url, upgrade=False)
    try:
        assert current_revision(store.engine) is None
        migrate(store.engine)
        assert current_revision(store.engine) == "0003"
        migrate(store.engine, "0001", down=True)
        assert current_revision(store.engine) == "0001" and "evidence_source" not in {
            column["name"] for column in inspect(store.engine).get_columns("reviews")
        }
        migrate(store.engine)
        assert {"documents", "predictions", "reviews"} <= set(inspect(store.engine).get_table_names())
        migrate(store.engine, "base", down=True)
        assert current_revision(store.engine) is None
        assert not {"documents", "predictions", "reviews"} & set(inspect(store.engine).get_table_names())
        migrate(store.engine)
        assert store.store_answer(TEXT, None, MODEL, ANSWER) == 1
    finally:
        store.close()


def test_a_text_is_stored_once_and_each_answer_on_it_is_kept(store):
    first = store.store_answer(TEXT, "wire", MODEL, ANSWER)
    again = store.store_answer(TEXT, "wire", {"name": "tiny", "version": "2"}, ANSWER)
    other = store.store_answer(TEXT + " Later text.", None, MODEL, ANSWER)
    assert first == again != other
    document = store.document(first)
    assert document["text"] == TEXT and document["source"] == "wire" and len(document["sha256"]) == 64


def test_the_same_correction_twice_is_stored_once_and_a_changed_one_again(store):
    document_id = store.store_answer(TEXT, None, MODEL, ANSWER)
    first, created = store.add_review(correction(document_id))
    repeat, created_again = store.add_review(correction(document_id))
    changed, created_changed = store.add_review(correction(document_id, stance="pressure"))
    assert created and not created_again and created_changed
    assert repeat["id"] == first["id"] != changed["id"]
    assert store.count_reviews() == 2
    # The answer being corrected is kept beside the correction.
    assert first["model"] == MODEL and first["predicted"] == {"stance": "neutral", "sentiment": "neutral"}


def test_corrections_of_unknown_documents_or_outside_the_text_are_refused(store):
    document_id = store.store_answer(TEXT, None, MODEL, ANSWER)
    with pytest.raises(StoreError, match="not stored") as missing:
        store.add_review(correction(document_id + 1))
    assert missing.value.code == "not_found"
    with pytest.raises(StoreError, match="outside the document"):
        store.add_review(correction(document_id, evidence=[[100, len(TEXT) + 1]]))
    with pytest.raises(StoreError, match="whitespace"):
        store.add_review(correction(document_id, evidence=[[58, 59]]))
    assert store.count_reviews() == 0


def test_reviews_are_filtered_and_paged_in_the_order_they_were_stored(store):
    document_id = store.store_answer(TEXT, None, MODEL, ANSWER)
    for index in range(5):
        store.add_review(correction(document_id, note=f"note {index}", stance="pressure" if index % 2 else "cooperative"))
    assert [r["note"] for r in store.reviews(limit=2)] == ["note 0", "note 1"]
    second_page = store.reviews(after=store.reviews(limit=2)[-1]["id"], limit=2)
    assert [r["note"] for r in second_page] == ["note 2", "note 3"]
    assert [r["note"] for r in store.reviews(stance="pressure")] == ["note 1", "note 3"]
    assert len(store.reviews(model="tiny")) == 5 and store.reviews(model="other") == []
    assert store.reviews(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert len(store.reviews(since=datetime.now(UTC) - timedelta(hours=1))) == 5


def test_concurrent_writers_each_store_their_correction_exactly_once(store):
    """Forty threads post twenty distinct corrections, each twice, at once: twenty rows, no error."""
    document_id = store.store_answer(TEXT, None, MODEL, ANSWER)
    corrections = [correction(document_id, note=f"n{index % 20}") for index in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(store.add_review, corrections))
    assert sum(created for _, created in outcomes) == 20
    assert store.count_reviews() == 20
    assert len({review["id"] for review, _ in outcomes}) == 20
