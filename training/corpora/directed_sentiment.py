"""Directed sentiment (Park, Pan & Joo, "Who Blames or Endorses Whom?", Findings of ACL 2021; no licence
file upstream: research use, opt-in, never redistributed): news sentences with two bracketed entities p
and q, labelled with who holds an opinion of whom: 0 none, 1 p positive toward q, 2 q positive toward p,
3 p negative toward q, 4 q negative toward p.

Each row is two pairs, p on q and q on p. The holder of the opinion (p for 1 and 3, q for 2 and 4) is
`cooperative` toward the other when positive and `pressure` when negative (role `agent`); the entity the
opinion is about is acted upon, so `neutral` toward the holder (guideline 7, role `acted-upon`); label 0
is `neutral` both ways (no role). Stance only: no sentiment is trained from it, as with PLOVER. Sample
check on train.txt (read, not copied): of 40 negative rows (3/4), 29 blame, accuse, criticise, condemn,
oppose or attack the other (`pressure`), 3 only judge or portray it negatively (a dislike, an
assessment), 8 state no opinion between the two (misaligned entities, sports results, noise); of 20
positive rows (1/2), 11 support, praise, thank, accept or work with the other (`cooperative`), 9 are
noise of the same kind. So "negative toward" mostly reads as pressure, with upstream noise.

Reading: tab-separated with CSV quoting (some sentences are quoted with doubled inner quotes). The
entities' brackets are removed; each entity becomes the span its brackets enclosed, trimmed of spaces
and widened to whole words, since upstream cut a trailing "s" off the names (in 18% of the
brackets: "[Veldlander]s" is read as "Veldlanders"), less a possessive ("[Veldland’]s" is "Veldland").
A row with a wrong column count or an unknown label is an error naming file and line. A row whose p or q
is not one of the sentence's bracketed spans, or whose entity has no letter (an upstream span on a
punctuation mark or a number: 177 of the 14,605 real rows, nearly all label 0), is skipped and the count
logged. It is not in the default recipe: `stanceline data directed-sentiment`, then
`public_corpora = [..., "directed-sentiment"]`. Split files: train (train.txt), dev (valid.txt,
`directed-sentiment:dev`); upstream's test.txt is held back.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from training.corpora.base import Corpus, SourceFile, sentence_pair_examples, sentence_pair_item, trimmed
from training.examples import Example
from training.items import EvalItem
from training.predictor import PairRequest

logger = logging.getLogger(__name__)

NAME = "directed-sentiment"
BASE_URL = "https://raw.githubusercontent.com/bywords/directed_sentiment_analysis/6a1275f0/dataset"
SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt"}
HOLDER = {1: ("p", "cooperative"), 2: ("q", "cooperative"), 3: ("p", "pressure"), 4: ("q", "pressure")}
"""Label -> (which entity holds the opinion, its stance toward the other); label 0: no opinion."""
LABELS = (0, *HOLDER)
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
_LETTER = re.compile(r"[^\W\d_]")

Span = tuple[int, int]


@dataclass(frozen=True)
class DirectedRow:
    sentence: str
    p: str
    q: str
    p_span: Span
    q_span: Span
    label: int


def scan_directed(path: Path) -> tuple[list[DirectedRow], dict[str, list[int]]]:
    """The rows of a `sentence<TAB>p<TAB>q<TAB>label` file, and the line numbers of the rows skipped, by
    reason ("not bracketed": p or q is not a bracketed span of the sentence; "no letter": p or q, as
    bracketed upstream, has no letter). A wrong column count or an unknown label is an error naming file and line."""
    rows: list[DirectedRow] = []
    skipped: dict[str, list[int]] = {"not bracketed": [], "no letter": []}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for fields in reader:
            line = reader.line_num
            if not "".join(fields).strip():
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}:{line}: expected sentence<TAB>p<TAB>q<TAB>label, got {len(fields)} field(s)")
            raw, p, q, label_text = fields
            try:
                label = int(label_text)
            except ValueError:
                label = -1
            if label not in LABELS:
                raise ValueError(f"{path}:{line}: label {label_text[:20]!r} is not one of {list(LABELS)}")
            parsed = _unbracket(raw, p.strip(), q.strip())
            if parsed is None:
                skipped["not bracketed"].append(line)
                continue
            if not (_LETTER.search(p) and _LETTER.search(q)):
                skipped["no letter"].append(line)
                continue
            sentence, p_span, q_span = parsed
            rows.append(DirectedRow(sentence, sentence[slice(*p_span)], sentence[slice(*q_span)], p_span, q_span, label))
    return rows, skipped


def read_directed(path: Path) -> list[DirectedRow]:
    """`scan_directed`'s rows; the skipped rows are counted in a warning."""
    rows, skipped = scan_directed(path)
    total = sum(len(lines) for lines in skipped.values())
    if total:
        detail = ", ".join(f"{len(lines)} {reason} (first at line {lines[0]})" for reason, lines in skipped.items() if lines)
        logger.warning("%s: skipped %d of %d rows whose entity is unusable: %s", path, total, total + len(rows), detail)
    return rows


