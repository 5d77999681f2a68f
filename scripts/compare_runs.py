"""Compare recipes over seeds on one evaluated set: the seed-mean macro-F1 of each recipe with a 95%
bootstrap interval, and the paired difference between recipes.

Each recipe is a list of `predictions.jsonl` files written by `stanceline evaluate` on the same data (one
per seed). A bootstrap round resamples the set's pairs once and scores every seed of every recipe on the
same sample, so the interval of the difference is paired (both recipes read the same pairs).

    python scripts/compare_runs.py --task stance \\
        --recipe fast=reports/eval/r15-minilm/real-dev/predictions.jsonl,reports/eval/r16-minilm-s14/real-dev/predictions.jsonl \\
        --recipe accurate=reports/eval/r15-mpnet-s13/real-dev/predictions.jsonl,reports/eval/r16-mpnet-s14/real-dev/predictions.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training.evaluate import macro_f1
from training.labels import SENTIMENT_LABELS, STANCE_LABELS

LABELS = {"stance": tuple(STANCE_LABELS), "sentiment": tuple(SENTIMENT_LABELS)}


def read_predictions(path: Path, task: str) -> dict[tuple, tuple[str, str]]:
    """(document, target) -> (gold, predicted) for the pairs with a gold label for `task`."""
    rows = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answer = row.get(task) or {}
        if answer.get("gold") is not None:
            rows[(row["document"], row["target"])] = (answer["gold"], answer["predicted"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="append", required=True, help="name=predictions.jsonl[,predictions.jsonl...]")
    parser.add_argument("--task", choices=sorted(LABELS), default="stance")
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    recipes: dict[str, list[dict]] = {}
    for spec in args.recipe:
        name, _, files = spec.partition("=")
        recipes[name] = [read_predictions(Path(file), args.task) for file in files.split(",")]
    keys = sorted(set.intersection(*(set(run) for runs in recipes.values() for run in runs)))
    if not keys:
        raise SystemExit("the prediction files share no scored pairs: were they evaluated on the same data?")
    labels = LABELS[args.task]
    gold = np.array([recipes[next(iter(recipes))][0][key][0] for key in keys])
    predicted = {name: [np.array([run[key][1] for key in keys]) for run in runs] for name, runs in recipes.items()}

    def seed_mean(name: str, sample: np.ndarray) -> float:
        return float(np.mean([macro_f1(list(gold[sample]), list(p[sample]), labels) for p in predicted[name]]))

    everything = np.arange(len(keys))
    point = {name: seed_mean(name, everything) for name in recipes}
    rng = np.random.default_rng(7)
    draws: dict[str, list[float]] = {name: [] for name in recipes}
    for _ in range(args.rounds):
        sample = rng.integers(0, len(keys), len(keys))
        for name in recipes:
            draws[name].append(seed_mean(name, sample))
    report = {"task": args.task, "pairs": len(keys), "recipes": {}}
    for name in recipes:
        report["recipes"][name] = {
            "seeds": [round(macro_f1(list(gold), list(p), labels), 4) for p in predicted[name]],
            "seed_mean": round(point[name], 4),
            "ci95": [round(float(np.percentile(draws[name], q)), 4) for q in (2.5, 97.5)],
        }
    names = list(recipes)
    for other in names[1:]:
        difference = np.array(draws[other]) - np.array(draws[names[0]])
        report[f"{other} - {names[0]}"] = {
            "difference": round(point[other] - point[names[0]], 4),
            "ci95": [round(float(np.percentile(difference, q)), 4) for q in (2.5, 97.5)],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
