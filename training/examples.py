"""Training examples: (target, window text, stance id, sentiment id, evidence id), built with
`training.windows`.

Every source of labels becomes the same kind of example, built by the same input functions serving
calls: a bundled article gives one example per window around each pair's evidence (stance, sentiment,
and evidence = yes) and one per other window the predictor would read for that pair (evidence = no,
or yes where it overlaps the gold evidence, and no stance), which teaches the evidence head to rank
what the predictor reads; a public corpus gives whole-text stance (`overall`), sentiment toward a
marked mention (party only), or an actor's stance toward another (PLOVER). A head an example has no
label for gets `IGNORE_INDEX`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from training.catalog import Catalog
from training.labels import EVIDENCE_LABELS, IGNORE_INDEX, SENTIMENT_LABELS, STANCE_LABELS, label_id
from training.text import split_sentences
from training.windows import ModelInput, describe_target, mark_mentions, pair_inputs, pair_windows


@dataclass(frozen=True)
class Example:
    target: str
    window_text: str
    stance: int
    sentiment: int
    source: str
    evidence: int = IGNORE_INDEX

    @classmethod
    def from_input(
        cls, model_input: ModelInput, stance: str | None, sentiment: str | None, source: str, evidence: str | None = None
    ) -> Example:
        return cls(
            model_input.target,
            model_input.window_text,
            label_id("stance", stance),
            label_id("sentiment", sentiment),
            source,
            label_id("evidence", evidence),
        )

    @property
    def labels(self) -> list[int]:
        """Label ids in the order of the model's heads (`labels.HEADS`)."""
        return [self.stance, self.sentiment, self.evidence]


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
    inputs = pair_inputs(text, annotation["party"], annotation["issue"], party_spans, anchors, window_chars, limit=len(anchors))
    return list({model_input.window: model_input for model_input in inputs}.values())


def candidate_inputs(article: dict, annotation: dict, catalog: Catalog, window_chars: int) -> list[ModelInput]:
    """Every window the predictor could read for this pair (`windows.pair_windows`), before any budget."""
    from training.predictor import PairRequest, locate_pair

    text = article["text"]
    request = PairRequest(annotation["party"], annotation["issue"])
    party_spans, anchors = locate_pair(catalog, text, split_sentences(text), request, article.get("aliases", {}))
    target = describe_target(annotation["party"], annotation["issue"])
    return [
        ModelInput(target, mark_mentions(text, window, party_spans), window, anchor)
        for window, anchor in pair_windows(text, anchors, window_chars)
    ]


def overlaps(span: tuple[int, int], others: list) -> bool:
    return any(span[0] < end and span[1] > start for start, end in others)


def examples_from_articles(
    articles: list[dict],
    catalog: Catalog,
    window_chars: int,
    source: str,
    served_windows: bool = False,
    evidence_windows: bool = True,
) -> list[Example]:
    """One example per window of every annotated pair (see `article_pair_inputs`) and, with
    `evidence_windows`, one evidence-only example per other candidate window (see the module doc)."""
    examples = []
    for article in articles:
        for annotation in article["annotations"]:
            gold_inputs = article_pair_inputs(article, annotation, catalog, window_chars, served_windows)
            for model_input in gold_inputs:
                examples.append(
                    Example.from_input(model_input, annotation["stance"], annotation["sentiment"], source, EVIDENCE_LABELS[1])
                )
            if not evidence_windows:
                continue
            seen = {model_input.window for model_input in gold_inputs}
            gold_spans = [tuple(span) for span in annotation["evidence"]]
            for model_input in candidate_inputs(article, annotation, catalog, window_chars):
                if model_input.window not in seen:
                    seen.add(model_input.window)
                    shows = EVIDENCE_LABELS[1] if overlaps(model_input.anchor, gold_spans) else EVIDENCE_LABELS[0]
                    examples.append(Example.from_input(model_input, None, None, source, shows))
    return examples


def label_counts(examples: list[Example]) -> dict[str, dict[str, int]]:
    """How many examples carry each label, per task (for the model card and logs)."""
    stance = Counter(STANCE_LABELS[e.stance] for e in examples if e.stance != IGNORE_INDEX)
    sentiment = Counter(SENTIMENT_LABELS[e.sentiment] for e in examples if e.sentiment != IGNORE_INDEX)
    evidence = Counter(EVIDENCE_LABELS[e.evidence] for e in examples if e.evidence != IGNORE_INDEX)
    return {"stance": dict(stance), "sentiment": dict(sentiment), "evidence": dict(evidence)}
