"""Turn authored articles (evidence as quoted substrings) into the corpus format (character offsets).

Authors write evidence as the exact text it covers, which is easy to read and review; the corpus format
stores offsets, which survive duplicate phrases and are what the validator and training use. This module
only needs the standard library so that annotators can run it before anything is installed:

    python -m training.authoring check datasets/stanceline-wire/authored/w1.jsonl
    python -m training.authoring build datasets/stanceline-wire
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

from training.files import write_lines_atomically
from training.labels import ROLES
from training.labels import SENTIMENT_LABELS as SENTIMENTS
from training.labels import STANCE_LABELS as STANCES

ARTICLE_FIELDS = ("id", "title", "date", "source", "storyline", "text", "annotations")


def resolve_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Offsets of the first occurrence of `quote` in `text`, or None when it does not occur."""
    start = text.find(quote)
    return None if start < 0 or not quote.strip() else (start, start + len(quote))


def check_authored_article(article: dict) -> list[str]:
    """Problems with one authored article, as readable strings (empty when it is fine)."""
    problems = [f"missing field {name!r}" for name in ARTICLE_FIELDS if name not in article]
    if problems:
        return problems
    text = article["text"]
    seen_pairs: set[tuple[str, str]] = set()
    for index, annotation in enumerate(article["annotations"]):
        where = f"annotations[{index}]"
        pair = (annotation.get("party", ""), annotation.get("issue", ""))
        if not pair[0] or not pair[1]:
            problems.append(f"{where}: party and issue must be non-empty")
        if pair in seen_pairs:
            problems.append(f"{where}: pair {pair} annotated twice")
        seen_pairs.add(pair)
        if annotation.get("stance") not in STANCES:
            problems.append(f"{where}: stance {annotation.get('stance')!r} not in {STANCES}")
        if annotation.get("sentiment") not in SENTIMENTS:
            problems.append(f"{where}: sentiment {annotation.get('sentiment')!r} not in {SENTIMENTS}")
        if "role" in annotation and annotation["role"] not in ROLES:
            problems.append(f"{where}: role {annotation['role']!r} not in {ROLES}")
        quotes = annotation.get("evidence") or []
        if not quotes:
            problems.append(f"{where}: evidence is empty")
        for quote in quotes:
            if not isinstance(quote, str) or resolve_quote(text, quote) is None:
                problems.append(f"{where}: evidence quote not found in text: {quote!r}")
    aliases = article.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, list) for v in aliases.values()):
        problems.append("aliases must map a party to a list of strings")
    return problems


def read_authored(path: Path) -> list[dict]:
    """Articles of one authored JSONL file, with their line numbers for error messages."""
    articles = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            article = json.loads(line)
            article["_line"] = line_number
            articles.append(article)
    return articles


def check_files(paths: list[Path]) -> int:
    """Print every problem and label shares for the given authored files; return the problem count."""
    problem_count = 0
    stances: Counter[str] = Counter()
    sentiments: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    article_count = 0
    for path in paths:
        try:
            articles = read_authored(path)
        except json.JSONDecodeError as error:
            print(f"{path}: bad JSON: {error}")
            problem_count += 1
            continue
        for article in articles:
            article_count += 1
            ids[article.get("id", "")] += 1
            for problem in check_authored_article(article):
                print(f"{path}:{article['_line']} ({article.get('id')}): {problem}")
                problem_count += 1
            for annotation in article.get("annotations", []):
                stances[annotation.get("stance")] += 1
                sentiments[annotation.get("sentiment")] += 1
    for article_id, count in ids.items():
        if count > 1:
            print(f"duplicate article id {article_id!r} ({count} times)")
            problem_count += 1
    pairs = sum(stances.values())
    print(f"{article_count} articles, {pairs} pairs, {problem_count} problems")
    for name, counter in (("stance", stances), ("sentiment", sentiments)):
        shares = ", ".join(f"{label} {count / max(pairs, 1):.0%}" for label, count in counter.most_common())
        print(f"{name}: {shares}")
    return problem_count


