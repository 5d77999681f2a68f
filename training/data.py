"""The corpus format: reading and validating annotated articles.

One article per JSONL line:
    {"id", "title", "date", "source", "storyline", "text",
     "aliases": {party: [name, ...]}  (optional),
     "annotations": [{"party", "issue", "stance", "sentiment", "evidence": [[start, end], ...]}]}
Evidence offsets are character offsets into `text`, end exclusive. Training refuses a file with any
problem rather than skipping bad lines: a silently shrunken corpus is worse than a loud error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.labels import ROLES, SENTIMENT_LABELS, STANCE_LABELS

REQUIRED_TEXT_FIELDS = ("id", "title", "date", "source", "storyline", "text")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a corpus file, located precisely enough to fix it."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


class InvalidCorpusError(ValueError):
    """Raised when a corpus file has problems; carries all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(str(problem) for problem in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the corpus:\n{shown}{more}")


def _check_annotation(annotation: Any, text: str, where: str, report) -> tuple[str, str] | None:
    if not isinstance(annotation, dict):
        report(where, "must be an object")
        return None
    for name in ("party", "issue"):
        if not isinstance(annotation.get(name), str) or not annotation[name].strip():
            report(f"{where}.{name}", "must be a non-empty string")
    if annotation.get("stance") not in STANCE_LABELS:
        report(f"{where}.stance", f"unknown label {annotation.get('stance')!r}; expected one of {', '.join(STANCE_LABELS)}")
    if annotation.get("sentiment") not in SENTIMENT_LABELS:
        report(
            f"{where}.sentiment",
            f"unknown label {annotation.get('sentiment')!r}; expected one of {', '.join(SENTIMENT_LABELS)}",
        )
    if "role" in annotation and annotation["role"] not in ROLES:
        report(f"{where}.role", f"unknown role {annotation['role']!r}; expected one of {', '.join(ROLES)}")
    evidence = annotation.get("evidence")
    if not isinstance(evidence, list) or not evidence:
        report(f"{where}.evidence", "must be a non-empty list of [start, end] offsets")
    else:
        for index, span in enumerate(evidence):
            valid_shape = isinstance(span, list) and len(span) == 2 and all(type(x) is int for x in span)
            if not valid_shape:
                report(f"{where}.evidence[{index}]", f"must be [start, end] integers, got {span!r}")
            elif not 0 <= span[0] < span[1] <= len(text):
                report(f"{where}.evidence[{index}]", f"offsets {span} outside the text (length {len(text)})")
    party, issue = annotation.get("party"), annotation.get("issue")
    return (party, issue) if isinstance(party, str) and isinstance(issue, str) else None


def validate_lines(lines: list[str], path: str) -> tuple[list[dict], list[Problem]]:
    """Parse and check every line; return the articles that parsed and every problem found."""
    problems: list[Problem] = []
    articles: list[dict] = []
    first_line_of_id: dict[str, int] = {}
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue

        def report(field: str, message: str, line_number: int = line_number) -> None:
            problems.append(Problem(path, line_number, field, message))

        try:
            article = json.loads(line)
        except json.JSONDecodeError as error:
            report("json", f"bad JSON: {error.msg} at column {error.colno}")
            continue
        if not isinstance(article, dict):
            report("json", "each line must be a JSON object")
            continue
        for name in REQUIRED_TEXT_FIELDS:
            if not isinstance(article.get(name), str) or (name in ("id", "text") and not article[name].strip()):
                report(name, "missing or not a string" if name not in ("id", "text") else "missing or empty")
        article_id = article.get("id")
        if isinstance(article_id, str):
            if article_id in first_line_of_id:
                report("id", f"duplicate id {article_id!r} (first on line {first_line_of_id[article_id]})")
            else:
                first_line_of_id[article_id] = line_number
        aliases = article.get("aliases", {})
        if not isinstance(aliases, dict) or not all(
            isinstance(names, list) and all(isinstance(n, str) and n.strip() for n in names) for names in aliases.values()
        ):
            report("aliases", "must map each party to a list of non-empty strings")
        text = article.get("text") if isinstance(article.get("text"), str) else ""
        annotations = article.get("annotations")
        if not isinstance(annotations, list):
            report("annotations", "missing or not a list")
            continue
        seen: dict[tuple[str, str], int] = {}
        for index, annotation in enumerate(annotations):
            pair = _check_annotation(annotation, text, f"annotations[{index}]", report)
            if pair is None:
                continue
            if pair in seen:
                report(f"annotations[{index}]", f"pair {pair[0]!r}/{pair[1]!r} annotated twice (also annotations[{seen[pair]}])")
            seen.setdefault(pair, index)
        articles.append(article)
    return articles, problems


def validate_file(path: Path | str) -> tuple[list[dict], list[Problem]]:
    """Validate one corpus file; a missing or unreadable file is itself a problem."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return [], [Problem(str(path), 0, "file", f"cannot read: {error}")]
    return validate_lines(lines, str(path))


def load_articles(path: Path | str) -> list[dict]:
    """The articles of a valid corpus file; raises InvalidCorpusError listing every problem otherwise."""
    articles, problems = validate_file(path)
    if problems:
        raise InvalidCorpusError(problems)
    return articles


def file_sha256(path: Path | str) -> str:
    """Content hash recorded in a model folder for each file it was trained on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def count_pairs(articles: list[dict]) -> int:
    return sum(len(article["annotations"]) for article in articles)
