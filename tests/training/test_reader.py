"""How a pair's windows become its answer: the window budget, the evidence-weighted reader and the
reading-order reader, on the predictor's own assembly code."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from training.catalog import Catalog
from training.modeling import ModelMeta
from training.predictor import (
    MAX_PAIR_WINDOWS_PER_DOCUMENT,
    Document,
    DocumentPlan,
    PairPlan,
    PairRequest,
    Predictor,
    share_windows,
)
from training.windows import ModelInput

TEXT = "Tokyo praised the joint drills. Tokyo later demanded maximum pressure on Pyongyang."


def predictor_for(reader: str | None, evidence_head: bool = True, pooling: str = "geometric") -> Predictor:
    meta = ModelMeta(
        name="m", base_model="b", max_length=64, window_chars=200, evidence_labels=["other", "evidence"] if evidence_head else []
    )
    return Predictor(SimpleNamespace(meta=meta), Catalog.load(), reader, pooling)


def two_window_plan() -> DocumentPlan:
    windows = [((0, 31), (0, 31)), ((32, len(TEXT)), (32, len(TEXT)))]
    inputs = [ModelInput("Japan on North Korea", TEXT[s:e], (s, e), anchor) for (s, e), anchor in windows]
    return DocumentPlan(
        TEXT, [ModelInput("overall", TEXT, (0, len(TEXT)), (0, len(TEXT)))], [PairPlan("Japan", "North Korea", True, inputs)]
    )


PROBABILITIES = {
    # rows: overall, window 1 (cooperative, not evidence), window 2 (pressure, evidence)
    "stance": np.array([[0.4, 0.4, 0.2], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1]]),
    "sentiment": np.array([[0.2, 0.6, 0.2], [0.6, 0.3, 0.1], [0.1, 0.6, 0.3]]),
    "evidence": np.array([[0.5, 0.5], [0.9, 0.1], [0.1, 0.9]]),
}


@pytest.mark.parametrize(("pooling", "weights"), [("mean", [0.9, 0.1]), ("geometric", [0.9986, 0.0014])])
def test_the_ranked_reader_follows_the_window_that_shows_the_stance(pooling, weights):
    (result,) = predictor_for("ranked", pooling=pooling).assemble(two_window_plan(), PROBABILITIES)["results"]
    assert result["stance"]["label"] == "pressure"
    assert [round(e["weight"], 4) for e in result["evidence"]] == weights  # heaviest first
    assert result["evidence"][0]["start"] == 32
    assert sum(result["stance"]["scores"].values()) == pytest.approx(1.0, abs=1e-3)


def test_the_reading_order_reader_averages_its_windows():
    (result,) = predictor_for("first").assemble(two_window_plan(), PROBABILITIES)["results"]
    assert result["stance"]["label"] == "cooperative"  # (0.9 + 0.2) / 2 against (0.05 + 0.7) / 2
    assert [e["weight"] for e in result["evidence"]] == [0.5, 0.5]


def test_windows_that_only_mention_the_party_do_not_outvote_the_one_that_shows_its_stance():
    """One window shows pressure; two more only mention the party. The arithmetic mean lets the two
    outvote it (neutral); the geometric pooling of evidence-sharpened weights keeps the stance shown."""
    inputs = [ModelInput("Japan on North Korea", TEXT, (0, len(TEXT)), (i, i + 1)) for i in range(3)]
    plan = DocumentPlan(TEXT, [], [PairPlan("Japan", "North Korea", True, inputs)])
    probabilities = {
        "stance": np.array([[0.05, 0.85, 0.10], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]),
        "sentiment": np.full((3, 3), 1 / 3),
        "evidence": np.array([[0.2, 0.8], [0.4, 0.6], [0.4, 0.6]]),
    }
    answers = {
        pooling: predictor_for("ranked", pooling=pooling).assemble(plan, probabilities)["results"][0]
        for pooling in ("mean", "geometric")
    }
    assert answers["mean"]["stance"]["label"] == "neutral"
    assert answers["geometric"]["stance"]["label"] == "pressure"
    assert sum(answers["geometric"]["stance"]["scores"].values()) == pytest.approx(1.0, abs=1e-3)


def test_an_unknown_pooling_is_refused_by_name():
    with pytest.raises(ValueError, match="window pooling must be one of geometric, mean"):
        predictor_for("ranked", pooling="median")


def test_a_model_without_the_evidence_head_reads_in_order_and_cannot_be_ranked():
    assert predictor_for(None, evidence_head=False).reader == "first"
    assert predictor_for(None).reader == "ranked"
    with pytest.raises(ValueError, match="no evidence head"):
        predictor_for("ranked", evidence_head=False)


def test_window_budget_is_shared_round_robin_and_never_leaves_a_pair_unread():
    assert share_windows([5, 1, 3], budget=6, per_pair=4) == [3, 1, 2]
    assert share_windows([2, 2, 2], budget=1, per_pair=4) == [1, 1, 1]
    assert share_windows([9], budget=40, per_pair=4) == [4]
    assert share_windows([0, 3], budget=40, per_pair=4) == [0, 3]


def test_many_pairs_that_never_occur_cost_one_window_each(tiny_model):
    predictor = Predictor.from_folder(tiny_model)
    text = " ".join(f"Paragraph {i} reports the weather and the harvest in a distant valley." for i in range(150))
    pairs = [PairRequest(f"Nowhereland {i}", "trade") for i in range(64)]
    plan = predictor.plan(Document(text, pairs))
    assert all(len(pair.inputs) == 1 for pair in plan.pairs)
    few = predictor.plan(Document(text, pairs[:3]))
    assert sum(len(pair.inputs) for pair in few.pairs) <= MAX_PAIR_WINDOWS_PER_DOCUMENT


def test_the_oracle_reader_reads_only_the_pinned_evidence(tiny_model):
    predictor = Predictor.from_folder(tiny_model, reader="oracle")
    start = TEXT.index("Tokyo later")
    plan = predictor.plan(Document(" ".join([TEXT] * 3), [PairRequest("Japan", "North Korea", evidence=[(start, len(TEXT))])]))
    assert [m.anchor for m in plan.pairs[0].inputs] == [(start, len(TEXT))]


@pytest.mark.parametrize("issue_markers", [True, False])
def test_issues_are_marked_only_for_a_model_trained_with_issue_markers(issue_markers):
    meta = ModelMeta(name="m", base_model="b", max_length=64, window_chars=200, issue_markers=issue_markers)
    classifier = SimpleNamespace(meta=meta, tokenizer=SimpleNamespace(tokenize=str.split))
    plan = Predictor(classifier, Catalog.load()).plan(Document(TEXT, [PairRequest("Japan", "North Korea")]))
    read = " ".join(m.window_text for m in plan.model_inputs)
    assert "[Tokyo]" in read
    assert ("{Pyongyang}" in read) is issue_markers
    assert not plan.overall, "given pairs are answered without `overall` unless it is asked for"
