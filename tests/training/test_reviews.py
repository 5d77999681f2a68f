"""Reviews back into training: export to corpus splits, train on them, evaluate on reviews:test."""

from __future__ import annotations

import json

from serving.store import Store
from stanceline.cli import main
from tests.conftest import tiny_train_config
from tests.fixtures.tiny_articles import TINY_ARTICLES
from training.authoring import to_corpus_article
from training.config import TrainConfig
from training.data import validate_file
from training.reviews import assign_splits, export_reviews

MODEL = {"name": "tiny", "version": "1"}


def review_tiny_articles(store: Store, articles: list[dict], reviewer: str = "analyst-1") -> int:
    """Store each article as a served answer and review every annotated pair as its gold says."""
    reviews = 0
    for article in articles:
        document_id = store.store_answer(article["text"], "tiny", MODEL, {"model": MODEL, "results": []})
        for annotation in article["annotations"]:
            keys = ("party", "issue", "stance", "sentiment", "evidence")
            store.add_review({"document_id": document_id, "reviewer": reviewer, **{k: annotation[k] for k in keys}})
            reviews += 1
    return reviews


def corpus_articles() -> list[dict]:
    return [to_corpus_article(article) for article in TINY_ARTICLES]


def test_splits_fill_held_out_first_and_a_document_keeps_its_split():
    documents = [{"id": i, "sha256": f"{i:064x}", "split": None} for i in range(20)]
    first = assign_splits(documents[:5])
    assert sorted(first.values()) == ["dev", "test", "train", "train", "train"]
    assert assign_splits(documents[:5]) == first, "deterministic"
    for document in documents[:5]:
        document["split"] = first[document["id"]]
    later = assign_splits(documents)
    assert set(later) == {d["id"] for d in documents[5:]}, "documents already split are not moved"
    counts = {name: list({**first, **later}.values()).count(name) for name in ("train", "dev", "test")}
    assert counts == {"train": 14, "dev": 3, "test": 3}


def test_export_writes_valid_splits_by_document_with_the_newest_review_of_each_pair(database_url, tmp_path):
    store = Store(database_url)
    try:
        articles = corpus_articles()
        pairs = review_tiny_articles(store, articles)
        first = articles[0]["annotations"][0]
        changed = {**{k: first[k] for k in ("party", "issue", "evidence")}, "stance": "neutral", "sentiment": "neutral"}
        store.add_review({"document_id": 1, "reviewer": "analyst-2", **changed})
        summary = export_reviews(store, tmp_path / "reviews")
        export_reviews(store, tmp_path / "again")
    finally:
        store.close()
    assert summary["superseded"] == 1
    assert sum(summary[split]["pairs"] for split in ("train", "dev", "test")) == pairs
    assert {split: summary[split]["articles"] for split in ("train", "dev", "test")} == {"train": 7, "dev": 1, "test": 2}
    exported = {}
    for split in ("train", "dev", "test"):
        path = tmp_path / "reviews" / f"{split}.jsonl"
        assert validate_file(path)[1] == []
        assert path.read_text() == (tmp_path / "again" / f"{split}.jsonl").read_text(), "the export repeats exactly"
        exported[split] = [json.loads(line) for line in path.read_text().splitlines()]
    texts = [{a["text"] for a in exported[split]} for split in exported]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2]), "a document is in one split only"
    by_text = {a["text"]: a for split in exported.values() for a in split}
    newest = next(
        a for a in by_text[articles[0]["text"]]["annotations"] if a["party"] == first["party"] and a["issue"] == first["issue"]
    )
    assert (newest["stance"], newest["reviewer"]) == ("neutral", "analyst-2")
    assert main(["validate", *(str(tmp_path / "reviews" / f"{s}.jsonl") for s in ("train", "dev", "test"))]) == 0


def test_train_files_plus_adds_the_reviews_to_the_default_recipe():
    config = TrainConfig.from_file(None, ["train_files+=data/reviews/train.jsonl"])
    assert config.train_files == [*TrainConfig().train_files, "data/reviews/train.jsonl"]


def test_a_model_trains_on_exported_reviews_and_is_scored_on_reviews_test(tiny_base_model, tiny_corpus, tmp_path, capsys):
    from training.trainer import train

    database_url = f"sqlite:///{tmp_path / 'reviews.db'}"
    store = Store(database_url)
    try:
        review_tiny_articles(store, corpus_articles())
        export_reviews(store, tmp_path / "reviews")
    finally:
        store.close()
    reviews_train = str(tmp_path / "reviews" / "train.jsonl")
    config = tiny_train_config(
        tiny_base_model, tiny_corpus, tmp_path / "models", "with-reviews", train_files=[str(tiny_corpus), reviews_train], epochs=4
    )
    folder = train(config)
    data = json.loads((folder / "data.json").read_text())
    assert data["files"][reviews_train]["pairs"] > 0, "the model card records the reviews it learned from"

    output = tmp_path / "eval"
    argv = ["evaluate", "--model", str(folder), "--data", "reviews:test", "--database-url", database_url]
    assert main([*argv, "--output", str(output), "--bootstrap", "20"]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["data"]["articles"] == 2 and metrics["data"]["source"] == "reviews:test"
    (week,) = metrics["over_time"]
    assert week["pairs"] == metrics["data"]["pairs"] and 0 <= week["stance_model"] <= 1
    report = (output / "report.md").read_text()
    assert "Agreement with reviewers by week of review" in report and week["period"] in report
    assert "stance: macro-F1" in capsys.readouterr().out


def test_evaluating_on_reviews_without_any_names_the_problem(tiny_model, tmp_path, capsys):
    database_url = f"sqlite:///{tmp_path / 'empty.db'}"
    argv = ["evaluate", "--model", str(tiny_model), "--data", "reviews:test", "--database-url", database_url]
    assert main([*argv, "--output", str(tmp_path / "eval")]) == 2
    assert "no reviewed documents in the test split" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_model), "--data", "reviews:holdout", "--output", str(tmp_path / "e")]) == 2
    assert "splits train, dev, test" in capsys.readouterr().err