def _unbracket(raw: str, p: str, q: str) -> tuple[str, Span, Span] | None:
    """The sentence without the brackets of p and q (the first bracketed spans that read p and q; any
    other bracket stays as text), stripped, with each entity's span trimmed and widened to whole words;
    None when p or q is not a bracketed span."""
    matches = list(_BRACKETED.finditer(raw))
    p_match = next((m for m in matches if m.group(1).strip() == p), None)
    q_match = next((m for m in matches if m is not p_match and m.group(1).strip() == q), None)
    if p_match is None or q_match is None or not p or not q:
        return None
    pieces, spans, cursor, length = [], {}, 0, 0
    for key, match in sorted((("p", p_match), ("q", q_match)), key=lambda item: item[1].start()):
        before = raw[cursor : match.start()]
        pieces += [before, match.group(1)]
        start = length + len(before)
        length = start + len(match.group(1))
        spans[key] = (start, length)
        cursor = match.end()
    pieces.append(raw[cursor:])
    text = "".join(pieces)
    offset = len(text) - len(text.lstrip())
    sentence = text.strip()
    p_span, q_span = ((s - offset, e - offset) for s, e in (spans["p"], spans["q"]))
    # each entity widens up to the other one, never into it
    p_limits = (0, q_span[0]) if p_span[0] < q_span[0] else (q_span[1], len(sentence))
    q_limits = (0, p_span[0]) if q_span[0] < p_span[0] else (p_span[1], len(sentence))
    return sentence, _whole_words(sentence, p_span, p_limits), _whole_words(sentence, q_span, q_limits)


def _whole_words(text: str, span: Span, limits: Span) -> Span:
    """`span` trimmed of spaces, widened to whole words within `limits`, less a trailing possessive."""
    start, end = trimmed(text, span)
    if start < end:
        while start > limits[0] and text[start - 1].isalnum():
            start -= 1
        while end < limits[1] and text[end].isalnum():
            end += 1
        if end - start > 2 and text[start:end].endswith(("’s", "'s")):  # "[Veldland’]s" names Veldland
            end -= 2
        while end > start + 1 and text[end - 1] in "’'":
            end -= 1
    return trimmed(text, (start, end))


def directed_pairs(row: DirectedRow) -> list[tuple[PairRequest, str, str | None]]:
    """(pair as a user asks it, gold stance, role) for p on q, then q on p."""
    p_on_q = PairRequest(row.p, row.q, [row.p_span])
    q_on_p = PairRequest(row.q, row.p, [row.q_span])
    if row.label == 0:
        return [(p_on_q, "neutral", None), (q_on_p, "neutral", None)]
    holder, stance = HOLDER[row.label]
    if holder == "p":
        return [(p_on_q, stance, "agent"), (q_on_p, "neutral", "acted-upon")]
    return [(p_on_q, "neutral", "acted-upon"), (q_on_p, stance, "agent")]


def read_split(path: Path) -> list[DirectedRow]:
    """The rows of a split file; for training (`train.txt`) only the rows with an opinion, in a fixed
    order mixed by a hash of the sentence.

    Two in three rows have no opinion (two names merely in one sentence) and would make the corpus
    four-fifths `neutral`; an opinion row gives the same sentence both ways, the holder's stance beside
    the neutral of the party it is about, which is the contrast this corpus is read for. The file is
    sorted by label and a run takes a corpus's rows in file order, so unmixed a capped run would read
    one label only. Evaluation (`valid.txt`) keeps every row."""
    rows = read_directed(path)
    if path.name != SPLIT_FILES["train"]:
        return rows
    opinions = [row for row in rows if row.label != 0]
    return sorted(opinions, key=lambda row: hashlib.sha256(f"{row.sentence}\t{row.p}\t{row.q}".encode()).hexdigest())


def directed_examples(rows: list[DirectedRow], window_chars: int, issue_markers: bool = False) -> list[Example]:
    """Each entity's stance toward the other, its own span marked; with `issue_markers`, the other
    entity's span is the issue's mention. No sentiment."""
    return [
        example
        for row in rows
        for example in sentence_pair_examples(
            NAME,
            row.sentence,
            [
                (request, stance, other)
                for (request, stance, _), other in zip(directed_pairs(row), (row.q_span, row.p_span), strict=True)
            ],
            window_chars,
            issue_markers,
        )
    ]


def directed_items(rows: list[DirectedRow]) -> list[EvalItem]:
    return [sentence_pair_item(row.sentence, directed_pairs(row)) for row in rows]


def split_file(split: str) -> str:
    if split not in SPLIT_FILES:
        raise ValueError(f"{NAME} has splits {' and '.join(SPLIT_FILES)}, not {split!r}")
    return SPLIT_FILES[split]


CORPUS = Corpus(
    name=NAME,
    description="news sentences with two entities and who holds a positive or negative opinion of whom",
    licence="no licence upstream: research use, never redistributed",
    in_default_recipe=False,
    sources=(
        SourceFile("train.txt", f"{BASE_URL}/train.txt", "0b608a7e376bcd73aad9f0f211d0c29e5fe520a281d1d4b3f5e4e37a20a0636b"),
        SourceFile("valid.txt", f"{BASE_URL}/valid.txt", "e4bd17fd9f419acd034912de9bfc746a7e400d84496e6082cd18e30b4cedface"),
    ),
    file=split_file,
    read=read_split,
    text=None,
    examples=directed_examples,
    items=directed_items,
)
