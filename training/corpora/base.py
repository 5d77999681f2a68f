"""What every public corpus adapter declares (`Corpus`), and the dev portion of single-file corpora."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.examples import Example
from training.items import EvalItem
from training.windows import overall_inputs

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


def hash_split(sentence: str) -> str:
    """ "dev" for a deterministic DEV_SHARE of sentences (by a hash of the text), else "train"."""
    bucket = int(hashlib.sha256(sentence.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < DEV_SHARE else "train"
