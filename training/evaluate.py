"""Article-level evaluation through the same predictor that serves users.

A gold (party, issue) pair is sent to the predictor exactly as a user would send it (the article text,
the pair, the article's aliases); the predictor finds the mentions, builds the windows and aggregates.
Scores: macro-F1 with a bootstrap 95% interval, accuracy, per-class precision/recall/F1 and the
confusion matrix, for stance and sentiment; beside them a majority baseline and a TF-IDF + logistic
regression baseline trained on the same train split and reading the same windows. Where the gold data
has evidence offsets, the share of pairs whose cited evidence sentences overlap the gold evidence shows
how often the answer points at the right place. `predictions.jsonl` keeps every scored target (labels
and character offsets, never text) for error analysis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.calibration import calibration_bins, expected_calibration_error, write_reliability_png
from training.items import OVERALL, EvalItem, items_from_articles
from training.labels import TASKS
from training.predictor import Predictor
from training.text import Span


def evidence_hit(evidence: list[dict], gold_spans: list[Span]) -> bool:
    """Whether any of the cited `evidence` sentences overlaps any gold evidence span."""
    return any(e["start"] < end and e["end"] > start for e in evidence for start, end in gold_spans)


def evidence_hit_rate(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Over the pairs with gold evidence (see `prediction_rows`): the share whose cited sentences overlap
    it (`rate`) and the share whose most heavily weighted sentence does (`top_rate`); None when no pair
    has gold evidence."""
    hits = [row for row in rows if "evidence_hit" in row]
    if not hits:
        return None
    return {
        "pairs": len(hits),
        "rate": round(sum(row["evidence_hit"] for row in hits) / len(hits), 4),
        "top_rate": round(sum(row["evidence_top_hit"] for row in hits) / len(hits), 4),
    }