TEST_SHARE, DEV_SHARE = 0.22, 0.12


def assign_splits(articles: list[dict]) -> dict[str, str]:
    """Storyline to split, so every article of one story lands in the same split.

    Storylines are ordered by a hash of their id (stable as the corpus grows) and taken into test until
    test holds TEST_SHARE of the articles, then into dev until it holds DEV_SHARE; the rest is train."""
    sizes = Counter(article["storyline"] for article in articles)
    order = sorted(sizes, key=lambda storyline: hashlib.sha256(storyline.encode()).hexdigest())
    total, taken, result = len(articles), 0, {}
    for storyline in order:
        if taken < TEST_SHARE * total:
            result[storyline] = "test"
        elif taken < (TEST_SHARE + DEV_SHARE) * total:
            result[storyline] = "dev"
        else:
            result[storyline] = "train"
        taken += sizes[storyline]
    return result


def to_corpus_article(article: dict) -> dict:
    """The corpus-format record for one authored article: evidence quotes become offsets."""
    record = {name: article[name] for name in ARTICLE_FIELDS if name != "annotations"}
    if article.get("aliases"):
        record["aliases"] = article["aliases"]
    record["annotations"] = [
        {
            "party": annotation["party"],
            "issue": annotation["issue"],
            "stance": annotation["stance"],
            "sentiment": annotation["sentiment"],
            "evidence": [list(resolve_quote(article["text"], quote)) for quote in annotation["evidence"]],
            **({"role": annotation["role"]} if annotation.get("role") in ROLES else {}),
        }
        for annotation in article["annotations"]
    ]
    return record


def build_files(corpus_dir: Path) -> dict[str, int]:
    """Write `corpus_dir/NAME.jsonl` from each `corpus_dir/authored/NAME.jsonl`, file for file: for sets
    whose split is fixed by their authors (the contrast sets' train and check files)."""
    paths = sorted((corpus_dir / "authored").glob("*.jsonl"))
    if check_files(paths):
        raise SystemExit("authored files have problems; nothing was written")
    counts = {}
    for path in paths:
        target = corpus_dir / path.name
        lines = [json.dumps(to_corpus_article(article), ensure_ascii=False) + "\n" for article in read_authored(path)]
        write_lines_atomically(target, lines)
        counts[path.stem] = sum(1 for _ in target.open(encoding="utf-8"))
    return counts


def build(corpus_dir: Path) -> dict[str, int]:
    """Write train/dev/test.jsonl in `corpus_dir` from every file in `corpus_dir/authored`."""
    paths = sorted((corpus_dir / "authored").glob("*.jsonl"))
    if check_files(paths):
        raise SystemExit("authored files have problems; nothing was written")
    splits: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    articles = [article for path in paths for article in read_authored(path)]
    split_of = assign_splits(articles)
    for article in articles:
        splits[split_of[article["storyline"]]].append(to_corpus_article(article))
    counts = {}
    for name, articles in splits.items():
        articles.sort(key=lambda record: record["id"])
        write_lines_atomically(corpus_dir / f"{name}.jsonl", [json.dumps(r, ensure_ascii=False) + "\n" for r in articles])
        counts[name] = len(articles)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="report problems and label shares of authored files")
    check.add_argument("files", nargs="+", type=Path)
    build_parser = commands.add_parser("build", help="write train/dev/test.jsonl from CORPUS/authored/*.jsonl")
    build_parser.add_argument("corpus", type=Path)
    files_parser = commands.add_parser("build-files", help="write CORPUS/NAME.jsonl from each CORPUS/authored/NAME.jsonl")
    files_parser.add_argument("corpus", type=Path)
    args = parser.parse_args(argv)
    if args.command == "check":
        return 1 if check_files(args.files) else 0
    print(build(args.corpus) if args.command == "build" else build_files(args.corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
