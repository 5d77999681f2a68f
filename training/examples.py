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
from training.text import split_sentences
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


def article_pair_inputs(
    article: dict, annotation: dict, catalog: Catalog, window_chars: int, served_windows: bool = False
) -> list[ModelInput]:
    """The windows of one annotated pair: around each of its evidence spans and, with `served_windows`,
    also the windows the predictor reads for this pair (where party and issue meet), so that training
    sees the windows that serving averages over."""
    from training.predictor import PairRequest, locate_pair

    text = article["text"]
    request = PairRequest(annotation["party"], annotation["issue"])
    party_spans, served_anchors = locate_pair(catalog, text, split_sentences(text), request, article.get("aliases", {}))
    anchors = [tuple(span) for span in annotation["evidence"]]
    if served_windows:
        anchors += [anchor for anchor in served_anchors if anchor not in anchors]
    inputs = pair_inputs(text, annotation["party"], annotation["issue"], party_spans, anchors, window_chars)
    return list({model_input.window: model_input for model_input in inputs}.values())


def examples_from_articles(
    articles: list[dict], catalog: Catalog, window_chars: int, source: str, served_windows: bool = False
) -> list[Example]:
    """One example per window of every annotated pair (see `article_pair_inputs`)."""
    examples = []
    for article in articles:
        for annotation in article["annotations"]:
            for model_input in article_pair_inputs(article, annotation, catalog, window_chars, served_windows):
                examples.append(Example.from_input(model_input, annotation["stance"], annotation["sentiment"], source))
    return examples


def label_counts(examples: list[Example]) -> dict[str, dict[str, int]]:
    """How many examples carry each label, per task (for the model card and logs)."""
    stance = Counter(STANCE_LABELS[e.stance] for e in examples if e.stance != IGNORE_INDEX)
    sentiment = Counter(SENTIMENT_LABELS[e.sentiment] for e in examples if e.sentiment != IGNORE_INDEX)
    return {"stance": dict(stance), "sentiment": dict(sentiment)}
