"""Trends on real dates: the bundled corpus's monthly stance shares from a model's answers against those
from the gold labels.

    python scripts/wire_trends_check.py --model models/current [--output reports/wire-trends.json]

Every annotated (party, issue) pair of datasets/stanceline-wire/{train,dev,test}.jsonl is asked of the
model (the gold pairs and aliases are given, so only the stance is compared, not pair detection) and
dated by its article's `date`. Both sets of answers go through `serving.trends` per month; the figure is
the mean absolute difference of the monthly shares per pair (over the pair's months and the three stance
labels), then its mean over pairs. Train articles are included by default because trends need volume;
pass --files to restrict the check to held-out articles. Runs the model on CPU: a few minutes for the
default model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

from serving.app import load_model
from serving.trends import trends_of_rows
from training.backends import BACKENDS
from training.labels import STANCE_LABELS
from training.predictor import Document, PairRequest

DEFAULT_FILES = [f"datasets/stanceline-wire/{split}.jsonl" for split in ("train", "dev", "test")]


def read_articles(paths: list[str], limit: int | None) -> list[dict]:
    articles = [
        json.loads(line) for path in paths for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return articles[:limit] if limit else articles


def pair_row(article: dict, party: str, issue: str | None, stance: str, scores: dict[str, float]) -> dict:
    return {
        "document": article["id"],
        "published": datetime.fromisoformat(article["date"]),
        "published_source": "given",
        "party": party,
        "issue": issue,
        "stance": stance,
        **{label: float(scores[label]) for label in STANCE_LABELS},
    }


def gold_and_model_rows(articles: list[dict], model: str, backend: str, batch: int) -> tuple[list[dict], list[dict]]:
    """Pair rows from the gold labels (scores one-hot) and from the model's answers on the same pairs."""
    predictor = load_model(model, backend=backend)
    gold, answered = [], []
    for start in range(0, len(articles), batch):
        chunk = articles[start : start + batch]
        documents = [
            Document(
                article["text"],
                [PairRequest(item["party"], item["issue"]) for item in article["annotations"]],
                article.get("aliases") or {},
                overall=False,
            )
            for article in chunk
        ]
        for article, answer in zip(chunk, predictor.predict(documents), strict=True):
            for item, result in zip(article["annotations"], answer["results"], strict=True):
                one_hot = {label: float(label == item["stance"]) for label in STANCE_LABELS}
                gold.append(pair_row(article, item["party"], item["issue"], item["stance"], one_hot))
                stance = result["stance"]
                answered.append(pair_row(article, result["party"], result["issue"], stance["label"], stance["scores"]))
        print(f"\r{min(start + batch, len(articles))}/{len(articles)} articles", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return gold, answered


def compare(gold: list[dict], answered: list[dict], period: str = "month") -> dict:
    """Mean absolute difference of the periods' stance shares per pair, and over pairs."""
    gold_trends, model_trends = trends_of_rows(gold, period), trends_of_rows(answered, period)
    model_rows = {(row["party"], row["issue"], row["period"]): row for row in model_trends.rows}
    per_pair: dict[tuple, list[float]] = {}
    for row in gold_trends.rows:
        other = model_rows[(row["party"], row["issue"], row["period"])]
        per_pair.setdefault((row["party"], row["issue"]), []).extend(
            abs(row[f"{label}_share"] - other[f"{label}_share"]) for label in STANCE_LABELS
        )
    pairs = sorted(
        (
            {"party": party, "issue": issue, "periods": len(diffs) // 3, "mean_abs_share_difference": statistics.fmean(diffs)}
            for (party, issue), diffs in per_pair.items()
        ),
        key=lambda pair: (-pair["periods"], pair["party"], pair["issue"] or ""),
    )
    weighted = sum(pair["mean_abs_share_difference"] * pair["periods"] for pair in pairs) / sum(pair["periods"] for pair in pairs)
    return {
        "period": period,
        "pairs": len(pairs),
        "pair_rows": len(gold),
        "mean_abs_share_difference": statistics.fmean(pair["mean_abs_share_difference"] for pair in pairs),
        "mean_abs_share_difference_weighted_by_periods": weighted,
        "label_agreement": sum(a["stance"] == b["stance"] for a, b in zip(gold, answered, strict=True)) / len(gold),
        "gold_shifts": len(gold_trends.shifts),
        "model_shifts": len(model_trends.shifts),
        "by_pair": pairs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a Stanceline model folder")
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES, help="corpus files with dates (default: all three splits)")
    parser.add_argument("--period", default="month", choices=["day", "week", "month"])
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--batch", type=int, default=8, help="articles per model call")
    parser.add_argument("--limit", type=int, default=None, help="only the first N articles (a quick look)")
    parser.add_argument("--output", default=None, help="write the full comparison here as JSON")
    args = parser.parse_args()

    articles = read_articles(args.files, args.limit)
    gold, answered = gold_and_model_rows(articles, args.model, args.backend, args.batch)
    result = compare(gold, answered, args.period)
    print(
        f"{len(articles)} articles, {result['pair_rows']} pairs, {result['pairs']} (party, issue) pairs: mean absolute "
        f"difference of {args.period}ly stance shares, model against gold: {result['mean_abs_share_difference']:.3f} "
        f"per pair ({result['mean_abs_share_difference_weighted_by_periods']:.3f} weighted by {args.period}s); "
        f"label agreement {result['label_agreement']:.3f}"
    )
    for pair in result["by_pair"][:15]:
        print(f"  {pair['party']} on {pair['issue']}: {pair['periods']} {args.period}s, {pair['mean_abs_share_difference']:.3f}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
