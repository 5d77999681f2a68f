"""Measure, after the fact, what leaning never-acting parties toward `neutral` would do to stance F1.

    python scripts/never_acting_lean.py data/real-dev/dev.jsonl reports/eval/real-dev/predictions.jsonl

For every scored pair whose party is never a clause subject or passive agent in the article
(`training.syntax`), the neutral probability is multiplied by k (inf: answered `neutral`) and the stance
macro-F1 recomputed, so a lean can be judged without wiring it into the predictor.
"""

from __future__ import annotations

import sys

import numpy as np
from sklearn.metrics import f1_score, recall_score

from training.catalog import Catalog
from training.evaluate import bootstrap_interval, macro_f1
from training.labels import STANCE_LABELS
from training.realdev import read_jsonl
from training.syntax import Syntax

FACTORS = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0, float("inf"))


def main(data_path: str, predictions_path: str) -> None:
    articles = {article["id"]: article for article in read_jsonl(data_path)}
    rows = [row for row in read_jsonl(predictions_path) if "stance" in row and row["party"]]
    catalog, syntax = Catalog.load(), Syntax.load()
    never_acts = []
    for row in rows:
        article = articles[row["document"]]
        spans = catalog.find_party(article["text"], row["party"], article.get("aliases", {}).get(row["party"], []))
        never_acts.append(bool(spans) and not syntax.acts(article["text"], spans))
    print(f"{len(rows)} pairs; the party never acts in {sum(never_acts)}")
    gold = [row["stance"]["gold"] for row in rows]
    neutral = STANCE_LABELS.index("neutral")
    for factor in FACTORS:
        predicted = []
        for row, lean in zip(rows, never_acts, strict=True):
            scores = np.array([row["stance"]["scores"][label] for label in STANCE_LABELS])
            if lean:
                scores = (
                    np.eye(len(STANCE_LABELS))[neutral]
                    if factor == float("inf")
                    else scores * np.where(np.arange(len(scores)) == neutral, factor, 1.0)
                )
            predicted.append(STANCE_LABELS[int(np.argmax(scores))])
        neutral_f1 = f1_score(gold, predicted, labels=["neutral"], average="macro")
        pressure_recall = recall_score(gold, predicted, labels=["pressure"], average="macro")
        interval = bootstrap_interval(gold, predicted, STANCE_LABELS, 1000)
        print(
            f"k={factor}: stance macro-F1 {macro_f1(gold, predicted, STANCE_LABELS):.3f} {interval}, "
            f"neutral F1 {neutral_f1:.3f}, pressure recall {pressure_recall:.3f}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:3])
