"""Public corpora: fetching them at `make data` time and converting them into examples.

Nothing from these corpora is committed. `fetch` downloads each file from its upstream address (or
copies it from an offline mirror folder, `STANCELINE_DATA_MIRROR`, taken as it is since a mirror may
hold a subset) into `data/<corpus>/` and records where it came from and its SHA-256 in
`data/SOURCES.json`. Converters:

- NewsMTSC (Hamborg & Donnay, EACL 2021; MIT): sentiment toward the marked mention of one sentence,
  polarity -1/0/1 to negative/neutral/positive. Trained as party-only input (no issue) with the
  mention given as its span, exactly how `stanceline predict` is called with `spans`.
- UN QuadClass ("Keep it Local", Osorio et al. 2024; MIT): whole-sentence stance, 2 and 4 cooperative,
  1 and 3 pressure, 0 neutral, -1 (multi-label) dropped. Trained as `overall` input (no target).
- PLOVER (Zero-Shot-PLOVER PLV train split, Hu et al., ACL 2024; research use): real wire sentences
  with the source and the target actor marked. The source on the target is a pair (source as party,
  with its span pinned; target as issue): quad class 1-2 cooperative, 3-4 pressure. The reverse pair,
  the target on the source, is `neutral` when the event is one-sided (`ONE_SIDED_ROOTS`: the target
  only receives the act, guideline rule 7), which teaches agent from patient; for AGREE, CONSULT,
  COOPERATE (mutual acts) and REJECT (the target made the rejected demand or offer) the sentence may
  give the target a stance of its own, so no reverse pair is made.

UN QuadClass and PLOVER have one file; a deterministic 15% of its sentences (by a hash of the text) is
the dev portion, never trained on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.examples import Example
from training.items import OVERALL, EvalItem
from training.labels import IGNORE_INDEX
from training.predictor import Document, PairRequest
from training.windows import overall_inputs, pair_inputs

POLARITY = {-1: "negative", 0: "neutral", 1: "positive"}
QUADCLASS = {0: "neutral", 1: "pressure", 2: "cooperative", 3: "pressure", 4: "cooperative"}
DEV_SHARE = 0.15
PLOVER_STANCE = {1: "cooperative", 2: "cooperative", 3: "pressure", 4: "pressure"}
ONE_SIDED_ROOTS = frozenset(
    {"SUPPORT", "AID", "YIELD", "REQUEST", "ACCUSE", "THREATEN", "PROTEST", "SANCTION", "MOBILIZE", "COERCE", "ASSAULT"}
)
MIRROR_SETTING = "STANCELINE_DATA_MIRROR"


@dataclass(frozen=True)
class SourceFile:
    corpus: str
    name: str
    url: str
    sha256: str | None
    """Pinned checksum of the upstream file; None where only a subset was ever seen offline."""


NEWSMTSC_BASE = (
    "https://raw.githubusercontent.com/fhamborg/NewsMTSC/main/NewsSentiment/experiments/default/datasets/newsmtsc-rw-hf"
)
PLOVER_URL = "https://raw.githubusercontent.com/snowood1/Zero-Shot-PLOVER/main/datasets/PLV_train.tsv"
QUADCLASS_URL = (
    "https://raw.githubusercontent.com/javierosorio/keep_it_local/main/1_data/en/quadclass/en_annotations_quad_multiclass.tsv"
)
SOURCES = [
    SourceFile(
        "newsmtsc",
        "train.jsonl",
        f"{NEWSMTSC_BASE}/train.jsonl",
        "e78c7964aad1d5b7dbc66cb3a05d5885dbf2e29a2a3171f0d75b497bf18f3621",
    ),
    SourceFile(
        "newsmtsc", "dev.jsonl", f"{NEWSMTSC_BASE}/dev.jsonl", "78b5dde35a97b452035c07c142fac5ecf44dd998217921cff62a1519ed01e952"
    ),
    SourceFile("un-quadclass", "en_annotations_quad_multiclass.tsv", QUADCLASS_URL, None),
    SourceFile("plover", "PLV_train.tsv", PLOVER_URL, "b184c7623cb05a48011adabd951f1a7f7efa8c80059ef4dc12c3d3231de5f5d3"),
]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(data_dir: Path | str = "data", mirror: Path | str | None = None) -> dict[str, Any]:
    """Bring every public corpus file into `data_dir`, from `mirror` when given, else from upstream.

    Each file is written to a temporary name and renamed into place only once complete (and, from
    upstream, once its checksum matches), so an interrupted fetch never leaves a partial corpus."""
    data_dir = Path(data_dir)
    mirror = Path(mirror) if mirror else (Path(os.environ[MIRROR_SETTING]) if os.environ.get(MIRROR_SETTING) else None)
    record: dict[str, Any] = {}
    for source in SOURCES:
        target = data_dir / source.corpus / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as handle:
            partial = Path(handle.name)
        try:
            if mirror is not None:
                origin = mirror / source.corpus / source.name
                if not origin.exists():
                    partial.unlink()
                    record[f"{source.corpus}/{source.name}"] = {"status": f"not in mirror {mirror}"}
                    continue
                shutil.copyfile(origin, partial)
                origin_name = f"mirror:{origin}"
            else:
                with urllib.request.urlopen(source.url, timeout=60) as response, partial.open("wb") as out:
                    shutil.copyfileobj(response, out)
                origin_name = source.url
                if source.sha256 and sha256_of(partial) != source.sha256:
                    raise ValueError(f"{source.url}: checksum {sha256_of(partial)} differs from pinned {source.sha256}")
            digest = sha256_of(partial)
            partial.chmod(0o644)
            os.replace(partial, target)
        finally:
            if partial.exists():
                partial.unlink()
        record[f"{source.corpus}/{source.name}"] = {
            "origin": origin_name,
            "sha256": digest,
            "matches_pinned": (digest == source.sha256) if source.sha256 else None,
        }
    (data_dir / "SOURCES.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def available(data_dir: Path | str) -> list[str]:
    """Public corpora present in `data_dir` (what `make data` brought in)."""
    return [name for name, corpus in CORPORA.items() if corpus.path(Path(data_dir), "train").exists()]


# --- NewsMTSC -------------------------------------------------------------------------------------
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


# --- UN QuadClass ---------------------------------------------------------------------------------
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


def hash_split(sentence: str) -> str:
    """ "dev" for a deterministic DEV_SHARE of sentences (by a hash of the text), else "train"."""
    bucket = int(hashlib.sha256(sentence.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "dev" if bucket < DEV_SHARE else "train"


def quadclass_examples(rows: list[tuple[str, str]], window_chars: int, issue_markers: bool = False) -> list[Example]:
    """Whole-sentence stance (`overall`: no party or issue to mark)."""
    return [
        Example.from_input(model_input, stance, None, "un-quadclass")
        for sentence, stance in rows
        for model_input in overall_inputs(sentence, window_chars)
    ]


# --- PLOVER ---------------------------------------------------------------------------------------
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
            trimmed = {key: _trim(sentence, span) for key, span in spans.items()}
            if any(start >= end for start, end in trimmed.values()):
                raise ValueError(f"{path}:{line_number}: an empty source or target mention")
            rows.append(
                PloverRow(
                    sentence,
                    sentence[slice(*trimmed["s"])],
                    sentence[slice(*trimmed["t"])],
                    trimmed["s"],
                    trimmed["t"],
                    row["gold_root"].strip().upper(),
                    penta,
                )
            )
    return rows


def _trim(text: str, span: tuple[int, int]) -> tuple[int, int]:
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def plover_pairs(row: PloverRow) -> list[tuple[PairRequest, str, str]]:
    """(pair as a user asks it, gold stance, role) for the source on the target and, for a one-sided
    event, the target on the source."""
    pairs = [(PairRequest(row.source, row.target, [row.source_span]), PLOVER_STANCE[row.penta], "agent")]
    if row.root in ONE_SIDED_ROOTS:
        pairs.append((PairRequest(row.target, row.source, [row.target_span]), "neutral", "acted-upon"))
    return pairs


def plover_examples(rows: list[PloverRow], window_chars: int, issue_markers: bool = False) -> list[Example]:
    """Each actor's stance toward the other; with `issue_markers`, the other actor's marked span is the
    issue's mention (what serving finds for the same pair through the catalog)."""
    examples = []
    for row in rows:
        whole = [(0, len(row.sentence))]
        for request, stance, role in plover_pairs(row):
            other_span = row.target_span if role == "agent" else row.source_span  # the issue is the other actor
            other = [other_span] if issue_markers else []
            for model_input in pair_inputs(
                row.sentence, request.party, request.issue, request.spans, whole, window_chars, issue_spans=other
            ):
                examples.append(Example.from_input(model_input, stance, None, "plover"))
    return examples


