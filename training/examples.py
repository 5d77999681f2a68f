"""Training examples: (target, window text, stance id, sentiment id), built with `training.windows`.

Every source of labels becomes the same kind of example, built by the same input function serving
calls: a bundled article gives one example per window around each pair's evidence; a public corpus gives
whole-text stance (`overall`) or sentiment toward a marked mention (party only). A task an example has
no label for gets `IGNORE_INDEX`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from training.catalog import Catalog
from training.labels import IGNORE_INDEX, SENTIMENT_LABELS, STANCE_LABELS, label_id
from training.windows import ModelInput, pair_inputs


@dataclass(frozen=True)
class Example:
    target: str
    window_text: str
    stance: int
    sentiment: int
    source: str

    @classmethod
    def from_input(cls, model_input: ModelInput, stance: str | None, sentiment: str | None, source: str) -> Example:
        return cls(
            model_input.target, model_input.window_text, label_id("stance", stance), label_id("sentiment", sentiment), source
        )


def article_pair_inputs(article: dict, annotation: dict, catalog: Catalog, window_chars: int) -> list[ModelInput]:
    """The windows of one annotated pair: around each of its evidence spans."""
    text = article["text"]
    aliases = article.get("aliases", {})
    party_spans = catalog.find_party(text, annotation["party"], aliases.get(annotation["party"], []))
    anchors = [tuple(span) for span in annotation["evidence"]]
    return pair_inputs(text, annotation["party"], annotation["issue"], party_spans, anchors, window_chars)


def examples_from_articles(articles: list[dict], catalog: Catalog, window_chars: int, source: str) -> list[Example]:
    """One example per evidence window of every annotated pair."""
    examples = []
    for article in articles:
        for annotation in article["annotations"]:
            for model_input in article_pair_inputs(article, annotation, catalog, window_chars):
                examples.append(Example.from_input(model_input, annotation["stance"], annotation["sentiment"], source))
    return examples


def label_counts(examples: list[Example]) -> dict[str, dict[str, int]]:
    """How many examples carry each label, per task (for the model card and logs)."""
    stance = Counter(STANCE_LABELS[e.stance] for e in examples if e.stance != IGNORE_INDEX)
    sentiment = Counter(SENTIMENT_LABELS[e.sentiment] for e in examples if e.sentiment != IGNORE_INDEX)
    return {"stance": dict(stance), "sentiment": dict(sentiment)}
