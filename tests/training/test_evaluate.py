"""Scoring helpers of `training.evaluate` on hand-made answers: no model needed."""

from training.evaluate import evidence_hit_rate, prediction_rows, score_answers
from training.items import OVERALL, EvalItem
from training.predictor import Document, PairRequest

TEXT = "Japan demanded sanctions. Russia offered talks. Markets were calm."


def _score(label: str, labels: tuple[str, ...]) -> dict:
    return {"label": label, "scores": {name: float(name == label) for name in labels}}


def _answer(stance: str, evidence: list[tuple[int, int]]) -> dict:
    stances, sentiments = ("cooperative", "pressure", "neutral"), ("positive", "neutral", "negative")
    result = {
        "stance": _score(stance, stances),
        "sentiment": _score("neutral", sentiments),
        "evidence": [{"start": s, "end": e} for s, e in evidence],
    }
    return {"overall": {"stance": _score("neutral", stances), "sentiment": _score("neutral", sentiments)}, "results": [result]}


def _item(stance: str, gold_evidence: list[tuple[int, int]]) -> EvalItem:
    return EvalItem(
        Document(TEXT, [PairRequest("Japan", "sanctions")]),
        {0: {"stance": stance, "sentiment": "neutral"}},
        id="a1",
        gold_evidence={0: gold_evidence},
    )


def test_evidence_counts_as_hit_only_when_a_cited_sentence_overlaps_the_gold_span():
    items = [_item("pressure", [(0, 25)]), _item("pressure", [(0, 25)]), _item("pressure", [])]
    answers = [_answer("pressure", [(0, 25)]), _answer("pressure", [(26, 47)]), _answer("pressure", [(0, 25)])]
    assert evidence_hit_rate(prediction_rows(items, answers)) == {"pairs": 2, "rate": 0.5, "top_rate": 0.5}, (
        "pairs without gold evidence are not counted"
    )
    overall_only = EvalItem(Document(TEXT, []), {OVERALL: {"stance": "neutral"}})
    assert evidence_hit_rate(prediction_rows([overall_only], [_answer("neutral", [])])) is None
    assert score_answers(items, answers, bootstrap=0)["evidence"] == {"pairs": 2, "rate": 0.5, "top_rate": 0.5}


def test_prediction_rows_pair_gold_with_predicted_labels_and_keep_offsets_not_text():
    (row,) = prediction_rows([_item("cooperative", [(0, 25)])], [_answer("pressure", [(0, 25)])])
    assert row["document"] == "a1" and row["target"] == 0 and row["party"] == "Japan"
    assert row["stance"]["gold"] == "cooperative" and row["stance"]["predicted"] == "pressure"
    assert row["evidence"] == [[0, 25]] and row["gold_evidence"] == [[0, 25]] and row["evidence_hit"] is True
    assert TEXT not in str(row) and "Japan demanded" not in str(row)


def test_overall_targets_are_rows_without_party_or_evidence():
    item = EvalItem(Document(TEXT, []), {OVERALL: {"stance": "pressure"}})
    (row,) = prediction_rows([item], [_answer("neutral", [])])
    assert row["target"] == "overall" and row["party"] is None and "evidence" not in row
    assert row["stance"] == {"gold": "pressure", "predicted": "neutral", "scores": row["stance"]["scores"]}
    assert score_answers([item], [_answer("neutral", [])], bootstrap=0)["stance"]["accuracy"] == 0.0


def test_baseline_answers_without_scores_or_evidence_are_scored_without_an_evidence_rate():
    constant = {"stance": {"label": "pressure"}, "sentiment": {"label": "neutral"}}
    metrics = score_answers([_item("pressure", [(0, 25)])], [{"overall": constant, "results": [constant]}], bootstrap=0)
    assert metrics["stance"]["accuracy"] == 1.0 and metrics["data"] == {"articles": 1, "pairs": 1}
    assert "evidence" not in metrics
