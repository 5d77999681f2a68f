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
from training.predictor import PairRequest, locate_pair
from training.text import split_sentences
from training.windows import ModelInput, pair_inputs, pair_windows, window_inputs


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


def overlaps(span: tuple[int, int], others: list) -> bool:
    return any(span[0] < end and span[1] > start for start, end in others)


@dataclass(frozen=True)
class WindowOptions:
    """Which windows a bundled pair trains on and how they are marked (each field as in `TrainConfig`)."""

    window_chars: int
    served_windows: bool = False
    evidence_windows: bool = True
    issue_markers: bool = False


def pair_examples(article: dict, annotation: dict, catalog: Catalog, source: str, options: WindowOptions) -> list[Example]:
    """The examples of one annotated pair. Its gold windows (around each evidence span and, with
    `served_windows`, also around where the predictor finds party and issue) carry stance, sentiment and
    evidence = yes; with `evidence_windows`, every other candidate window the predictor could read for
    the pair carries only the evidence label (yes where it overlaps the gold evidence)."""
    text, party, issue = article["text"], annotation["party"], annotation["issue"]
    party_spans, issue_spans, served = locate_pair(
        catalog, text, split_sentences(text), PairRequest(party, issue), article.get("aliases", {})
    )
    window_chars, issue_spans = options.window_chars, issue_spans if options.issue_markers else []
    gold_spans = [tuple(span) for span in annotation["evidence"]]
    anchors = gold_spans + [anchor for anchor in served if options.served_windows and anchor not in gold_spans]
    gold = {
        m.window: m
        for m in pair_inputs(text, party, issue, party_spans, anchors, window_chars, limit=len(anchors), issue_spans=issue_spans)
    }
    examples = [
        Example.from_input(m, annotation["stance"], annotation["sentiment"], source, EVIDENCE_LABELS[1]) for m in gold.values()
    ]
    if options.evidence_windows:
        seen = set(gold)
        for m in window_inputs(text, party, issue, party_spans, pair_windows(text, served, window_chars), issue_spans):
            if m.window not in seen:
                seen.add(m.window)
                examples.append(Example.from_input(m, None, None, source, EVIDENCE_LABELS[int(overlaps(m.anchor, gold_spans))]))
    return examples


def examples_from_articles(articles: list[dict], catalog: Catalog, source: str, options: WindowOptions) -> list[Example]:
    """The examples of every annotated pair of `articles` (see `pair_examples`)."""
    return [
        example
        for article in articles
        for annotation in article["annotations"]
        for example in pair_examples(article, annotation, catalog, source, options)
    ]


def label_counts(examples: list[Example]) -> dict[str, dict[str, int]]:
    """How many examples carry each label, per task (for the model card and logs)."""
    stance = Counter(STANCE_LABELS[e.stance] for e in examples if e.stance != IGNORE_INDEX)
    sentiment = Counter(SENTIMENT_LABELS[e.sentiment] for e in examples if e.sentiment != IGNORE_INDEX)
    evidence = Counter(EVIDENCE_LABELS[e.evidence] for e in examples if e.evidence != IGNORE_INDEX)
    return {"stance": dict(stance), "sentiment": dict(sentiment), "evidence": dict(evidence)}
