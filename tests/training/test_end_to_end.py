"""Train a tiny model on ten articles, save, reload from its folder alone, and evaluate it."""

import json

import pytest

from stanceline.cli import main
from training.config import TrainConfig
from training.data import InvalidCorpusError, load_articles
from training.evaluate import evaluate_articles
from training.predictor import Document, PairRequest, Predictor
from training.trainer import train


def test_the_model_folder_holds_everything_needed_to_predict(tiny_model):
    names = {path.name for path in tiny_model.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "stanceline.json",
        "training_config.json",
        "data.json",
        "metrics.json",
        "README.md",
        "catalog",
    } <= names
    data = json.loads((tiny_model / "data.json").read_text())
    assert all(len(info["sha256"]) == 64 for info in data["files"].values())
    assert (tiny_model.parent / "current").resolve() == tiny_model.resolve()
    assert not list(tiny_model.parent.glob(".tmp-*")), "the temporary folder was renamed into place"
    card = (tiny_model / "README.md").read_text()
    assert "dev stance: macro-F1" in card
    assert "Input: `[CLS] target [SEP] window [SEP]`" in card, "the card shows the input as this tokenizer builds it"


def test_the_reloaded_model_learned_the_training_articles(tiny_model, tiny_corpus):
    predictor = Predictor.from_folder(tiny_model)
    metrics = evaluate_articles(predictor, load_articles(tiny_corpus), bootstrap=50)
    assert metrics["data"] == {"articles": 10, "pairs": 30}
    assert metrics["stance"]["accuracy"] >= 0.9, metrics["stance"]
    assert metrics["sentiment"]["accuracy"] >= 0.9, metrics["sentiment"]


def test_opposite_stances_in_one_article_are_told_apart(tiny_model):
    predictor = Predictor.from_folder(tiny_model)
    text = "Japan demanded that North Korea halt its missile launches. Russia offered to host talks on the missile issue."
    (answer,) = predictor.predict(
        [Document(text, [PairRequest("Japan", "missile launches"), PairRequest("Russia", "missile launches")])]
    )
    assert [r["stance"]["label"] for r in answer["results"]] == ["pressure", "cooperative"]
    assert answer["results"][0]["evidence"][0]["text"].startswith("Japan demanded")


def test_evaluate_command_writes_metrics_report_and_plots(tiny_model, tiny_corpus, tmp_path):
    output = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tiny_model),
                "--data",
                str(tiny_corpus),
                "--train",
                str(tiny_corpus),
                "--output",
                str(output),
                "--bootstrap",
                "50",
            ]
        )
        == 0
    )
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["data"]["articles"] == 10 and metrics["data"]["pairs"] == 30
    for task in ("stance", "sentiment"):
        assert {"macro_f1", "accuracy", "per_class", "confusion", "macro_f1_ci95"} <= set(metrics[task])
        low, high = metrics[task]["macro_f1_ci95"]
        assert low <= metrics[task]["macro_f1"] <= high
        assert sum(map(sum, metrics[task]["confusion"]["matrix"])) == 30
        assert "macro_f1" in metrics["baselines"]["tfidf_logreg"][task]
        assert (output / f"confusion_{task}.png").stat().st_size > 1000
    assert metrics["baselines"]["majority"]["stance"]["accuracy"] == pytest.approx(1 / 3, abs=0.01)
    assert "| stance | stanceline |" in (output / "report.md").read_text()
    assert metrics["evidence"]["pairs"] == 30 and metrics["evidence"]["rate"] >= 0.9, metrics["evidence"]
    rows = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    articles = {article["id"]: article for article in load_articles(tiny_corpus)}
    for row in rows:
        gold = articles[row["document"]]["annotations"][row["target"]]
        assert (row["party"], row["stance"]["gold"], row["sentiment"]["gold"]) == (
            gold["party"],
            gold["stance"],
            gold["sentiment"],
        )
        assert row["stance"]["predicted"] in ("cooperative", "pressure", "neutral")
        assert all(isinstance(offset, int) for span in row["evidence"] for offset in span), "offsets, never text"


def test_training_refuses_invalid_data_and_writes_no_model(tmp_path, tiny_base_model):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "t", "annotations": [{"party": "A", "issue": "b", "stance": "angry"}]}\n')
    config = TrainConfig(
        base_model=str(tiny_base_model),
        train_files=[str(bad)],
        dev_file="",
        public_corpora=[],
        output_dir=str(tmp_path / "models"),
        run_name="never",
        frozen_layers=0,
    )
    with pytest.raises(InvalidCorpusError, match="unknown label 'angry'"):
        train(config)
    assert not (tmp_path / "models" / "never").exists()


def test_public_corpora_bring_fresh_rows_each_pass_and_held_out_figures(tmp_path, tiny_base_model, tiny_corpus):
    from tests.training.test_public import write_upstream

    data_dir = write_upstream(tmp_path / "data")
    config = TrainConfig(
        base_model=str(tiny_base_model),
        train_files=[str(tiny_corpus)],
        dev_file=str(tiny_corpus),
        public_corpora=["newsmtsc", "un-quadclass"],
        data_dir=str(data_dir),
        max_examples_per_corpus=2,
        epochs=2,
        output_dir=str(tmp_path / "models"),
        run_name="mixed",
        frozen_layers=0,
        max_length=64,
        export_onnx=False,
    )
    folder = train(config)
    record = json.loads((folder / "data.json").read_text())
    newsmtsc = record["public_corpora"]["newsmtsc"]
    # three rows, two a pass, two passes: all three rows seen before any repeats
    assert (newsmtsc["rows"], newsmtsc["rows_used"], newsmtsc["examples"]) == (3, 3, 4)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["newsmtsc:dev"]["data"]["pairs"] == 3 and "sentiment" in metrics["newsmtsc:dev"]
    assert "newsmtsc:dev sentiment: macro-F1" in (folder / "README.md").read_text()


def test_stance_only_files_give_no_sentiment_labels(tiny_base_model, tiny_corpus, tmp_path):
    from tests.conftest import tiny_train_config

    config = tiny_train_config(
        tiny_base_model, tiny_corpus, tmp_path, "stance-only", epochs=1, stance_only_files=[str(tiny_corpus)], evaluate_dev=False
    )
    counts = json.loads((train(config) / "data.json").read_text())["label_counts"]
    assert counts["sentiment"] == {} and sum(counts["stance"].values()) >= 30, "every pair keeps its stance"
