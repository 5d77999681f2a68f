"""NewsMTSC (Hamborg & Donnay, EACL 2021; MIT): sentiment toward the marked mention of one news sentence.

Polarity -1/0/1 becomes negative/neutral/positive. Trained as party-only input (no issue) with the
mention given as its span, exactly how `stanceline predict` is called with `spans`. Split files: train, dev."""

from __future__ import annotations

import json
from pathlib import Path

from training.corpora.base import Corpus, SourceFile
from training.examples import Example
from training.items import EvalItem
from training.predictor import Document, PairRequest
from training.windows import pair_inputs

POLARITY = {-1: "negative", 0: "neutral", 1: "positive"}
BASE_URL = "https://raw.githubusercontent.com/fhamborg/NewsMTSC/main/NewsSentiment/experiments/default/datasets/newsmtsc-rw-hf"


def read_newsmtsc(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = {"mention", "from", "to", "sentence", "polarity"} - set(row)
            if missing:
                raise ValueError(f"{path}:{line_number}: NewsMTSC row lacks {sorted(missing)}")
            if row["polarity"] not in POLARITY or not 0 <= row["from"] < row["to"] <= len(row["sentence"]):
                raise ValueError(f"{path}:{line_number}: bad polarity or mention offsets")
            rows.append(row)
    return rows


def newsmtsc_document(row: dict) -> Document:
    return Document(row["sentence"], [PairRequest(row["mention"], None, [(row["from"], row["to"])])])


def newsmtsc_examples(rows: list[dict], window_chars: int, issue_markers: bool = False) -> list[Example]:
    """Sentiment toward the marked mention (no issue, so `issue_markers` changes nothing)."""
    examples = []
    for row in rows:
        span = (row["from"], row["to"])
        for model_input in pair_inputs(row["sentence"], row["mention"], None, [span], [span], window_chars):
            examples.append(Example.from_input(model_input, None, POLARITY[row["polarity"]], "newsmtsc"))
    return examples


def newsmtsc_items(rows: list[dict]) -> list[EvalItem]:
    return [EvalItem(newsmtsc_document(row), {0: {"sentiment": POLARITY[row["polarity"]]}}) for row in rows]


CORPUS = Corpus(
    name="newsmtsc",
    description="target-dependent sentiment in English news sentences (rw flavour)",
    licence="MIT",
    in_default_recipe=True,
    sources=(
        SourceFile("train.jsonl", f"{BASE_URL}/train.jsonl", "e78c7964aad1d5b7dbc66cb3a05d5885dbf2e29a2a3171f0d75b497bf18f3621"),
        SourceFile("dev.jsonl", f"{BASE_URL}/dev.jsonl", "78b5dde35a97b452035c07c142fac5ecf44dd998217921cff62a1519ed01e952"),
    ),
    file=lambda split: f"{split}.jsonl",
    read=read_newsmtsc,
    text=None,
    examples=newsmtsc_examples,
    items=newsmtsc_items,
)