def role_metrics(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Where the gold data marks roles: cooperative-vs-pressure macro-F1 of the agents whose gold stance
    is one of those two (a `neutral` answer counts as wrong), and the share of acted-upon parties
    answered `neutral`. None when no row has a role."""
    agents = [row["stance"] for row in rows if row.get("role") == "agent" and row.get("stance", {}).get("gold") != "neutral"]
    acted_upon = [row["stance"] for row in rows if row.get("role") == "acted-upon" and "stance" in row]
    if not agents and not acted_upon:
        return None
    result: dict[str, Any] = {}
    if agents:
        gold, predicted = [a["gold"] for a in agents], [a["predicted"] for a in agents]
        result["agent"] = {
            "pairs": len(agents),
            "cooperative_vs_pressure_macro_f1": round(_two_class_f1(gold, predicted), 4),
            "answered_neutral": round(sum(p == "neutral" for p in predicted) / len(agents), 4),
        }
    if acted_upon:
        result["acted_upon"] = {
            "pairs": len(acted_upon),
            "answered_neutral": round(sum(a["predicted"] == "neutral" for a in acted_upon) / len(acted_upon), 4),
        }
    return result


def _two_class_f1(gold: list[str], predicted: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, predicted, labels=["cooperative", "pressure"], average="macro", zero_division=0))


def minimal_pair_metrics(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For counterfactual minimal pairs (documents `<group>a` and `<group>b`): the share of groups where
    every stance on both sides is right. None when the rows hold no such pair."""
    sides: dict[str, dict[str, list[bool]]] = {}
    for row in rows:
        document = str(row["document"])
        if "stance" in row and document[-1:] in ("a", "b"):
            sides.setdefault(document[:-1], {}).setdefault(document[-1], []).append(
                row["stance"]["gold"] == row["stance"]["predicted"]
            )
    groups = [group for group in sides.values() if set(group) == {"a", "b"}]
    if not groups:
        return None
    both = sum(all(group["a"]) and all(group["b"]) for group in groups)
    return {"groups": len(groups), "both_sides_right": round(both / len(groups), 4)}


def prediction_rows(items: list[EvalItem], answers: list[dict]) -> list[dict[str, Any]]:
    """One row per scored target: who, gold and predicted labels (with scores where the answer has
    them), and evidence offsets. Scoring and `predictions.jsonl` both read these rows."""
    rows = []
    for number, (item, answer) in enumerate(zip(items, answers, strict=True)):
        for index, labels in item.gold.items():
            result = answer["overall"] if index == OVERALL else answer["results"][index]
            request = None if index == OVERALL else item.document.pairs[index]
            row: dict[str, Any] = {
                "document": item.id or number,
                "target": "overall" if request is None else index,
                "party": request.party if request else None,
                "issue": request.issue if request else None,
            }
            for task, label in labels.items():
                if label is not None:
                    row[task] = {"gold": label, "predicted": result[task]["label"], "scores": result[task].get("scores")}
            if index in item.roles:
                row["role"] = item.roles[index]
            if request is not None and "evidence" in result:
                row["evidence"] = [[e["start"], e["end"]] for e in result["evidence"]]
                if all("weight" in e for e in result["evidence"]):
                    row["evidence_weights"] = [e["weight"] for e in result["evidence"]]
                spans = item.gold_evidence.get(index)
                if spans:
                    row["gold_evidence"] = [list(span) for span in spans]
                    row["evidence_hit"] = evidence_hit(result["evidence"], spans)
                    row["evidence_top_hit"] = evidence_hit(result["evidence"][:1], spans)
            rows.append(row)
    return rows


def macro_f1(gold: list[str], predicted: list[str], labels: tuple[str, ...]) -> float:
    from sklearn.metrics import f1_score

    present = [label for label in labels if label in gold or label in predicted]
    return float(f1_score(gold, predicted, labels=present, average="macro", zero_division=0))


def bootstrap_interval(gold: list[str], predicted: list[str], labels: tuple[str, ...], rounds: int, seed: int = 7) -> list[float]:
    """95% percentile interval of macro-F1 over `rounds` resamples of the scored items."""
    if not gold or rounds <= 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    gold_array, predicted_array = np.array(gold), np.array(predicted)
    scores = []
    for _ in range(rounds):
        sample = rng.integers(0, len(gold), len(gold))
        scores.append(macro_f1(list(gold_array[sample]), list(predicted_array[sample]), labels))
    return [round(float(np.percentile(scores, 2.5)), 4), round(float(np.percentile(scores, 97.5)), 4)]


def task_metrics(gold: list[str], predicted: list[str], labels: tuple[str, ...], bootstrap: int) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=list(labels), zero_division=0)
    return {
        "macro_f1": round(macro_f1(gold, predicted, labels), 4),
        "macro_f1_ci95": bootstrap_interval(gold, predicted, labels, bootstrap),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "count": len(gold),
        "per_class": {
            label: {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        },
        "confusion": {"labels": list(labels), "matrix": confusion_matrix(gold, predicted, labels=list(labels)).tolist()},
    }


def score_rows(rows: list[dict[str, Any]], articles: int, bootstrap: int) -> dict[str, Any]:
    """Metrics of every task that has gold labels among `rows` (see `prediction_rows`)."""
    result: dict[str, Any] = {"data": {"articles": articles, "pairs": len(rows)}}
    for task in TASKS:
        scored = [row[task] for row in rows if task in row]
        if scored:
            gold, predicted = [s["gold"] for s in scored], [s["predicted"] for s in scored]
            result[task] = task_metrics(gold, predicted, TASKS[task], bootstrap)
            if all(s.get("scores") for s in scored):
                confidences = [max(s["scores"].values()) for s in scored]
                correct = [s["gold"] == s["predicted"] for s in scored]
                result[task]["ece"] = expected_calibration_error(confidences, correct)
                result[task]["reliability"] = calibration_bins(confidences, correct)
    for name, value in (
        ("evidence", evidence_hit_rate(rows)),
        ("roles", role_metrics(rows)),
        ("minimal_pairs", minimal_pair_metrics(rows)),
    ):
        if value is not None:
            result[name] = value
    return result


def score_answers(items: list[EvalItem], answers: list[dict], bootstrap: int) -> dict[str, Any]:
    """Metrics of answers in the predictor's shape (the model's, or a baseline's without scores)."""
    return score_rows(prediction_rows(items, answers), len(items), bootstrap)


def evaluate_items(
    predictor: Predictor, items: list[EvalItem], bootstrap: int = 1000, batch_documents: int = 16
) -> tuple[dict, list[dict]]:
    """Metrics and one prediction row per scored target (see `prediction_rows`), predicted in
    document batches."""
    from tqdm.auto import tqdm

    answers: list[dict] = []
    for start in tqdm(range(0, len(items), batch_documents), desc="predicting", unit="batch", leave=False):
        answers += predictor.predict([item.document for item in items[start : start + batch_documents]])
    rows = prediction_rows(items, answers)
    return score_rows(rows, len(items), bootstrap), rows


def evaluate_articles(predictor: Predictor, articles: list[dict], bootstrap: int = 1000) -> dict[str, Any]:
    return evaluate_items(predictor, items_from_articles(articles), bootstrap)[0]


# --- baselines ------------------------------------------------------------------------------------
def majority_baseline(items: list[EvalItem], train_labels: dict[str, list[str]], bootstrap: int) -> dict[str, Any]:
    """Always answer each task's most common training label."""
    from collections import Counter

    constant = {task: {"label": Counter(labels).most_common(1)[0][0]} for task, labels in train_labels.items() if labels}
    answers = [{"overall": constant, "results": [constant] * (max(item.gold, default=-1) + 1)} for item in items]
    return score_answers(items, answers, bootstrap)


def tfidf_baseline(predictor: Predictor, items: list[EvalItem], train_examples, bootstrap: int) -> dict[str, Any]:
    """TF-IDF + logistic regression per task, trained on the train examples' (target, window) text and
    reading the windows the predictor plans for each test pair, probabilities averaged like the model's."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    models = {}
    for column, task in enumerate(TASKS):
        rows = [e for e in train_examples if (e.stance, e.sentiment)[column] >= 0]
        if len({(e.stance, e.sentiment)[column] for e in rows}) < 2:
            continue
        pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
            LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced"),
        )
        pipeline.fit([f"{e.target} || {e.window_text}" for e in rows], [(e.stance, e.sentiment)[column] for e in rows])
        models[task] = pipeline
    answers = []
    for item in items:
        plan = predictor.plan(item.document)

        def answer(inputs) -> dict[str, dict[str, str]]:
            texts = [f"{m.target} || {m.window_text}" for m in inputs]
            out = {}
            for task, pipeline in models.items():
                probabilities = pipeline.predict_proba(texts).mean(axis=0)
                out[task] = {"label": TASKS[task][int(pipeline.classes_[int(np.argmax(probabilities))])]}
            return out

        overall = answer(plan.overall) if plan.overall else None
        answers.append({"overall": overall, "results": [answer(pair.inputs) for pair in plan.pairs]})
    return score_answers(items, answers, bootstrap)


# --- report ---------------------------------------------------------------------------------------
def write_confusion_png(block: dict[str, Any], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = block["confusion"]["labels"], np.array(block["confusion"]["matrix"])
    figure, axis = plt.subplots(figsize=(4.2, 3.6), dpi=120)
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=30)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(title)
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_predictions(rows: list[dict[str, Any]], output: Path) -> None:
    """`output/predictions.jsonl`, one scored target a line (see `prediction_rows`)."""
    output.mkdir(parents=True, exist_ok=True)
    with (output / "predictions.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_report(metrics: dict[str, Any], output: Path, description: str) -> None:
    """metrics.json, report.md and one confusion-matrix PNG per task, written into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Evaluation: {description}",
        "",
        f"Model: `{metrics.get('model', {}).get('name', '?')}`; "
        f"{metrics['data']['articles']} documents, {metrics['data']['pairs']} scored targets.",
        "",
    ]
    if "evidence" in metrics:
        evidence = metrics["evidence"]
        lines += [
            f"Evidence: for {evidence['rate']:.1%} of the {evidence['pairs']} pairs with gold evidence, a sentence the "
            f"answer cites overlaps it; for {evidence.get('top_rate', float('nan')):.1%}, its most heavily weighted one does.",
            "",
        ]
    roles = metrics.get("roles", {})
    if "agent" in roles:
        agent = roles["agent"]
        lines += [
            f"Agents ({agent['pairs']} pairs, gold cooperative or pressure): cooperative-vs-pressure macro-F1 "
            f"{agent['cooperative_vs_pressure_macro_f1']:.3f}; answered neutral {agent['answered_neutral']:.1%}.",
            "",
        ]
    if "acted_upon" in roles:
        lines += [
            f"Acted-upon parties ({roles['acted_upon']['pairs']} pairs, gold neutral): answered neutral "
            f"{roles['acted_upon']['answered_neutral']:.1%}.",
            "",
        ]
    if "minimal_pairs" in metrics:
        pairs = metrics["minimal_pairs"]
        lines += [f"Minimal pairs: both sides right for {pairs['both_sides_right']:.1%} of {pairs['groups']} pairs.", ""]
    if metrics.get("over_time"):
        lines += [
            "Agreement with reviewers by week of review: the share of reviewed pairs where this model, and the model "
            "that was serving when the pair was reviewed, gave the reviewer's label.",
            "",
            "| week | pairs | stance, this model | stance, served model | sentiment, this model | sentiment, served model |",
            "|---|---|---|---|---|---|",
        ]
        for entry in metrics["over_time"]:
            cells = [
                f"{entry[name]:.1%}" if name in entry else "-"
                for name in ("stance_model", "stance_served", "sentiment_model", "sentiment_served")
            ]
            lines.append(f"| {entry['period']} | {entry['pairs']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["| task | system | macro-F1 | 95% CI | accuracy |", "|---|---|---|---|---|"]
    for task in TASKS:
        if task not in metrics:
            continue
        rows = [("stanceline", metrics[task])] + [
            (name, baseline[task]) for name, baseline in metrics.get("baselines", {}).items() if task in baseline
        ]
        for name, block in rows:
            low, high = block.get("macro_f1_ci95", [float("nan")] * 2)
            lines.append(
                f"| {task} | {name} | {block['macro_f1']:.3f} | {low:.3f}-{high:.3f} | {block.get('accuracy', float('nan')):.3f} |"
            )
    for task in TASKS:
        if task not in metrics:
            continue
        lines += ["", f"## {task}", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for label, values in metrics[task]["per_class"].items():
            lines.append(
                f"| {label} | {values['precision']:.3f} | {values['recall']:.3f} | {values['f1']:.3f} | {values['support']} |"
            )
        lines += ["", f"![{task} confusion matrix](confusion_{task}.png)"]
        write_confusion_png(metrics[task], f"{task} ({metrics['data']['pairs']} targets)", output / f"confusion_{task}.png")
        if "ece" in metrics[task]:
            lines += [
                "",
                f"Expected calibration error ({len(metrics[task]['reliability'])} bins): {metrics[task]['ece']:.3f}.",
                "",
                f"![{task} reliability diagram](reliability_{task}.png)",
            ]
            write_reliability_png(
                metrics[task]["reliability"], f"{task}: ECE {metrics[task]['ece']:.3f}", output / f"reliability_{task}.png"
            )
    (output / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
