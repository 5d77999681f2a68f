import json

import pytest

from stanceline.cli import main
from training.data import InvalidCorpusError, load_articles, validate_lines

GOOD = {
    "id": "a1",
    "title": "t",
    "date": "2020-01-01",
    "source": "s",
    "storyline": "s1",
    "text": "Japan warned Russia.",
    "annotations": [{"party": "Japan", "issue": "Russia", "stance": "pressure", "sentiment": "neutral", "evidence": [[0, 20]]}],
}


def line(**changes) -> str:
    record = json.loads(json.dumps(GOOD))
    annotation_changes = changes.pop("annotation", {})
    record.update(changes)
    record["annotations"][0].update(annotation_changes)
    return json.dumps(record)


def problems_of(*lines: str) -> list[str]:
    return [f"{p.line}:{p.field}:{p.message}" for p in validate_lines(list(lines), "f.jsonl")[1]]


def test_a_valid_article_has_no_problems():
    assert problems_of(line()) == []


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("{not json", "1:json:bad JSON"),
        (line(annotation={"stance": "hostile"}), "1:annotations[0].stance:unknown label 'hostile'"),
        (line(annotation={"sentiment": "angry"}), "1:annotations[0].sentiment:unknown label 'angry'"),
        (line(annotation={"evidence": [[5, 99]]}), "1:annotations[0].evidence[0]:offsets [5, 99] outside the text"),
        (line(annotation={"evidence": []}), "1:annotations[0].evidence:must be a non-empty list"),
        (line(annotation={"party": ""}), "1:annotations[0].party:must be a non-empty string"),
        (line(text=""), "1:text:missing or empty"),
    ],
)
def test_each_problem_is_reported_with_line_and_field(bad_line, expected):
    assert any(problem.startswith(expected) for problem in problems_of(bad_line)), problems_of(bad_line)


def test_duplicate_ids_and_pairs_annotated_twice_are_reported():
    record = json.loads(line())
    record["annotations"].append(dict(record["annotations"][0]))
    problems = problems_of(line(), json.dumps(record))
    assert any(p.startswith("2:id:duplicate id 'a1' (first on line 1)") for p in problems)
    assert any(p.startswith("2:annotations[1]:pair 'Japan'/'Russia' annotated twice") for p in problems)


def test_every_problem_of_a_file_is_reported_not_only_the_first():
    problems = problems_of("{bad", line(id="b", annotation={"stance": "x"}), line(id="c", annotation={"evidence": [[0, 500]]}))
    assert [p.split(":")[0] for p in problems] == ["1", "2", "3"]


def test_load_articles_refuses_an_invalid_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(line() + "\n" + line(id="z", annotation={"stance": "x"}) + "\n")
    with pytest.raises(InvalidCorpusError, match="bad.jsonl:2: annotations\\[0\\].stance"):
        load_articles(path)


def test_validate_command_exits_non_zero_and_prints_problems(tmp_path, capsys):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(line() + "\n")
    bad.write_text(line(annotation={"evidence": [[0, 999]]}) + "\n")
    assert main(["validate", str(good)]) == 0
    assert main(["validate", str(bad)]) == 1
    assert "bad.jsonl:1: annotations[0].evidence[0]: offsets [0, 999] outside the text" in capsys.readouterr().out


def test_bundled_corpus_is_valid_and_split_by_storyline():
    splits = {name: load_articles(f"datasets/stanceline-wire/{name}.jsonl") for name in ("train", "dev", "test")}
    storylines = {name: {a["storyline"] for a in articles} for name, articles in splits.items()}
    assert not storylines["train"] & storylines["test"]
    assert not storylines["train"] & storylines["dev"]
    assert not storylines["dev"] & storylines["test"]
    total = sum(len(articles) for articles in splits.values())
    assert len(splits["test"]) >= 0.2 * total
