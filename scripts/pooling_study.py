"""How a pair's windows should become its answer, measured on an article corpus (the real-news dev set).

Step 1 (`dump`) classifies every candidate window of every annotated pair (up to 12 a pair, beyond the
served budget) and writes one JSON line per pair with the per-window probabilities. Step 2 (`study`)
re-aggregates those windows offline: the served budget, arithmetic or geometric pooling, evidence
weights raised to a power, a neutral bias, and the syntax layer's "never acts" lean towards neutral,
each scored on stance and sentiment macro-F1, with a 5-fold cross-validation over articles that picks
the variant on four folds and scores it on the fifth (so the gain is not the best of a grid on the data
it is reported on).

    python scripts/pooling_study.py dump --model models/r15-mpnet-s13 --data data/real-dev/dev.jsonl --output windows.jsonl
    python scripts/pooling_study.py study windows-s13.jsonl windows-s14.jsonl --data data/real-dev/dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from training.labels import TASKS
from training.windows import spread

STUDY_WINDOWS_PER_PAIR = 12
GRID = [(pooling, power) for pooling in ("mean", "geometric") for power in (1, 2, 3, 4, 6, 8)]


def dump(model: str, data: str, output: str) -> None:
    import training.predictor as predictor_module
    from training.items import items_from_articles

    predictor_module.MAX_PAIR_WINDOWS_PER_DOCUMENT = 10_000
    predictor = predictor_module.Predictor.from_folder(model, backend="torch")
    type(predictor).pair_limit = property(lambda self: STUDY_WINDOWS_PER_PAIR)
    articles = [json.loads(line) for line in Path(data).read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(output, "w", encoding="utf-8") as out:
        for item, article in zip(items_from_articles(articles), articles, strict=True):
            item.document.overall = False
            plan = predictor.plan(item.document)
            probabilities = predictor.classifier.predict([(m.target, m.window_text) for m in plan.model_inputs])
            cursor = 0
            for index, pair in enumerate(plan.pairs):
                rows = slice(cursor, cursor + len(pair.inputs))
                cursor += len(pair.inputs)
                annotation = article["annotations"][index]
                record = {
                    "document": article["id"],
                    "target": index,
                    "gold": {"stance": annotation["stance"], "sentiment": annotation["sentiment"]},
                    "anchors": [list(m.anchor) for m in pair.inputs],
                    **{task: np.round(values[rows], 5).tolist() for task, values in probabilities.items()},
                }
                out.write(json.dumps(record) + "\n")


def load(path: str) -> list[dict]:
    from training.predictor import MAX_PAIR_WINDOWS_PER_DOCUMENT, MAX_WINDOWS_PER_PAIR, share_windows

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    documents: dict[str, list[dict]] = {}
    for row in rows:
        documents.setdefault(row["document"], []).append(row)
    for pairs in documents.values():  # the windows the served budget reads
        budgets = share_windows([len(p["anchors"]) for p in pairs], MAX_PAIR_WINDOWS_PER_DOCUMENT, MAX_WINDOWS_PER_PAIR)
        for pair, budget in zip(pairs, budgets, strict=True):
            pair["served"] = spread(list(range(len(pair["anchors"]))), budget)
    return rows


def pooled(row: dict, task: str, pooling: str, power: float, neutral_bias: float = 0.0) -> np.ndarray:
    """The pair's answer from its served windows, pooled as the predictor pools (with any evidence power)."""
    from training.predictor import normalised_weights, pool_windows

    chosen = row["served"]
    weights = normalised_weights(np.array(row["evidence"])[chosen][:, 1], power)
    result = pool_windows(np.array(row[task])[chosen], weights, pooling)
    if task == "stance" and neutral_bias:
        result = result * np.array([1.0, 1.0, np.exp(neutral_bias)])
    return result


def macro_f1(rows: list[dict], task: str, **options) -> float:
    labels = TASKS[task]
    gold = [row["gold"][task] for row in rows]
    predicted = [labels[int(np.argmax(pooled(row, task, **options)))] for row in rows]
    return float(f1_score(gold, predicted, labels=list(labels), average="macro"))


