"""Scores by role and over counterfactual minimal pairs, from prediction rows."""

from __future__ import annotations

from training.evaluate import minimal_pair_metrics, role_metrics


def row(document: str, gold: str, predicted: str, role: str | None = None) -> dict:
    result = {"document": document, "stance": {"gold": gold, "predicted": predicted}}
    return {**result, "role": role} if role else result


def test_role_metrics_score_agents_on_cooperation_against_pressure_and_count_neutral_acted_upon():
    rows = [
        row("1", "pressure", "pressure", "agent"),
        row("2", "cooperative", "neutral", "agent"),  # a neutral answer to an agent is wrong
        row("3", "neutral", "neutral", "acted-upon"),
        row("4", "neutral", "pressure", "acted-upon"),
        row("5", "neutral", "neutral"),  # no role: not counted
    ]
    metrics = role_metrics(rows)
    assert metrics["agent"]["pairs"] == 2 and metrics["agent"]["answered_neutral"] == 0.5
    assert metrics["agent"]["cooperative_vs_pressure_macro_f1"] == 0.5  # pressure F1 1.0, cooperative F1 0.0
    assert metrics["acted_upon"] == {"pairs": 2, "answered_neutral": 0.5}
    assert role_metrics([row("5", "neutral", "neutral")]) is None


def test_a_minimal_pair_counts_only_when_every_stance_on_both_sides_is_right():
    rows = [
        row("cf-1a", "pressure", "pressure"),
        row("cf-1b", "cooperative", "cooperative"),
        row("cf-2a", "pressure", "pressure"),
        row("cf-2b", "cooperative", "pressure"),
        row("cf-2b", "neutral", "neutral"),
        row("cf-3a", "pressure", "pressure"),  # its other side is missing: not a pair
    ]
    assert minimal_pair_metrics(rows) == {"groups": 2, "both_sides_right": 0.5}
    assert minimal_pair_metrics([row("w1-001", "pressure", "pressure")]) is None
