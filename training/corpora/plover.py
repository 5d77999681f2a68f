"""PLOVER (Zero-Shot-PLOVER PLV train split, Hu et al., ACL 2024; research use): real wire sentences with
the source and the target actor marked.

The source on the target is a pair (source as party, with its span pinned; target as issue): quad class
1-2 cooperative, 3-4 pressure. The reverse pair, the target on the source, is `neutral` when the event is
one-sided (`ONE_SIDED_ROOTS`: the target only receives the act, guideline rule 7), which teaches agent
from patient; for AGREE, CONSULT, COOPERATE (mutual acts) and REJECT (the target made the rejected demand
or offer) the sentence may give the target a stance of its own, so no reverse pair is made. One file: a
deterministic 15% of sentences is the dev portion."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from training.corpora.base import Corpus, SourceFile, sentence_pair_examples, sentence_pair_item, trimmed
from training.examples import Example
from training.items import EvalItem
from training.predictor import PairRequest

PLOVER_STANCE = {1: "cooperative", 2: "cooperative", 3: "pressure", 4: "pressure"}
ONE_SIDED_ROOTS = frozenset(
    {"SUPPORT", "AID", "YIELD", "REQUEST", "ACCUSE", "THREATEN", "PROTEST", "SANCTION", "MOBILIZE", "COERCE", "ASSAULT"}
)
URL = "https://raw.githubusercontent.com/snowood1/Zero-Shot-PLOVER/main/datasets/PLV_train.tsv"


@dataclass(frozen=True)
class PloverRow:
    sentence: str
    source: str
    target: str
    source_span: tuple[int, int]
    target_span: tuple[int, int]
    root: str
    penta: int


_MARK = re.compile(r"</?[st]>")


def _unmark(marked: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """The sentence without `<s>`/`<t>` tags, and the offsets of what each pair of tags enclosed."""
    pieces, spans, opened, cursor, length = [], {}, {}, 0, 0
    for match in _MARK.finditer(marked):
        pieces.append(marked[cursor : match.start()])
        length += match.start() - cursor
        tag = match.group()
        if tag.startswith("</"):
            spans[tag[2]] = (opened.pop(tag[2], length), length)
        else:
            opened[tag[1]] = length
        cursor = match.end()
    pieces.append(marked[cursor:])
    return "".join(pieces), spans


def read_plover(path: Path) -> list[PloverRow]:
    """Rows with both actors marked and a quad class; the marked spans are trimmed of white space. Rows
    whose target is not marked in the sentence (upstream writes "a recipient" for it) are dropped."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        needed = {"marked_sentence", "gold_penta", "gold_root"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a TSV with columns {sorted(needed)}, got {reader.fieldnames}")
        for line_number, row in enumerate(reader, start=2):
            sentence, spans = _unmark(row["marked_sentence"] or "")
            try:
                penta = int(row["gold_penta"])
            except (TypeError, ValueError):
                continue
            if penta not in PLOVER_STANCE or set(spans) != {"s", "t"}:
                continue
            bounds = {key: trimmed(sentence, span) for key, span in spans.items()}
            if any(start >= end for start, end in bounds.values()):
                raise ValueError(f"{path}:{line_number}: an empty source or target mention")
            rows.append(
                PloverRow(
                    sentence,
                    sentence[slice(*bounds["s"])],
                    sentence[slice(*bounds["t"])],
                    bounds["s"],
                    bounds["t"],
                    row["gold_root"].strip().upper(),
                    penta,
                )
            )
    return rows


def plover_pairs(row: PloverRow) -> list[tuple[PairRequest, str, str]]:
    """(pair as a user asks it, gold stance, role) for the source on the target and, for a one-sided
    event, the target on the source."""
    pairs = [(PairRequest(row.source, row.target, [row.source_span]), PLOVER_STANCE[row.penta], "agent")]
    if row.root in ONE_SIDED_ROOTS:
        pairs.append((PairRequest(row.target, row.source, [row.target_span]), "neutral", "acted-upon"))
    return pairs


def plover_examples(rows: list[PloverRow], window_chars: int, issue_markers: bool = False) -> list[Example]:
    """Each actor's stance toward the other; with `issue_markers`, the other actor's marked span is the
    issue's mention."""
    return [
        example
        for row in rows
        for example in sentence_pair_examples(
            "plover",
            row.sentence,
            [
                (request, stance, row.target_span if role == "agent" else row.source_span)  # the issue is the other actor
                for request, stance, role in plover_pairs(row)
            ],
            window_chars,
            issue_markers,
        )
    ]


def plover_items(rows: list[PloverRow]) -> list[EvalItem]:
    return [sentence_pair_item(row.sentence, plover_pairs(row)) for row in rows]


CORPUS = Corpus(
    name="plover",
    description="wire sentences with source and target actors, PLOVER event codes",
    licence="no licence upstream: research use, never redistributed",
    in_default_recipe=True,
    sources=(SourceFile("PLV_train.tsv", URL, "b184c7623cb05a48011adabd951f1a7f7efa8c80059ef4dc12c3d3231de5f5d3"),),
    file=lambda split: "PLV_train.tsv",
    read=read_plover,
    text=lambda row: row.sentence,
    examples=plover_examples,
    items=plover_items,
)
