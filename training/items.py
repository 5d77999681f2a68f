"""Gold items: annotated articles asked the way a user asks, with the labels to score the answers by.

Shared by evaluation, calibration and the public-corpus converters, so every one of them sends the
predictor the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.predictor import Document, PairRequest
from training.text import Span

OVERALL = -1
"""Target index of a gold label that belongs to the whole text rather than to a pair."""


@dataclass
class EvalItem:
    """One document and its gold labels: target index (a pair, or OVERALL) to {task: label}."""

    document: Document
    gold: dict[int, dict[str, str]] = field(default_factory=dict)
    id: str = ""
    gold_evidence: dict[int, list[Span]] = field(default_factory=dict)
    """Target index to its annotated evidence offsets, where the data has them."""
    roles: dict[int, str] = field(default_factory=dict)
    """Target index to the party's role where the data says it: "agent" (it acts) or "acted-upon" (another
    party acts on it; gold stance neutral)."""


def items_from_articles(articles: list[dict]) -> list[EvalItem]:
    """Every annotated pair of every article, asked the way a user asks."""
    items = []
    for article in articles:
        annotations = article["annotations"]
        evidence = {i: [tuple(span) for span in a.get("evidence", [])] for i, a in enumerate(annotations)}
        pairs = [PairRequest(a["party"], a["issue"], evidence=evidence[i]) for i, a in enumerate(annotations)]
        gold = {i: {"stance": a["stance"], "sentiment": a["sentiment"]} for i, a in enumerate(annotations)}
        roles = {i: a["role"] for i, a in enumerate(annotations) if a.get("role") in ("agent", "acted-upon")}
        document = Document(article["text"], pairs, article.get("aliases", {}))
        items.append(EvalItem(document, gold, str(article.get("id", "")), evidence, roles))
    return items
