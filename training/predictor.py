"""Article-level prediction: find the pairs, read them through windows, and aggregate.

This is the model backend behind the HTTP API, the batch CLI and `stanceline evaluate` alike. Work is
split into `plan` (pure text processing: sentences, mentions, windows), one `Classifier.predict` call
over the windows of many documents at once, and `assemble` (aggregation into answers), so that the
serving queue can batch windows from concurrent requests into one model call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from training.backends import Classifier
from training.catalog import Catalog
from training.labels import TASKS
from training.modeling import WINDOW_POOLINGS
from training.text import Span, split_sentences
from training.windows import (
    MAX_WINDOWS_IN_READING_ORDER,
    MAX_WINDOWS_PER_PAIR,
    ModelInput,
    describe_target,
    meeting_points,
    overall_inputs,
    pair_windows,
    sentence_indices,
    sentences_of,
    spread,
    window_inputs,
    windows_around,
)

MAX_DETECTED_PAIRS = 12
MAX_PAIR_WINDOWS_PER_DOCUMENT = 16
"""Most windows all the pairs of one document are read through together. Pairs share this budget
round-robin (every pair gets one window before any gets a second), so a request with many pairs costs
at most one window per pair beyond it. 16 is set by latency: a 4,000-character article with 12 detected
pairs then costs 19 windows with `overall`, about 200 ms on two cores, while an article with four pairs
still reads four per pair (reports/EXPERIMENTS.md, "Reading budget", has the measurements)."""
READERS = ("ranked", "first", "oracle")
"""How a pair's windows become its answer. "ranked": every candidate window up to the budget, weighted
by the evidence head; "first": the first windows in reading order, averaged (models without the
evidence head); "oracle": only the windows around the gold evidence the request pins (evaluation)."""
EVIDENCE_POWER = 3


class PredictionInputError(ValueError):
    """A request that cannot be answered as given (offsets outside the text, a pair without a party)."""


@dataclass
class PairRequest:
    party: str
    issue: str | None = None
    spans: list[Span] | None = None
    evidence: list[Span] | None = None
    """Pinned evidence offsets: with the "oracle" reader only these are read (evaluation)."""


@dataclass
class Document:
    text: str
    pairs: list[PairRequest] | None = None
    """None: detect the pairs; []: answer `overall` only."""
    aliases: dict[str, list[str]] = field(default_factory=dict)
    overall: bool | None = None
    """Whether to answer `overall` (the whole text's stance and sentiment, read from its lead): None
    answers it only when the pairs are detected or empty, so asking for one party costs its own windows."""

    @property
    def wants_overall(self) -> bool:
        return self.overall if self.overall is not None else not self.pairs


@dataclass
class PairPlan:
    party: str
    issue: str | None
    mentioned: bool
    inputs: list[ModelInput]


@dataclass
class DocumentPlan:
    text: str
    overall: list[ModelInput]
    pairs: list[PairPlan]

    @cached_property
    def model_inputs(self) -> list[ModelInput]:
        """Every window of the document in answer order: `overall` first, then each pair's."""
        return self.overall + [model_input for pair in self.pairs for model_input in pair.inputs]


def score(task: str, probabilities: np.ndarray) -> dict[str, Any]:
    """The public Score object: the winning label and every label's probability."""
    labels = TASKS[task]
    return {
        "label": labels[int(np.argmax(probabilities))],
        "scores": {label: round(float(p), 4) for label, p in zip(labels, probabilities, strict=True)},
    }


class LocatedPair(NamedTuple):
    """Where a pair is in a text: the party's mentions, the issue's mentions and the anchors its windows
    are built around."""

    party_spans: list[Span]
    issue_spans: list[Span]
    anchors: list[Span]


def locate_pair(
    catalog: Catalog, text: str, sentences: list[Span], request: PairRequest, aliases: dict[str, list[str]]
) -> LocatedPair:
    """The party's mention spans (pinned `spans`, else found through the catalog and aliases), the
    issue's, and the anchors: where party and issue meet, or the party's own mentions when no issue is
    asked. Training calls this too, to train on the windows that are served."""
    if request.spans:
        party_spans = [tuple(span) for span in request.spans]
    else:
        party_spans = catalog.find_party(text, request.party, aliases.get(request.party, []))
    if not request.issue:
        return LocatedPair(party_spans, [], list(party_spans))
    issue_spans = catalog.find_issue(text, request.issue, aliases.get(request.issue, []))
    return LocatedPair(party_spans, issue_spans, meeting_points(sentences, party_spans, issue_spans))


def share_windows(sizes: list[int], budget: int, per_pair: int) -> list[int]:
    """How many of its candidate windows each pair is read through: round-robin within `budget`, at most
    `per_pair` each, and at least one each whatever the budget (a pair is never left unread)."""
    shares = [min(1, size) for size in sizes]
    spent = sum(shares)
    grew = True
    while grew and spent < budget:
        grew = False
        for index, size in enumerate(sizes):
            if spent < budget and shares[index] < min(size, per_pair):
                shares[index] += 1
                spent += 1
                grew = True
    return shares


def normalised_weights(relevance: np.ndarray, power: float = 1) -> np.ndarray:
    """`relevance` raised to `power` and normalised to sum to 1; equal weights when all of it is zero."""
    raised = relevance**power
    total = raised.sum()
    return raised / total if total > 0 else np.full(len(relevance), 1.0 / max(len(relevance), 1))


def pool_windows(rows: np.ndarray, weights: np.ndarray, pooling: str) -> np.ndarray:
    """One distribution from a pair's window distributions (`rows`, one per window) and their `weights`
    (summing to 1), by `pooling` (see `WINDOW_POOLINGS`)."""
    if pooling == "mean":
        return weights @ rows
    pooled = np.exp(weights @ np.log(np.clip(rows, 1e-9, 1.0)))
    return pooled / pooled.sum()


class Predictor:
    """Answers documents with a trained model folder and the catalog it carries."""

    def __init__(self, classifier: Classifier, catalog: Catalog, reader: str | None = None, pooling: str | None = None) -> None:
        self.classifier = classifier
        self.catalog = catalog
        self.meta = classifier.meta
        self.windows_read = 0
        """Model windows classified by `predict` since this predictor was made (batch-run throughput)."""
        self.reader = reader or ("ranked" if self.meta.evidence_labels else "first")
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {', '.join(READERS)}, not {self.reader!r}")
        if self.reader == "ranked" and not self.meta.evidence_labels:
            raise ValueError(f"model {self.meta.name} has no evidence head: use the 'first' or 'oracle' reader")
        self.pooling = pooling or self.meta.window_pooling
        """The model folder's window pooling (its temperatures were fitted under it) unless one is asked for."""
        if self.pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window pooling must be one of {', '.join(WINDOW_POOLINGS)}, not {self.pooling!r}")

    @classmethod
    def from_folder(
        cls,
        folder: Path | str,
        backend: str = "auto",
        batch_size: int = 32,
        threads: int | None = None,
        reader: str | None = None,
        spin: bool = True,
        pooling: str | None = None,
    ) -> Predictor:
        folder = Path(folder)
        if not folder.exists():
            raise FileNotFoundError(f"no model at {folder}: train one with `make train` or pass --model")
        catalog_dir = folder / "catalog"
        catalog = Catalog.load(catalog_dir) if catalog_dir.exists() else Catalog.load()
        return cls(
            Classifier(folder, backend=backend, batch_size=batch_size, threads=threads, spin=spin), catalog, reader, pooling
        )

    # --- planning -------------------------------------------------------------------------------
    def plan(self, document: Document) -> DocumentPlan:
        text = document.text
        if not isinstance(text, str) or not text.strip():
            raise PredictionInputError("text must be a non-empty string")
        window_chars = self.meta.window_chars
        sentences = split_sentences(text) or [(0, len(text))]
        pair_requests = self.detect_pairs(text, sentences, document.aliases) if document.pairs is None else document.pairs
        candidates: list[tuple[PairRequest, list[Span], list[tuple[Span, Span]]]] = []
        for request in pair_requests:
            if not isinstance(request.party, str) or not request.party.strip():
                raise PredictionInputError("every pair needs a non-empty party")
            for start, end in request.spans or []:
                if not 0 <= start < end <= len(text):
                    raise PredictionInputError(
                        f"span [{start}, {end}] of party {request.party!r} is outside the text (length {len(text)})"
                    )
                if not sentence_indices(sentences, (start, end)):  # whitespace between sentences: no window
                    raise PredictionInputError(f"span [{start}, {end}] of party {request.party!r} covers only whitespace")
            # The target is read before the window; past the model's length the tokenizer cannot truncate.
            target_tokens = self.target_tokens(describe_target(request.party, request.issue))
            if target_tokens > self.meta.max_length // 2:
                raise PredictionInputError(
                    f"party and issue of {request.party[:40]!r} take {target_tokens} tokens; this model reads at most "
                    f"{self.meta.max_length // 2} for them: shorten the names"
                )
            located = locate_pair(self.catalog, text, sentences, request, document.aliases)
            if self.reader == "oracle" and request.evidence:
                windows = windows_around(text, sorted(request.evidence), window_chars)
            else:
                windows = pair_windows(text, located.anchors, window_chars)
            candidates.append((request, located, windows))
        budgets = share_windows([len(windows) for _, _, windows in candidates], MAX_PAIR_WINDOWS_PER_DOCUMENT, self.pair_limit)
        plans = []
        for (request, located, windows), budget in zip(candidates, budgets, strict=True):
            chosen = windows[:budget] if self.reader == "first" else spread(windows, budget)
            issue_spans = located.issue_spans if self.meta.issue_markers else []
            inputs = window_inputs(text, request.party, request.issue, located.party_spans, chosen, issue_spans)
            plans.append(PairPlan(request.party, request.issue, bool(located.party_spans), inputs))
        if not plans and not document.wants_overall:
            raise PredictionInputError("nothing to answer: no pairs and `overall` is false")
        return DocumentPlan(text, overall_inputs(text, window_chars) if document.wants_overall else [], plans)

    def target_tokens(self, target: str) -> int:
        """Tokens of a described target. A WordPiece token covers at least one character, so a target no
        longer in characters than the limit is within it, and only longer ones are tokenized to count."""
        if len(target) <= self.meta.max_length // 2:
            return len(target)
        return len(self.classifier.tokenizer.tokenize(target))

    @property
    def pair_limit(self) -> int:
        """Most windows one pair is read through with this reader."""
        return MAX_WINDOWS_IN_READING_ORDER if self.reader == "first" else MAX_WINDOWS_PER_PAIR

    def detect_pairs(self, text: str, sentences: list[Span], aliases: dict[str, list[str]]) -> list[PairRequest]:
        """Pairs whose party and issue meet in one sentence, most frequent meetings first.

        Issues are catalog issues and the other parties of the text; a party that meets no issue is
        answered alone (issue null). At most MAX_DETECTED_PAIRS pairs, so long articles stay fast."""
        parties = self.catalog.detect_parties(text, aliases)
        issues = {**self.catalog.detect_issues(text), **parties}

        issue_sentences = {issue: sentences_of(sentences, spans) for issue, spans in issues.items()}
        scored: list[tuple[int, int, PairRequest]] = []
        for order, (party, spans) in enumerate(parties.items()):
            party_sentences = sentences_of(sentences, spans)
            meetings = {issue: len(ids & party_sentences) for issue, ids in issue_sentences.items() if issue != party}
            found = [(count, issue) for issue, count in meetings.items() if count]
            if not found:
                scored.append((len(party_sentences), -order, PairRequest(party, None)))
            scored += [(count, -order, PairRequest(party, issue)) for count, issue in found]
        scored.sort(key=lambda item: (-item[0], -item[1]))
        return [request for _, _, request in scored[:MAX_DETECTED_PAIRS]]

    # --- assembling -----------------------------------------------------------------------------
    def assemble(self, plan: DocumentPlan, probabilities: dict[str, np.ndarray]) -> dict[str, Any]:
        """Answer for one planned document, given the probabilities of its windows in plan order."""
        cursor = len(plan.overall)
        overall = {task: score(task, probabilities[task][:cursor].mean(axis=0)) for task in TASKS} if cursor else None
        results = []
        for pair in plan.pairs:
            rows = slice(cursor, cursor + len(pair.inputs))
            cursor += len(pair.inputs)
            weights = self.window_weights(
                probabilities["evidence"][rows] if "evidence" in probabilities else None, len(pair.inputs)
            )
            stance_rows = probabilities["stance"][rows]
            evidence = [
                {
                    "start": m.anchor[0],
                    "end": m.anchor[1],
                    "text": plan.text[m.anchor[0] : m.anchor[1]],
                    "weight": round(float(weight), 4),
                    "stance": score("stance", p),
                }
                for m, p, weight in zip(pair.inputs, stance_rows, weights, strict=True)
            ]
            results.append(
                {
                    "party": pair.party,
                    "issue": pair.issue,
                    "stance": score("stance", self.pool(weights, stance_rows)),
                    "sentiment": score("sentiment", self.pool(weights, probabilities["sentiment"][rows])),
                    "mentioned": pair.mentioned,
                    "evidence": sorted(evidence, key=lambda item: (-item["weight"], item["start"])),
                }
            )
        return {"overall": overall, "results": results}

    def window_weights(self, evidence: np.ndarray | None, count: int) -> np.ndarray:
        """How much each of a pair's `count` windows counts: its evidence probability (`evidence`, one row
        per window; cubed for the geometric pooling), normalised over the pair, with the "ranked" reader;
        equal weights otherwise."""
        relevance = evidence[:, 1] if self.reader == "ranked" and evidence is not None else np.ones(count)
        return normalised_weights(relevance, EVIDENCE_POWER if self.pooling == "geometric" else 1)

    def pool(self, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return pool_windows(rows, weights, self.pooling)

    def model_info(self) -> dict[str, str]:
        return {"name": self.meta.name, "version": self.meta.created}

    def answer_plans(self, plans: list[DocumentPlan], probabilities: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Answers for planned documents whose windows were classified together, in plan order."""
        answers, cursor = [], 0
        for plan in plans:
            size = len(plan.model_inputs)
            rows = {task: values[cursor : cursor + size] for task, values in probabilities.items()}
            answers.append({"model": self.model_info(), **self.assemble(plan, rows)})
            cursor += size
        return answers

    def predict(self, documents: list[Document]) -> list[dict[str, Any]]:
        """Answers for many documents, their windows classified together in length-sorted batches."""
        plans = [self.plan(document) for document in documents]
        inputs = [model_input for plan in plans for model_input in plan.model_inputs]
        answers = self.answer_plans(plans, self.classifier.predict([(m.target, m.window_text) for m in inputs]))
        self.windows_read += len(inputs)
        return answers
