"""What every public corpus adapter declares (`Corpus`), and the dev portion of single-file corpora."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.examples import Example
from training.items import EvalItem
from training.predictor import Document, PairRequest
from training.text import Span
from training.windows import overall_inputs, pair_inputs

DEV_SHARE = 0.15
MIRROR_SETTING = "STANCELINE_DATA_MIRROR"


@dataclass(frozen=True)
class SourceFile:
    name: str
    """File name inside `data/<corpus>/` (and inside the mirror's `<corpus>/`)."""
    url: str
    sha256: str | None
    """Pinned checksum of the upstream file; None where only a subset was ever seen offline."""


@dataclass(frozen=True)
class Corpus:
    """One public corpus: its files, licence, place in the default recipe, converters and dev portion."""

    name: str
    description: str
    licence: str
    in_default_recipe: bool
    """Trained on by the default recipe and brought by `make data`; others are opt-in
    (`stanceline data --corpus NAME`, `public_corpora = [...]`)."""
    sources: tuple[SourceFile, ...]
    file: Callable[[str], str]
    """File name inside `data/<name>/` for a split."""
    read: Callable[[Path], list]
    text: Callable[[Any], str] | None
    """The sentence of a row, for corpora split by `hash_split` (None: the corpus has split files)."""
    examples: Callable[[list, int, bool], list[Example]]
    """Training examples of rows: (rows, window_chars, issue_markers)."""
    items: Callable[[list], list[EvalItem]]

    def path(self, data_dir: Path, split: str) -> Path:
        return Path(data_dir) / self.name / self.file(split)

    def rows(self, data_dir: Path | str, split: str) -> tuple[Path, list]:
        path = self.path(Path(data_dir), split)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make data` (or set {MIRROR_SETTING}) first")
        if self.text is not None and split not in ("dev", "train"):
            raise ValueError(f"{self.name} has splits dev and train, not {split!r}")
        rows = self.read(path)
        if self.text is not None:
            rows = [row for row in rows if hash_split(self.text(row)) == split]
        return path, rows


def sentence_stance_examples(
    source: str, rows: list[tuple[str, str]], window_chars: int, issue_markers: bool = False
) -> list[Example]:
    """Whole-sentence stance rows `(sentence, stance)` as `overall` examples (no party or issue to mark)."""
    return [
        Example.from_input(model_input, stance, None, source)
        for sentence, stance in rows
        for model_input in overall_inputs(sentence, window_chars)
    ]


def sentence_pair_examples(
    source: str, sentence: str, pairs: list[tuple[PairRequest, str, Span]], window_chars: int, issue_markers: bool = False
) -> list[Example]:
    """Stance examples of pairs read in one whole sentence: (pair, gold stance, the other party's span),
    the party's own span marked and, with `issue_markers`, the other party's as the issue's mention
    (what serving finds for the same pair through the catalog). No sentiment: these corpora label acts."""
    whole = [(0, len(sentence))]
    return [
        Example.from_input(model_input, stance, None, source)
        for request, stance, other in pairs
        for model_input in pair_inputs(
            sentence,
            request.party,
            request.issue,
            request.spans,
            whole,
            window_chars,
            issue_spans=[other] if issue_markers else [],
        )
    ]


def sentence_pair_item(sentence: str, pairs: list[tuple[PairRequest, str, str | None]]) -> EvalItem:
    """One evaluation item: `sentence` asked about each (pair, gold stance, role); no role, no role check."""
    return EvalItem(
        Document(sentence, [request for request, _, _ in pairs]),
        {index: {"stance": stance} for index, (_, stance, _) in enumerate(pairs)},
        roles={index: role for index, (_, _, role) in enumerate(pairs) if role is not None},
    )


def trimmed(text: str, span: Span) -> Span:
    """`span` without the whitespace at its ends."""
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def hash_split(sentence: str) -> str:
    """ "dev" for a deterministic DEV_SHARE of sentences (by a hash of the text), else "train"."""
    bucket = int(hashlib.sha256(sentence.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < DEV_SHARE else "train"
