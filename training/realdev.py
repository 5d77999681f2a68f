"""The real-news development set: stand-off annotations of third-party articles, rebuilt locally.

Real articles belong to their publishers, so their text is never committed. `datasets/real-dev/
annotations.jsonl` keeps, per article, what lets anyone rebuild and check it: `url`, the search `query`
that found it, `text_sha256`, title, source, date, storyline, region, aliases, and per pair the labels,
the evidence offsets and the exact evidence quotes. `rebuild` joins those records with a texts file
(`{"url", "text"}` lines) into a corpus-format JSONL under `data/`, refusing any text whose hash or
quotes do not match, so what is scored is exactly what was annotated.

Some pages are held out for the product's final check and must never be annotated: their URLs, and
the sentences of syndicated copies, are listed as SHA-256 hashes (`HeldoutLists`). The team's authoring
tool (`python -m training.realdev author`) refuses them, and a test checks the committed set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.data import validate_lines
from training.files import write_lines_atomically
from training.labels import SENTIMENT_LABELS, STANCE_LABELS

ANNOTATIONS = Path("datasets/real-dev/annotations.jsonl")
FIRST_ANNOTATION = Path("datasets/real-dev/first-annotation.jsonl")
SECOND_ANNOTATION = Path("datasets/real-dev/second-annotation.jsonl")
DEFAULT_TEXTS = Path("data/real-dev/texts.jsonl")
DEFAULT_OUTPUT = Path("data/real-dev/dev.jsonl")
HELDOUT_DIR_ENV = "STANCELINE_HELDOUT_DIR"
MIN_HELDOUT_SENTENCES = 2
"""An article sharing this many sentences with a held-out page is a syndicated copy of it."""


class RealDevError(ValueError):
    """The stand-off records and the texts do not fit together; carries every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s); nothing was written:\n{shown}{more}")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def url_sha256(url: str) -> str:
    """Hash of a URL exactly as the search tool prints it (the held-out list's form)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def sentence_hashes(text: str) -> set[str]:
    """Hashes of a text's sentences of 60+ characters, normalised as the held-out sentence list is."""
    hashes = set()
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if len(sentence.strip()) >= 60:
            normalised = re.sub(r"\s+", " ", sentence.strip().lower())
            hashes.add(hashlib.sha256(normalised.encode("utf-8")).hexdigest())
    return hashes


def _read_hash_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


