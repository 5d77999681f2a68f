"""Calibrated scores: a softmax temperature per head, fitted on dev, and the error that measures it.

Analysts threshold on the served probabilities ("show me pressure above 0.8"), so a score of 0.8 should
be right about 80% of the time. Fine-tuned transformers are over-confident; one temperature per head,
chosen to minimise the negative log-likelihood of the dev answers (Guo et al., 2017, "On Calibration of
Modern Neural Networks"), fixes most of it without changing any argmax. The fit runs on whole answers,
after the predictor has weighted each pair's windows, because those are the scores users see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.items import items_from_articles
from training.labels import TASKS
from training.modeling import ModelMeta, split_probabilities
from training.predictor import Predictor

TEMPERATURE_GRID = tuple(round(0.5 + 0.05 * step, 2) for step in range(71))
"""Candidate temperatures, 0.5 to 4.0: a grid is exact enough for one number and cannot diverge."""
ECE_BINS = 15


def fit_temperatures(folder: Path, dev_articles: list[dict], pooling: str | None = None) -> dict[str, float]:
    """The temperature of each answer head that minimises the dev answers' negative log-likelihood, with
    the pair's windows pooled by `pooling` (default: the folder's own)."""
    predictor = Predictor.from_folder(folder, backend="torch", pooling=pooling)
    items = items_from_articles(dev_articles)
    plans = [predictor.plan(item.document) for item in items]
    inputs = [(m.target, m.window_text) for plan in plans for m in plan.model_inputs]
    logits = predictor.classifier.logits(inputs)
    fitted = {}
    for task in TASKS:
        losses = []
        for temperature in TEMPERATURE_GRID:
            probabilities = split_probabilities(logits, predictor.meta.heads, {task: temperature})
            answers = predictor.answer_plans(plans, probabilities)
            losses.append(_negative_log_likelihood(items, answers, task))
        fitted[task] = TEMPERATURE_GRID[int(np.argmin(losses))]
    return fitted


def recalibrate(folder: Path, dev_articles: list[dict], pooling: str) -> ModelMeta:
    """Switch a trained model folder to the window `pooling` and refit its temperatures under it: scores
    stay calibrated when the pooling changes. `stanceline.json` is rewritten whole, only once both are known."""
    meta = ModelMeta.load(folder)
    temperatures = fit_temperatures(folder, dev_articles, pooling)
    meta.window_pooling, meta.temperatures = pooling, temperatures
    meta.save(folder)
    return meta


def _negative_log_likelihood(items, answers: list[dict], task: str) -> float:
    total, count = 0.0, 0
    for item, answer in zip(items, answers, strict=True):
        for index, labels in item.gold.items():
            if labels.get(task) is not None:
                total -= np.log(max(answer["results"][index][task]["scores"][labels[task]], 1e-6))
                count += 1
    return total / max(count, 1)


def calibration_bins(confidences: list[float], correct: list[bool], bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Equal-width confidence bins with their mean confidence, accuracy and count (empty bins kept)."""
    confidence, hit = np.asarray(confidences, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    result = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high) if low > 0 else (confidence >= low) & (confidence <= high)
        count = int(inside.sum())
        result.append(
            {
                "low": round(float(low), 4),
                "high": round(float(high), 4),
                "count": count,
                "confidence": round(float(confidence[inside].mean()), 4) if count else None,
                "accuracy": round(float(hit[inside].mean()), 4) if count else None,
            }
        )
    return result


def expected_calibration_error(confidences: list[float], correct: list[bool], bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over equal-width bins."""
    total = len(confidences)
    if not total:
        return float("nan")
    gaps = [b["count"] * abs(b["confidence"] - b["accuracy"]) for b in calibration_bins(confidences, correct, bins) if b["count"]]
    return round(float(sum(gaps) / total), 4)


def write_reliability_png(bins: list[dict[str, Any]], title: str, path: Path) -> None:
    """Reliability diagram: accuracy against confidence per bin, beside the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    filled = [b for b in bins if b["count"]]
    figure, axis = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    axis.bar(
        [(b["low"] + b["high"]) / 2 for b in filled],
        [b["accuracy"] for b in filled],
        width=[b["high"] - b["low"] for b in filled],
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    axis.plot(
        [b["confidence"] for b in filled],
        [b["accuracy"] for b in filled],
        "o",
        color="darkred",
        markersize=3,
        label="mean confidence",
    )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (top score)")
    axis.set_ylabel("accuracy")
    axis.set_title(title)
    axis.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