def cross_validated(rows: list[dict], choices: list[dict], repeats: int = 3) -> list[float]:
    """Stance macro-F1 of picking the best of `choices` on four folds of articles, scored on the fifth."""
    scores = []
    documents = sorted({row["document"] for row in rows})
    for repeat in range(repeats):
        order = list(documents)
        np.random.default_rng(repeat).shuffle(order)
        folds = [set(order[k::5]) for k in range(5)]
        gold, predicted = [], []
        for fold in folds:
            train = [row for row in rows if row["document"] not in fold]
            best = max(choices, key=lambda options: macro_f1(train, "stance", **options))
            for row in (row for row in rows if row["document"] in fold):
                gold.append(row["gold"]["stance"])
                predicted.append(TASKS["stance"][int(np.argmax(pooled(row, "stance", **best)))])
        scores.append(float(f1_score(gold, predicted, labels=list(TASKS["stance"]), average="macro")))
    return scores


def never_acts(data: str, catalog: str | None) -> dict[tuple[str, int], bool]:
    """Whether each annotated pair's party is never a subject or passive agent in its article."""
    from training.catalog import Catalog
    from training.predictor import PairRequest, locate_pair
    from training.syntax import Syntax
    from training.text import split_sentences

    parser = Syntax.load("auto")
    found = Catalog.load(catalog) if catalog else Catalog.load()
    result = {}
    for line in Path(data).read_text(encoding="utf-8").splitlines():
        article = json.loads(line)
        text = article["text"]
        sentences = split_sentences(text)
        for index, annotation in enumerate(article["annotations"]):
            request = PairRequest(annotation["party"], annotation["issue"])
            located = locate_pair(found, text, sentences, request, article.get("aliases", {}))
            result[(article["id"], index)] = not parser.acts(text, located.party_spans)
    return result


def study(paths: list[str], data: str | None, catalog: str | None) -> None:
    silent = never_acts(data, catalog) if data else None
    for path in paths:
        rows = load(path)
        print(f"## {path} ({len(rows)} pairs)")
        for task in TASKS:
            cells = [f"{p[0]}{k}:{macro_f1(rows, task, pooling=p, power=k):.3f}" for p, k in GRID]
            print(f"{task:9} " + " ".join(cells))
        biases = [f"{b}:{macro_f1(rows, 'stance', pooling='mean', power=1, neutral_bias=-b):.3f}" for b in (0.25, 0.5, 1.0)]
        print("neutral bias (mean1, minus b) " + " ".join(biases))
        grid = [{"pooling": p, "power": k} for p, k in GRID]
        print("cross-validated pick over the grid:", " ".join(f"{s:.3f}" for s in cross_validated(rows, grid)))
        if silent is not None:
            for bias in (0.5, 1.0, 2.0, 50.0):
                leaned = [dict(row, _silent=silent[(row["document"], row["target"])]) for row in rows]
                gold = [row["gold"]["stance"] for row in leaned]
                predicted = []
                for row in leaned:
                    scores = pooled(row, "stance", "mean", 1)
                    if row["_silent"]:
                        scores = scores * np.array([1.0, 1.0, np.exp(bias)])
                    predicted.append(TASKS["stance"][int(np.argmax(scores))])
                value = f1_score(gold, predicted, labels=list(TASKS["stance"]), average="macro")
                print(f"never-acts lean to neutral (mean1, +{bias}): {value:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump")
    dumping.add_argument("--model", required=True)
    dumping.add_argument("--data", required=True)
    dumping.add_argument("--output", required=True)
    studying = commands.add_parser("study")
    studying.add_argument("windows", nargs="+")
    studying.add_argument("--data", help="the corpus the windows came from: adds the syntax layer's never-acts lean")
    studying.add_argument("--catalog", help="the model's catalog folder (default: the bundled one)")
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.model, args.data, args.output)
    else:
        study(args.windows, args.data, args.catalog)


if __name__ == "__main__":
    sys.exit(main())
