"""A stand-in reviewer: sends a public corpus's documents to a running server with storing on, and posts
the corpus's gold labels as corrections through /v1/reviews, as an analyst team would through the page.

It exercises the whole review loop on real, human-labelled text, and gives `reviews:test` something real to
measure. Where the corpus has no label for a task (PLOVER has no sentiment), the reviewer keeps the served
model's answer, as an analyst who only fixes what is wrong does. Usage:

    STANCELINE_DATABASE_URL=sqlite:///data/reviews.db stanceline serve &
    python scripts/review_from_corpus.py --url http://127.0.0.1:8000 --data plover:dev
"""

from __future__ import annotations

import argparse
import sys
import time

import httpx

from serving.schemas import MAX_NAME_CHARS
from training import public


def whole_text(text: str) -> list[list[int]]:
    """The document's words without surrounding whitespace: the evidence of a one-sentence document."""
    start = len(text) - len(text.lstrip())
    return [[start, len(text.rstrip())]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--data", default="plover:dev", help="public corpus split with pair labels (plover:dev)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--reviewer", default=None, help="reviewer name (default: corpus:<data>)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--limit", type=int, default=0, help="at most this many documents (0: all)")
    args = parser.parse_args(argv)

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    reviewer = args.reviewer or f"corpus:{args.data}"
    items = public.eval_items(args.data, args.data_dir)
    items = items[: args.limit] if args.limit else items
    counts = {"documents": 0, "reviews": 0, "skipped_pairs": 0, "served_stance_right": 0, "served_stance_scored": 0}
    started = time.perf_counter()
    with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
        for item in items:
            pairs = [
                (index, pair)
                for index, pair in enumerate(item.document.pairs or [])
                if index in item.gold and pair.issue and len(pair.party) <= MAX_NAME_CHARS and len(pair.issue) <= MAX_NAME_CHARS
            ]
            counts["skipped_pairs"] += len(item.gold) - len(pairs)
            if not pairs:
                continue
            request = {
                "text": item.document.text,
                "pairs": [{"party": p.party, "issue": p.issue, "spans": p.spans} for _, p in pairs],
                "store": True,
                "source": args.data,
            }
            answer = client.post("/v1/predict", json=request)
            answer.raise_for_status()
            body = answer.json()
            counts["documents"] += 1
            for (index, pair), result in zip(pairs, body["results"], strict=True):
                gold = item.gold[index]
                spans = item.gold_evidence.get(index)
                review = {
                    "document_id": body["document_id"],
                    "party": pair.party,
                    "issue": pair.issue,
                    "stance": gold.get("stance") or result["stance"]["label"],
                    "sentiment": gold.get("sentiment") or result["sentiment"]["label"],
                    "evidence": [list(span) for span in spans] if spans else whole_text(item.document.text),
                    "reviewer": reviewer,
                }
                posted = client.post("/v1/reviews", json=review)
                posted.raise_for_status()
                counts["reviews"] += 1
                if "stance" in gold:
                    counts["served_stance_scored"] += 1
                    counts["served_stance_right"] += result["stance"]["label"] == gold["stance"]
    seconds = time.perf_counter() - started
    scored = counts["served_stance_scored"] or 1
    print(
        f"{counts['documents']} documents stored, {counts['reviews']} reviews posted, {counts['skipped_pairs']} pairs "
        f"skipped (no issue or a name over {MAX_NAME_CHARS} characters) in {seconds:.1f} s; the served model's stance "
        f"agreed with the reviewer on {counts['served_stance_right'] / scored:.1%} of {counts['served_stance_scored']} pairs",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
