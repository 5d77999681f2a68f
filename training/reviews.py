"""Reviewers' corrections as corpus data: export to train/dev/test JSONL, and agreement over time.

A reviewed document becomes one article in the bundled corpus format, its newest review of each
(party, issue) pair one annotation, so `stanceline validate`, `train` and `evaluate` read it like any
other corpus file. Documents, not pairs, are split, and a document keeps the split it was first exported
to: a held-out article never moves into a later model's training data.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from training.data import validate_lines
from training.files import write_lines_atomically

SPLITS = ("train", "dev", "test")
DEFAULT_SHARES = {"train": 0.7, "dev": 0.15, "test": 0.15}
TIE_ORDER = ("test", "dev", "train")
"""Where two splits are equally short of their share, held-out ones fill first, so that three
documents already give a test article and five a dev article too."""


class ReviewSource(Protocol):
    """What the export needs of the review store (`serving.store.Store`); training does not import serving."""

    def reviewed_documents(self) -> tuple[list[dict[str, Any]], int]: ...

    def assign_splits(self, assignments: dict[int, str]) -> None: ...


def assign_splits(documents: list[dict[str, Any]], shares: dict[str, float] = DEFAULT_SHARES) -> dict[int, str]:
    """Splits for the documents that have none: in SHA-256 order, each goes to the split furthest below
    its share of all documents. Deterministic for the same store."""
    counts = Counter(document["split"] for document in documents if document["split"])
    assigned = {}
    for document in sorted((d for d in documents if not d["split"]), key=lambda d: d["sha256"]):
        total = sum(counts.values()) + 1
        split = max(TIE_ORDER, key=lambda name: shares[name] * total - counts[name])
        counts[split] += 1
        assigned[document["id"]] = split
    return assigned


def to_article(document: dict[str, Any]) -> dict[str, Any]:
    """A reviewed document in the corpus format; each annotation keeps who reviewed it, when, and what
    the served model had answered."""
    first_line = document["text"].strip().splitlines()[0]
    key = document["sha256"][:16]
    return {
        "id": f"review-{key}",
        "title": first_line[:120],
        "date": document["received_at"].date().isoformat(),
        "source": document["source"] or "stanceline reviews",
        "storyline": f"review-{key}",
        "text": document["text"],
        "annotations": [
            {
                "party": review["party"],
                "issue": review["issue"],
                "stance": review["stance"],
                "sentiment": review["sentiment"],
                "evidence": review["evidence"],
                "reviewer": review["reviewer"],
                "reviewed_at": review["created_at"],
                "served": {"model": review["model"], **(review["predicted"] or {})} if review["model"] else None,
            }
            for review in sorted(document["reviews"], key=lambda r: r["id"])
        ],
    }


def reviewed_articles(store: ReviewSource, shares: dict[str, float] = DEFAULT_SHARES) -> tuple[dict[str, list[dict]], int]:
    """Articles per split (fixing the split of newly reviewed documents), and how many reviews were
    superseded by a newer review of the same pair."""
    documents, superseded = store.reviewed_documents()
    assigned = assign_splits(documents, shares)
    if assigned:
        store.assign_splits(assigned)
    articles: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for document in documents:
        articles[document["split"] or assigned[document["id"]]].append(to_article(document))
    return articles, superseded


def export_reviews(store: ReviewSource, output: Path | str, shares: dict[str, float] = DEFAULT_SHARES) -> dict[str, Any]:
    """Write train.jsonl, dev.jsonl and test.jsonl into `output` (each replaced whole, never half-written)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    articles, superseded = reviewed_articles(store, shares)
    summary: dict[str, Any] = {"superseded": superseded}
    for split, records in articles.items():
        lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in records]
        _, problems = validate_lines(lines, f"{split}.jsonl")
        if problems:  # the store checks offsets on the way in, so this is a bug, not bad input
            raise ValueError(f"exported {split} split does not validate: {problems[0]}")
        write_lines_atomically(output / f"{split}.jsonl", lines)
        summary[split] = {"articles": len(records), "pairs": sum(len(r["annotations"]) for r in records)}
    return summary


def agreement_over_time(articles: list[dict], rows: list[dict[str, Any]], period: str = "week") -> list[dict[str, Any]]:
    """Per period of review time: how often the evaluated model, and the model that was serving when the
    pair was reviewed, agree with the reviewers. `rows` are `evaluate.prediction_rows` of these articles."""
    annotations = {(article["id"], index): a for article in articles for index, a in enumerate(article["annotations"])}
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        annotation = annotations.get((row["document"], row["target"]))
        if annotation is None:
            continue
        moment = datetime.fromisoformat(annotation["reviewed_at"])
        key = moment.strftime("%G-W%V") if period == "week" else moment.date().isoformat()
        served = annotation.get("served") or {}
        for task in ("stance", "sentiment"):
            if task in row:
                groups[key][f"{task}_model"].append(int(row[task]["predicted"] == row[task]["gold"]))
                if served.get(task):
                    groups[key][f"{task}_served"].append(int(served[task] == row[task]["gold"]))
    table = []
    for key in sorted(groups):
        values = groups[key]
        entry: dict[str, Any] = {"period": key, "pairs": len(values["stance_model"])}
        for name, hits in values.items():
            entry[name] = sum(hits) / len(hits)
        entry["served_pairs"] = len(values.get("stance_served", []))
        table.append(entry)
    return table
