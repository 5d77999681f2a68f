"""UN QuadClass ("Keep it Local", Osorio et al. 2024; MIT): sentences from UN documents with a CAMEO quad class.

Whole-sentence stance: 2 and 4 cooperative, 1 and 3 pressure, 0 neutral, -1 (multi-label) dropped.
Trained as `overall` input (no target). One file: a deterministic 15% of sentences is the dev portion."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

from training.corpora.base import Corpus, SourceFile, sentence_stance_examples
from training.items import OVERALL, EvalItem
from training.predictor import Document

QUADCLASS = {0: "neutral", 1: "pressure", 2: "cooperative", 3: "pressure", 4: "cooperative"}
URL = "https://raw.githubusercontent.com/javierosorio/keep_it_local/main/1_data/en/quadclass/en_annotations_quad_multiclass.tsv"


def read_quadclass(path: Path) -> list[tuple[str, str]]:
    """(sentence, stance) rows; multi-label rows (-1) and blank sentences are dropped."""
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if reader.fieldnames is None or not {"en", "QuadClass"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a TSV with columns en and QuadClass, got {reader.fieldnames}")
        for row in reader:
            try:
                code = int(float(row["QuadClass"]))
            except (TypeError, ValueError):
                continue
            if code in QUADCLASS and (row["en"] or "").strip():
                rows.append((row["en"].strip(), QUADCLASS[code]))
    return rows


quadclass_examples = partial(sentence_stance_examples, "un-quadclass")


def quadclass_items(rows: list[tuple[str, str]]) -> list[EvalItem]:
    return [EvalItem(Document(sentence, []), {OVERALL: {"stance": stance}}) for sentence, stance in rows]


CORPUS = Corpus(
    name="un-quadclass",
    description="UN document sentences, cooperation or conflict (CAMEO quad class)",
    licence="MIT",
    in_default_recipe=True,
    sources=(SourceFile("en_annotations_quad_multiclass.tsv", URL, None),),
    file=lambda split: "en_annotations_quad_multiclass.tsv",
    read=read_quadclass,
    text=lambda row: row[0],
    examples=quadclass_examples,
    items=quadclass_items,
)