@dataclass(frozen=True)
class HeldoutLists:
    """Hashes of the pages kept for the product's final check: never read, annotated or trained on."""

    urls: set[str]
    sentences: set[str]

    @classmethod
    def from_folder(cls, folder: Path | str) -> HeldoutLists:
        folder = Path(folder)
        return cls(_read_hash_list(folder / "heldout-urls.sha256"), _read_hash_list(folder / "heldout-sentences.sha256"))

    @classmethod
    def default_folder(cls) -> Path:
        """`$STANCELINE_HELDOUT_DIR`, else the `shared/` folder beside the checkout."""
        return Path(os.environ.get(HELDOUT_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared")

    def reason_to_refuse(self, url: str, text: str | None = None) -> str | None:
        """Why this page must not be used, or None."""
        if url_sha256(url) in self.urls:
            return f"{url} is a held-out page"
        if text is not None:
            shared = len(sentence_hashes(text) & self.sentences)
            if shared >= MIN_HELDOUT_SENTENCES:
                return f"{url} shares {shared} sentences with held-out pages (a syndicated copy)"
        return None


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise RealDevError([f"{path}:{number}: bad JSON: {error.msg}"]) from None
    return rows


def read_texts(path: Path | str) -> dict[str, str]:
    """url -> text from a texts file; two different texts for one URL is an error."""
    texts: dict[str, str] = {}
    problems = []
    for number, row in enumerate(read_jsonl(path), start=1):
        url, text = row.get("url"), row.get("text")
        if not isinstance(url, str) or not isinstance(text, str):
            problems.append(f"{path}:{number}: each line needs string fields url and text")
        elif texts.get(url, text) != text:
            problems.append(f"{path}:{number}: a second, different text for {url}")
        else:
            texts[url] = text
    if problems:
        raise RealDevError(problems)
    return texts


def article_from_record(record: dict[str, Any], text: str, relocate: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The corpus-format article of one stand-off record, and what does not match in its text.

    With `relocate`, a text whose hash differs (another copy of the page: other boilerplate, other
    spacing) is still taken when every evidence quote occurs in it exactly; the offsets are then
    found again from the quotes."""
    where = record.get("id", "?")
    problems = []
    same_copy = text_sha256(text) == record["text_sha256"]
    if not same_copy and not relocate:
        problems.append(
            f"{where}: the text given for {record['url']} does not match its SHA-256 (a different copy or a changed "
            "page; --relocate accepts it when every evidence quote is in it)"
        )
        return {}, problems
    annotations = []
    for annotation in record["annotations"]:
        evidence = []
        for (start, end), quote in zip(annotation["evidence"], annotation["quotes"], strict=True):
            if not same_copy:
                found = text.find(quote)
                start, end = (found, found + len(quote)) if found >= 0 else (start, end)
            if text[start:end] != quote:
                problems.append(
                    f"{where}: {annotation['party']}/{annotation['issue']}: evidence [{start}, {end}] is not its quote"
                )
            evidence.append([start, end])
        annotations.append({**{key: value for key, value in annotation.items() if key != "quotes"}, "evidence": evidence})
    article = {
        "id": record["id"],
        "title": record["title"],
        "date": record.get("date") or "",
        "source": record["source"],
        "storyline": record["storyline"],
        "text": text,
        "aliases": record.get("aliases", {}),
        "annotations": annotations,
    }
    return article, problems


def rebuild(
    texts_path: Path | str,
    output: Path | str = DEFAULT_OUTPUT,
    annotations_path: Path | str = ANNOTATIONS,
    allow_missing: bool = False,
    relocate: bool = False,
) -> dict[str, int]:
    """Write the corpus-format real-dev set from stand-off records and a texts file.

    Any text that does not match its record is refused and nothing is written; an article whose URL
    is absent from the texts file is an error too unless `allow_missing` (then it is left out and counted).
    """
    records = read_jsonl(annotations_path)
    texts = read_texts(texts_path)
    articles, problems, missing = [], [], 0
    for record in records:
        text = texts.get(record["url"])
        if text is None:
            missing += 1
            if not allow_missing:
                problems.append(f"{record['id']}: no text for {record['url']} in {texts_path}")
            continue
        article, found = article_from_record(record, text, relocate)
        problems += found
        if not found:
            articles.append(article)
    lines = [json.dumps(article) + "\n" for article in articles]
    _, invalid = validate_lines(lines, str(output))
    problems += [str(problem) for problem in invalid]
    if problems:
        raise RealDevError(problems)
    write_lines_atomically(output, lines)
    return {"articles": len(articles), "pairs": sum(len(a["annotations"]) for a in articles), "missing": missing}


# --- the team's tools: authoring the stand-off records, and the blind second annotation's agreement ---


def locate(text: str, quote: str, where: str) -> list[int]:
    """Offsets of `quote` in `text` (its first occurrence); a quote that is not there is an error."""
    start = text.find(quote)
    if start < 0 or not quote.strip():
        raise RealDevError([f"{where}: quote not found in the text: {quote[:80]!r}"])
    return [start, start + len(quote)]


def record_from_files(text: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A stand-off record from an annotator's text and annotation files (quotes -> offsets)."""
    annotations = []
    for annotation in meta["annotations"]:
        where = f"{meta['id']}: {annotation['party']}/{annotation['issue']}"
        quotes = list(dict.fromkeys(annotation["quotes"]))
        annotations.append(
            {
                "party": annotation["party"],
                "issue": annotation["issue"],
                "stance": annotation["stance"],
                "sentiment": annotation["sentiment"],
                **({"role": annotation["role"]} if annotation.get("role") else {}),
                "evidence": [locate(text, quote, where) for quote in quotes],
                "quotes": quotes,
            }
        )
    return {
        "id": meta["id"],
        "url": meta["url"],
        "query": meta["query"],
        "text_sha256": text_sha256(text),
        "title": meta["title"],
        "source": meta["source"],
        "date": meta.get("date") or None,
        "storyline": meta["storyline"],
        "region": meta["region"],
        "aliases": meta.get("aliases") or {},
        "annotations": annotations,
    }


def author(folders: list[Path], annotations_out: Path, texts_out: Path, heldout: HeldoutLists) -> dict[str, int]:
    """Turn annotators' folders (`ID.txt` + `ID.json`) into the committed records and the local texts file."""
    records, texts, problems = [], [], []
    for folder in folders:
        for meta_path in sorted(folder.glob("*.json")):
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            text = meta_path.with_suffix(".txt").read_text(encoding="utf-8")
            refused = heldout.reason_to_refuse(meta["url"], text)
            if refused:
                problems.append(f"{meta['id']}: {refused}")
                continue
            try:
                records.append(record_from_files(text, meta))
            except RealDevError as error:
                problems += error.problems
            texts.append({"url": meta["url"], "text": text})
    if problems:
        raise RealDevError(problems)
    write_lines_atomically(annotations_out, [json.dumps(r, ensure_ascii=False) + "\n" for r in records])
    write_lines_atomically(texts_out, [json.dumps(t) + "\n" for t in texts])
    return {"articles": len(records), "pairs": sum(len(r["annotations"]) for r in records)}


def label_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One `{id, party, issue, stance, sentiment}` row per pair of the stand-off records."""
    return [
        {"id": record["id"], **{key: annotation[key] for key in ("party", "issue", "stance", "sentiment")}}
        for record in records
        for annotation in record["annotations"]
    ]


def agreement(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> dict[str, Any]:
    """Cohen's kappa and raw agreement of two label sets (`label_rows`) over the pairs they share, per task."""
    from sklearn.metrics import cohen_kappa_score

    other = {(row["id"], row["party"], row["issue"]): row for row in second}
    paired = [(row, other[key]) for row in first if (key := (row["id"], row["party"], row["issue"])) in other]
    result: dict[str, Any] = {"pairs": len(paired)}
    for task, labels in (("stance", STANCE_LABELS), ("sentiment", SENTIMENT_LABELS)):
        gold = [a[task] for a, _ in paired]
        other = [b[task] for _, b in paired]
        result[task] = {
            "kappa": round(float(cohen_kappa_score(gold, other, labels=list(labels))), 3),
            "agreement": round(sum(g == o for g, o in zip(gold, other, strict=True)) / max(len(paired), 1), 3),
            "disagreements": dict(Counter(f"{g}->{o}" for g, o in zip(gold, other, strict=True) if g != o)),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.realdev", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("author", help="annotators' folders -> datasets/real-dev/annotations.jsonl + texts file")
    write.add_argument("folders", nargs="+", type=Path)
    write.add_argument("--output", type=Path, default=ANNOTATIONS)
    write.add_argument("--texts", type=Path, default=DEFAULT_TEXTS)
    commands.add_parser(
        "agreement", help="Cohen's kappa: first against blind second annotation, and each against the adjudicated labels"
    )
    args = parser.parse_args(argv)
    if args.command == "author":
        print(author(args.folders, args.output, args.texts, HeldoutLists.from_folder(HeldoutLists.default_folder())))
    else:
        first, second = read_jsonl(FIRST_ANNOTATION), read_jsonl(SECOND_ANNOTATION)
        adjudicated = label_rows(read_jsonl(ANNOTATIONS))
        report = {
            "first_vs_blind_second": agreement(first, second),
            "adjudicated_vs_first": agreement(adjudicated, first),
            "adjudicated_vs_second": agreement(adjudicated, second),
        }
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
