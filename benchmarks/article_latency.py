"""In-process latency of the served predictor: a 4,000-character article with pairs detected, and a
200,000-character text with detection. `python -m benchmarks.article_latency --model models/current`."""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.http_bench import build_article
from training.backends import BACKENDS
from training.predictor import Document, Predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/current")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    predictor = Predictor.from_folder(args.model, backend=args.backend, threads=2)
    article = build_article(4000)
    for _ in range(3):  # warm-up
        predictor.predict([Document(article)])
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        (answer,) = predictor.predict([Document(article)])
        times.append(time.perf_counter() - started)
    times.sort()
    windows = len(predictor.plan(Document(article)).model_inputs)
    print(
        f"{len(article)}-character article, {len(answer['results'])} pairs, {windows} windows, "
        f"backend {predictor.classifier.backend.name}: p50 {1000 * statistics.median(times):.0f} ms, "
        f"p95 {1000 * times[int(0.95 * (len(times) - 1))]:.0f} ms"
    )
    big = ((article + "\n\n") * (200_000 // len(article) + 1))[:200_000]
    started = time.perf_counter()
    predictor.predict([Document(big)])
    print(f"200,000-character text with detection: {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