def plover_items(rows: list[PloverRow]) -> list[EvalItem]:
    items = []
    for row in rows:
        pairs = plover_pairs(row)
        items.append(
            EvalItem(
                Document(row.sentence, [request for request, _, _ in pairs]),
                {index: {"stance": stance} for index, (_, stance, _) in enumerate(pairs)},
                roles={index: role for index, (_, _, role) in enumerate(pairs)},
            )
        )
    return items


# --- entry points used by training and evaluation ---------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """How one public corpus is laid out in `data/` and turned into examples and evaluation items."""

    name: str
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


CORPORA: dict[str, Corpus] = {
    "newsmtsc": Corpus(
        "newsmtsc",
        lambda split: f"{split}.jsonl",
        read_newsmtsc,
        None,
        newsmtsc_examples,
        lambda rows: [EvalItem(newsmtsc_document(row), {0: {"sentiment": POLARITY[row["polarity"]]}}) for row in rows],
    ),
    "un-quadclass": Corpus(
        "un-quadclass",
        lambda split: "en_annotations_quad_multiclass.tsv",
        read_quadclass,
        lambda row: row[0],
        quadclass_examples,
        lambda rows: [EvalItem(Document(sentence, []), {OVERALL: {"stance": stance}}) for sentence, stance in rows],
    ),
    "plover": Corpus(
        "plover", lambda split: "PLV_train.tsv", read_plover, lambda row: row.sentence, plover_examples, plover_items
    ),
}


def corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise ValueError(f"unknown public corpus {name!r}; known: {', '.join(CORPORA)}")
    return CORPORA[name]


def rows_for_run(rows: list, max_examples_per_corpus: int, passes: int = 1) -> list:
    """The rows a corpus contributes to a run of `passes` passes, `max_examples_per_corpus` rows a pass
    (0: all rows).

    Rows are taken in file order and wrap around only after the last one, so a corpus larger than
    `max_examples_per_corpus` brings different rows to each pass instead of the same rows again: more
    distinct text for the same training time."""
    if not rows:
        return []
    per_pass = min(max_examples_per_corpus or len(rows), len(rows))
    return [rows[index % len(rows)] for index in range(per_pass * passes)]


def training_examples(
    name: str,
    data_dir: Path | str,
    window_chars: int,
    max_examples_per_corpus: int = 0,
    passes: int = 1,
    issue_markers: bool = False,
) -> tuple[list[Example], dict]:
    """Examples of a public corpus's train portion for a whole run (see `rows_for_run`), and a record of
    the file for the model card."""
    source = corpus(name)
    path, rows = source.rows(data_dir, "train")
    taken = rows_for_run(rows, max_examples_per_corpus, passes)
    examples = source.examples(taken, window_chars, issue_markers)
    distinct = min(len(rows), len(taken))  # rows wrap around only after the last one
    info = {"file": str(path), "sha256": sha256_of(path), "rows": len(rows), "rows_used": distinct, "version": _version(path)}
    return examples, info


def unlabelled_examples(
    name: str,
    data_dir: Path | str,
    window_chars: int,
    count: int,
    after: int,
    issue_markers: bool = False,
) -> list[Example]:
    """Up to `count` rows of a public corpus's train portion that come after the first `after` (those a run
    trains on), read as windows with every label removed: material for learning from a teacher alone."""
    source = corpus(name)
    _, rows = source.rows(data_dir, "train")
    examples = source.examples(rows[after : after + count], window_chars, issue_markers)
    return [replace(example, stance=IGNORE_INDEX, sentiment=IGNORE_INDEX, evidence=IGNORE_INDEX) for example in examples]


def _version(path: Path) -> str:
    sources = path.parent.parent / "SOURCES.json"
    if sources.exists():
        record = json.loads(sources.read_text()).get(f"{path.parent.name}/{path.name}", {})
        return record.get("origin", "")
    return ""


def eval_items(spec: str, data_dir: Path | str = "data") -> list[EvalItem]:
    """Evaluation items for `corpus:split` (newsmtsc:dev, un-quadclass:dev, plover:dev)."""
    name, _, split = spec.partition(":")
    source = corpus(name)
    return source.items(source.rows(data_dir, split or "dev")[1])
