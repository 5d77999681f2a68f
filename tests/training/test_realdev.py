"""The real-news dev set: the committed stand-off records, and rebuilding them from texts."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from stanceline.cli import main as cli_main
from training import realdev
from training.labels import ROLES, SENTIMENT_LABELS, STANCE_LABELS

ROOT = Path(__file__).resolve().parents[2]
TEXT = (
    "Ministers of Arlenia and Bostovia met in Geneva on Monday. Arlenia demanded that Bostovia withdraw its "
    "troops from the border within a week. Bostovia agreed to resume talks on the border with Arlenia next month."
)


def make_record(text: str = TEXT) -> dict:
    meta = {
        "id": "t-001",
        "url": "https://news.example/arlenia-bostovia",
        "query": "Arlenia Bostovia border talks",
        "title": "Border talks",
        "source": "Example Wire",
        "date": None,
        "storyline": "arlenia-border",
        "region": "Europe",
        "aliases": {},
        "annotations": [
            {
                "party": "Arlenia",
                "issue": "border",
                "stance": "pressure",
                "sentiment": "neutral",
                "role": "agent",
                "quotes": ["Arlenia demanded that Bostovia withdraw its troops from the border within a week."],
            },
            {
                "party": "Bostovia",
                "issue": "border talks",
                "stance": "cooperative",
                "sentiment": "neutral",
                "quotes": ["Bostovia agreed to resume talks on the border with Arlenia next month."],
            },
        ],
    }
    return realdev.record_from_files(text, meta)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_rebuild_turns_records_and_texts_into_the_corpus_format(tmp_path: Path) -> None:
    record = make_record()
    annotations = write_jsonl(tmp_path / "annotations.jsonl", [record])
    texts = write_jsonl(tmp_path / "texts.jsonl", [{"url": record["url"], "text": TEXT}])
    summary = realdev.rebuild(texts, tmp_path / "out" / "dev.jsonl", annotations)
    assert summary == {"articles": 1, "pairs": 2, "missing": 0}
    [article] = [json.loads(line) for line in (tmp_path / "out" / "dev.jsonl").read_text().splitlines()]
    assert article["text"] == TEXT and article["date"] == ""
    first = article["annotations"][0]
    assert "quotes" not in first and first["role"] == "agent"
    start, end = first["evidence"][0]
    assert TEXT[start:end].startswith("Arlenia demanded")


def test_rebuild_refuses_a_different_copy_and_writes_nothing(tmp_path: Path) -> None:
    record = make_record()
    annotations = write_jsonl(tmp_path / "annotations.jsonl", [record])
    texts = write_jsonl(tmp_path / "texts.jsonl", [{"url": record["url"], "text": TEXT.replace("Monday", "Tuesday")}])
    output = tmp_path / "dev.jsonl"
    with pytest.raises(realdev.RealDevError, match="does not match its SHA-256"):
        realdev.rebuild(texts, output, annotations)
    assert not output.exists()


def test_rebuild_refuses_evidence_that_is_not_its_quote(tmp_path: Path) -> None:
    record = make_record()
    record["annotations"][1]["evidence"][0][0] += 1
    annotations = write_jsonl(tmp_path / "annotations.jsonl", [record])
    texts = write_jsonl(tmp_path / "texts.jsonl", [{"url": record["url"], "text": TEXT}])
    with pytest.raises(realdev.RealDevError, match="Bostovia/border talks: evidence .* is not its quote"):
        realdev.rebuild(texts, tmp_path / "dev.jsonl", annotations)


def test_a_missing_text_is_an_error_unless_allowed(tmp_path: Path) -> None:
    annotations = write_jsonl(tmp_path / "annotations.jsonl", [make_record()])
    texts = write_jsonl(tmp_path / "texts.jsonl", [])
    with pytest.raises(realdev.RealDevError, match="no text for"):
        realdev.rebuild(texts, tmp_path / "dev.jsonl", annotations)
    summary = realdev.rebuild(texts, tmp_path / "dev.jsonl", annotations, allow_missing=True)
    assert summary == {"articles": 0, "pairs": 0, "missing": 1}


def test_authoring_refuses_a_quote_that_is_not_in_the_text() -> None:
    with pytest.raises(realdev.RealDevError, match="quote not found"):
        realdev.record_from_files(
            TEXT, {**make_record(), "annotations": [{**make_record()["annotations"][0], "quotes": ["Cyrenia"]}]}
        )


def test_held_out_pages_and_their_syndicated_copies_are_refused() -> None:
    sentences = re.split(r"(?<=[.!?])\s+", TEXT)
    lists = realdev.HeldoutLists(
        urls={realdev.url_sha256("https://held.example/a")},
        sentences=realdev.sentence_hashes(f"{sentences[1]} {sentences[2]}"),
    )
    assert "held-out page" in lists.reason_to_refuse("https://held.example/a")
    assert lists.reason_to_refuse("https://held.example/a/") is None
    assert "syndicated copy" in lists.reason_to_refuse("https://copy.example/b", TEXT.upper())
    assert lists.reason_to_refuse("https://copy.example/b", sentences[1]) is None


def test_the_command_says_what_real_dev_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["data", "real-dev"]) != 0
    assert "needs --texts FILE" in capsys.readouterr().err


# --- the committed set ---

RECORDS = realdev.read_jsonl(ROOT / realdev.ANNOTATIONS)


def test_the_committed_set_is_large_and_well_formed() -> None:
    assert len(RECORDS) >= 80 and sum(len(r["annotations"]) for r in RECORDS) >= 400
    assert len({r["id"] for r in RECORDS}) == len(RECORDS) and len({r["url"] for r in RECORDS}) == len(RECORDS)
    assert max(Counter(r["storyline"] for r in RECORDS).values()) <= 2
    for record in RECORDS:
        assert "text" not in record and len(record["text_sha256"]) == 64 and record["query"]
        for annotation in record["annotations"]:
            assert annotation["stance"] in STANCE_LABELS and annotation["sentiment"] in SENTIMENT_LABELS
            assert annotation.get("role", "other") in ROLES
            assert [end - start for start, end in annotation["evidence"]] == [len(q) for q in annotation["quotes"]]


def test_no_committed_page_is_held_out() -> None:
    folder = realdev.HeldoutLists.default_folder()
    if not (folder / "heldout-urls.sha256").exists():
        pytest.skip(f"the held-out lists are not at {folder} (set {realdev.HELDOUT_DIR_ENV})")
    lists = realdev.HeldoutLists.from_folder(folder)
    for record in RECORDS:
        quotes = " ".join(q for a in record["annotations"] for q in a["quotes"])
        assert lists.reason_to_refuse(record["url"], quotes) is None, record["id"]


def test_agreement_is_cohens_kappa_over_shared_pairs() -> None:
    rows = [
        {"id": "a", "party": p, "issue": "x", "stance": s, "sentiment": "neutral"}
        for p, s in [("P", "pressure"), ("Q", "cooperative"), ("R", "neutral"), ("S", "pressure")]
    ]
    flipped = [dict(rows[0], stance="neutral"), *rows[1:], dict(rows[0], party="unshared")]
    assert realdev.agreement(rows, rows)["stance"]["kappa"] == 1.0
    result = realdev.agreement(rows, flipped)
    assert result["pairs"] == 4 and result["stance"]["agreement"] == 0.75
    assert result["stance"]["disagreements"] == {"pressure->neutral": 1} and result["stance"]["kappa"] < 1


def test_the_committed_set_was_annotated_twice_with_substantial_agreement() -> None:
    first = realdev.read_jsonl(ROOT / realdev.FIRST_ANNOTATION)
    second = realdev.read_jsonl(ROOT / realdev.SECOND_ANNOTATION)
    result = realdev.agreement(first, second)
    assert result["pairs"] == len(realdev.label_rows(RECORDS)) == len(first) == len(second)
    assert result["stance"]["kappa"] >= 0.80


def test_relocate_takes_another_copy_only_when_every_quote_is_in_it(tmp_path: Path) -> None:
    record = make_record()
    annotations = write_jsonl(tmp_path / "annotations.jsonl", [record])
    copy = "Example Wire | Menu | Subscribe\n\n" + TEXT.replace("Monday", "Tuesday")
    texts = write_jsonl(tmp_path / "texts.jsonl", [{"url": record["url"], "text": copy}])
    realdev.rebuild(texts, tmp_path / "dev.jsonl", annotations, relocate=True)
    [article] = realdev.read_jsonl(tmp_path / "dev.jsonl")
    start, end = article["annotations"][1]["evidence"][0]
    assert copy[start:end] == record["annotations"][1]["quotes"][0]
    changed = write_jsonl(tmp_path / "changed.jsonl", [{"url": record["url"], "text": copy.replace("agreed", "refused")}])
    with pytest.raises(realdev.RealDevError, match="Bostovia/border talks: evidence .* is not its quote"):
        realdev.rebuild(changed, tmp_path / "dev2.jsonl", annotations, relocate=True)
