"""The `stanceline` command: validate, data, train, evaluate, predict, score, trends, serve, export, calibrate."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from training.backends import BACKENDS
from training.corpora import MODULES
from training.modeling import WINDOW_POOLINGS

DEFAULT_MODEL = "models/current"
DEFAULT_TRAIN = "datasets/stanceline-wire/train.jsonl"
DEFAULT_DEV = "datasets/stanceline-wire/dev.jsonl"
DEFAULT_DATABASE_URL = "sqlite:///data/stanceline.db"
REVIEWS_SPEC = "reviews:"


def cmd_validate(args: argparse.Namespace) -> int:
    from training.data import validate_file

    total = 0
    for path in args.files:
        articles, problems = validate_file(path)
        for problem in problems:
            print(problem)
        total += len(problems)
        pairs = sum(len(a.get("annotations", []) or []) for a in articles if isinstance(a.get("annotations"), list))
        print(f"{path}: {len(articles)} articles, {pairs} pairs, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if total else 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.corpus == "real-dev":
        from training import realdev

        if args.texts is None:
            raise ValueError(
                'stanceline data real-dev needs --texts FILE: JSONL lines {"url", "text"} holding the pages '
                f"listed in {realdev.ANNOTATIONS} (see datasets/real-dev/README.md)"
            )
        output = Path(args.data_dir) / "real-dev" / "dev.jsonl"
        summary = realdev.rebuild(args.texts, output, allow_missing=args.allow_missing, relocate=args.relocate)
        print(f"{output}: {summary['articles']} articles, {summary['pairs']} pairs ({summary['missing']} without a text)")
        return 0
    if args.list:
        from training.corpora import every_corpus

        for item in every_corpus():
            default = "default recipe" if item.in_default_recipe else "opt-in"
            print(f"{item.name}: {item.description}; {default}; licence: {item.licence}")
        return 0
    from training.public import fetch

    for name, info in fetch(args.data_dir, args.mirror, None if args.corpus == "public" else [args.corpus]).items():
        print(f"{name}: {info}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.config import TrainConfig
    from training.trainer import train

    config = TrainConfig.from_file(args.config, args.set)
    folder = train(config)
    if folder is not None:  # under torchrun, only rank 0 writes (and names) the model folder
        print(folder)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training import public
    from training.data import load_articles
    from training.evaluate import (
        evaluate_items,
        items_from_articles,
        majority_baseline,
        tfidf_baseline,
        write_predictions,
        write_report,
    )
    from training.examples import WindowOptions, examples_from_articles
    from training.labels import SENTIMENT_LABELS, STANCE_LABELS
    from training.predictor import Predictor

    predictor = Predictor.from_folder(args.model, backend=args.backend, reader=args.reader, pooling=args.window_pooling)
    options = WindowOptions(predictor.meta.window_chars, issue_markers=predictor.meta.issue_markers)
    review_articles = None
    if args.data.startswith(REVIEWS_SPEC):
        from serving.store import Store
        from training.reviews import SPLITS, reviewed_articles

        split = args.data.removeprefix(REVIEWS_SPEC) or "test"
        if split not in SPLITS:
            raise ValueError(f"--data {args.data}: the reviews have splits {', '.join(SPLITS)}")
        store = Store(args.database_url)
        articles, _ = reviewed_articles(store)
        store.close()
        review_articles = articles[split]
        if not review_articles:
            raise ValueError(f"no reviewed documents in the {split} split of {args.database_url}: review more articles first")
        items = items_from_articles(review_articles)
        train_articles = articles["train"] if articles["train"] else load_articles(args.train)
        train_examples = examples_from_articles(train_articles, predictor.catalog, "train", options)
    elif Path(args.data).exists():
        items = items_from_articles(load_articles(args.data))
        train_examples = examples_from_articles(load_articles(args.train), predictor.catalog, "train", options)
    else:
        name = args.data.partition(":")[0]
        items = public.eval_items(args.data, args.data_dir)
        train_examples = public.training_examples(
            name, args.data_dir, predictor.meta.window_chars, issue_markers=predictor.meta.issue_markers
        )[0]
    metrics, rows = evaluate_items(predictor, items, bootstrap=args.bootstrap)
    train_labels = {
        "stance": [STANCE_LABELS[e.stance] for e in train_examples if e.stance >= 0],
        "sentiment": [SENTIMENT_LABELS[e.sentiment] for e in train_examples if e.sentiment >= 0],
    }
    metrics["baselines"] = {
        "majority": majority_baseline(items, train_labels, args.bootstrap),
        "tfidf_logreg": tfidf_baseline(predictor, items, train_examples, args.bootstrap),
    }
    metrics["model"] = {
        **predictor.model_info(),
        "folder": str(Path(args.model).resolve()),
        "backend": predictor.classifier.backend.name,
        "reader": predictor.reader,
        "window_pooling": predictor.pooling,
    }
    metrics["data"]["source"] = args.data
    if review_articles is not None:
        from training.reviews import agreement_over_time

        metrics["over_time"] = agreement_over_time(review_articles, rows)
    write_report(metrics, Path(args.output), args.data)
    write_predictions(rows, Path(args.output))
    for task in ("stance", "sentiment"):
        if task in metrics:
            tfidf = metrics["baselines"]["tfidf_logreg"].get(task, {}).get("macro_f1", float("nan"))
            print(
                f"{task}: macro-F1 {metrics[task]['macro_f1']:.3f} {metrics[task]['macro_f1_ci95']} (tfidf {tfidf:.3f}), accuracy {metrics[task]['accuracy']:.3f}"
            )
    if "evidence" in metrics:
        evidence = metrics["evidence"]
        print(
            f"evidence: cited sentences overlap the gold evidence for {evidence['rate']:.1%} of pairs, the top one for {evidence['top_rate']:.1%}"
        )
    for task in ("stance", "sentiment"):
        if "ece" in metrics.get(task, {}):
            print(f"{task}: expected calibration error {metrics[task]['ece']:.3f}")
    if "roles" in metrics:
        print(f"roles: {metrics['roles']}")
    if "minimal_pairs" in metrics:
        print(
            f"minimal pairs: both sides right {metrics['minimal_pairs']['both_sides_right']:.1%} of {metrics['minimal_pairs']['groups']}"
        )
    print(f"wrote {args.output}/metrics.json, report.md and predictions.jsonl")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from serving.predict_files import predict_file

    counts = predict_file(Path(args.input), Path(args.output), args.model, backend=args.backend, batch_documents=args.batch)
    print(
        f"{counts['ok']} answered, {counts['errors']} error line(s) -> {args.output}; "
        f"{counts['windows']} model windows in {counts['seconds']:.1f} s: "
        f"{counts['documents_per_second']:.1f} documents/s, {counts['windows_per_second']:.1f} windows/s",
        file=sys.stderr,
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from serving.score import score

    summary = score(
        args.inputs,
        args.output,
        args.model,
        backend=args.backend,
        workers=args.workers,
        rows_per_chunk=args.batch_size,
        batch_documents=args.batch_documents,
    )
    print(
        f"{summary.rows} documents scored ({summary.errors} error rows) in {summary.seconds:.1f} s, "
        f"{summary.rows_per_second:.1f} rows/s; {summary.chunks} chunks, {summary.skipped} already written -> {args.output}",
        file=sys.stderr,
    )
    return 0


def cmd_trends(args: argparse.Namespace) -> int:
    from serving.trends import ShiftRule, parse_window, trends_of_rows, trends_of_scored
    from serving.trends_report import write_html, write_tables

    if bool(args.inputs) == args.from_store:
        raise ValueError("give either scored Parquet files or folders (from `stanceline score`), or --from-store")
    start, end = parse_window(args.start, args.end)
    filters = {
        "party": args.party,
        "issue": args.issue,
        "start": start,
        "end": end,
        "rule": ShiftRule(alpha=args.alpha, min_documents=args.min_documents, min_change=args.min_change),
    }
    if args.from_store:
        from serving.store import Store

        store = Store(args.database_url)
        try:
            rows = store.stance_rows(filters["start"], filters["end"])
            source = f"the review store {store.describe()}"
        finally:
            store.close()
        trends = trends_of_rows(rows, args.period, **filters)
    else:
        trends = trends_of_scored(args.inputs, args.period, threads=args.threads, **filters)
        source = ", ".join(args.inputs)
    output = Path(args.output)
    written = [*write_tables(trends, output), write_html(trends, output / "report.html", source, top=args.top)]
    pairs = trends.pairs()
    print(
        f"{sum(pair['documents'] for pair in pairs)} answered pairs in {len(pairs)} (party, issue) pairs over "
        f"{len(trends.rows)} pair-{args.period}s; {len(trends.shifts)} shift(s) -> " + ", ".join(map(str, written)),
        file=sys.stderr,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app, load_predictor
    from serving.server import uvicorn_config
    from serving.settings import Settings

    overrides = {k: v for k, v in {"model_dir": args.model, "backend": args.backend, "host": args.host}.items() if v}
    settings = Settings(**overrides)
    predictor = load_predictor(settings)  # before the server starts: a bad model folder is one line, not a traceback
    uvicorn.Server(uvicorn_config(create_app(settings, predictor), settings, port=args.port)).run()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.backends import INT8_FILE
    from training.data import load_articles
    from training.export import check_backends, describe_check, export_onnx

    written = export_onnx(Path(args.model))
    print(f"wrote {written} (float32) and {written.with_name(INT8_FILE)} (int8)")
    if args.dev:
        print(describe_check(check_backends(Path(args.model), load_articles(args.dev), args.dev, args.data_dir)))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from training.calibration import recalibrate
    from training.data import load_articles
    from training.modeling import ModelMeta

    folder = Path(args.model)
    before = ModelMeta.load(folder)
    after = recalibrate(folder, load_articles(args.dev), args.window_pooling)
    print(
        f"{folder}: window pooling {before.window_pooling} -> {after.window_pooling}; "
        f"temperatures {before.temperatures} -> {after.temperatures} (fitted on {args.dev})"
    )
    return 0


def cmd_reviews_export(args: argparse.Namespace) -> int:
    from serving.store import Store
    from training.reviews import export_reviews

    shares = {"train": 1 - args.dev_share - args.test_share, "dev": args.dev_share, "test": args.test_share}
    if min(shares.values()) < 0:
        raise ValueError("--dev-share and --test-share must be >= 0 and add up to at most 1")
    store = Store(args.database_url)
    try:
        summary = export_reviews(store, args.output, shares)
    finally:
        store.close()
    for split in ("train", "dev", "test"):
        print(f"{args.output}/{split}.jsonl: {summary[split]['articles']} articles, {summary[split]['pairs']} pairs")
    if summary["superseded"]:
        print(f"{summary['superseded']} older review(s) of a pair were superseded by a newer one", file=sys.stderr)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from serving.store import Store, current_revision, migrate

    store = Store(args.database_url, upgrade=False)
    try:
        if args.action == "upgrade":
            migrate(store.engine, args.revision or "head")
        elif args.action == "downgrade":
            migrate(store.engine, args.revision or "base", down=True)
        print(f"{store.describe()}: schema revision {current_revision(store.engine) or 'none (empty)'}")
    finally:
        store.close()
    return 0


def database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("STANCELINE_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="the review store (default: $STANCELINE_DATABASE_URL, else %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stanceline", description="Stance and sentiment of parties in news articles.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check corpus files and list every problem")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(run=cmd_validate)

    data = commands.add_parser(
        "data", help="bring public corpora into data/ (from upstream or a mirror), or rebuild the real-news dev set"
    )
    data.add_argument(
        "corpus",
        nargs="?",
        choices=("public", "real-dev", *MODULES),
        default="public",
        help="public: the default recipe's corpora; a corpus name: that one (opt-in corpora too); real-dev: rebuild the real-news dev set",
    )
    data.add_argument("--texts", type=Path, default=None, help="real-dev: JSONL of {url, text} for the annotated pages")
    data.add_argument("--allow-missing", action="store_true", help="real-dev: leave out articles whose text is not in --texts")
    data.add_argument(
        "--relocate",
        action="store_true",
        help="real-dev: take a text whose hash differs when every evidence quote is in it (offsets found again)",
    )
    data.add_argument("--list", action="store_true", help="list the public corpora, their licences and which are opt-in")
    data.add_argument("--data-dir", default="data")
    data.add_argument("--mirror", default=None, help="offline mirror folder (default: $STANCELINE_DATA_MIRROR)")
    data.set_defaults(run=cmd_data)

    train = commands.add_parser("train", help="fine-tune a model")
    train.add_argument("--config", default=None, help="TOML file of settings that differ from the default recipe")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config setting")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a model on held-out data")
    evaluate.add_argument(
        "--data",
        required=True,
        help="corpus JSONL file, newsmtsc:dev / un-quadclass:dev / plover:dev, or reviews:test (the users' held-out corrections)",
    )
    evaluate.add_argument("--output", required=True, help="folder for metrics.json, report.md, PNGs, predictions.jsonl")
    evaluate.add_argument("--model", default=DEFAULT_MODEL)
    evaluate.add_argument("--train", default=DEFAULT_TRAIN, help="train split for the baselines")
    evaluate.add_argument("--data-dir", default="data")
    evaluate.add_argument("--backend", default="auto", choices=BACKENDS)
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the 95%% intervals")
    evaluate.add_argument(
        "--reader",
        default=None,
        choices=["ranked", "first", "oracle"],
        help="how pairs are read: ranked by the evidence head (default where the model has one), the first "
        "windows in reading order, or only the gold evidence (oracle, for analysis)",
    )
    evaluate.add_argument(
        "--window-pooling",
        default=None,
        choices=WINDOW_POOLINGS,
        help="how a pair's windows are pooled into its answer (default: the model's own, which its scores are calibrated for)",
    )
    database_option(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)

    predict = commands.add_parser("predict", help="answer a JSONL file of documents")
    predict.add_argument("--input", required=True)
    predict.add_argument("--output", required=True)
    predict.add_argument("--model", default=DEFAULT_MODEL)
    predict.add_argument("--backend", default="auto", choices=BACKENDS)
    predict.add_argument("--batch", type=int, default=16, help="documents per model batch")
    predict.set_defaults(run=cmd_predict)

    score = commands.add_parser(
        "score", help="score JSONL or Parquet files (local or any pyarrow filesystem) on Ray into Parquet, resumable"
    )
    score.add_argument("inputs", nargs="+", help="files, folders or globs (s3://bucket/feed/*.jsonl works too)")
    score.add_argument("--output", required=True, help="folder of Parquet files, one per chunk; a rerun skips written ones")
    score.add_argument("--model", default=DEFAULT_MODEL)
    score.add_argument("--backend", default="auto", choices=BACKENDS)
    score.add_argument("--workers", type=int, default=1, help="Ray actors, each with the model loaded once")
    score.add_argument(
        "--batch-size",
        type=int,
        default=1024,
        help="documents per chunk (one output file each); answers do not depend on it (every backend answers a "
        "window as it would alone)",
    )
    score.add_argument("--batch-documents", type=int, default=16, help="documents per model batch inside an actor")
    score.set_defaults(run=cmd_score)

    trends = commands.add_parser(
        "trends", help="stance shares per (party, issue) and day/week/month, with shifts, as Parquet, CSV and an HTML report"
    )
    trends.add_argument("inputs", nargs="*", help="Parquet files, folders or globs written by `stanceline score`")
    trends.add_argument("--from-store", action="store_true", help="read the review store (--database-url) instead")
    trends.add_argument("--output", required=True, help="folder for trends.parquet, trends.csv, shifts.csv, report.html")
    trends.add_argument("--period", default="month", choices=["day", "week", "month"])
    trends.add_argument("--from", dest="start", default=None, help="documents published at or after (ISO 8601, UTC)")
    trends.add_argument(
        "--to", dest="end", default=None, help="documents published before (ISO 8601, UTC; a date alone: through that day)"
    )
    trends.add_argument("--party", default=None, help="only this party")
    trends.add_argument("--issue", default=None, help="only this issue")
    trends.add_argument("--top", type=int, default=10, help="charts for this many pairs by volume, and as many by change")
    trends.add_argument("--alpha", type=float, default=0.01, help="false-alarm rate of shifts per pair")
    trends.add_argument("--min-documents", type=int, default=20, help="periods with fewer documents are not compared")
    trends.add_argument("--min-change", type=float, default=0.10, help="smallest share change reported as a shift")
    trends.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    database_option(trends)
    trends.set_defaults(run=cmd_trends)

    serve = commands.add_parser("serve", help="run the HTTP API and web page")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--model", default=None)
    serve.add_argument("--backend", default=None, choices=BACKENDS)
    serve.set_defaults(run=cmd_serve)

    export = commands.add_parser(
        "export", help="write the ONNX copies of a model (float32, int8) into its folder and check them against torch"
    )
    export.add_argument("--model", default=DEFAULT_MODEL)
    export.add_argument(
        "--dev",
        default=DEFAULT_DEV if Path(DEFAULT_DEV).exists() else "",
        help="corpus file whose windows, with each public dev portion in --data-dir, the float32 copy must answer as "
        "torch does for `auto` to serve it ('' skips the check, and auto keeps torch)",
    )
    export.add_argument("--data-dir", default="data")
    export.set_defaults(run=cmd_export)

    calibrate = commands.add_parser(
        "calibrate", help="set how a model pools a pair's windows and refit its score temperatures on dev under it"
    )
    calibrate.add_argument("--model", default=DEFAULT_MODEL)
    calibrate.add_argument("--window-pooling", default=WINDOW_POOLINGS[0], choices=WINDOW_POOLINGS)
    calibrate.add_argument("--dev", default=DEFAULT_DEV, help="corpus file of articles the temperatures are fitted on")
    calibrate.set_defaults(run=cmd_calibrate)

    reviews = commands.add_parser("reviews", help="analysts' corrections kept by the server")
    review_commands = reviews.add_subparsers(dest="reviews_command", required=True)
    export_reviews = review_commands.add_parser(
        "export", help="write the newest review of each pair as train/dev/test JSONL in the corpus format (split by document)"
    )
    export_reviews.add_argument("--output", required=True, help="folder for train.jsonl, dev.jsonl and test.jsonl")
    export_reviews.add_argument("--dev-share", type=float, default=0.15, help="share of documents held out for dev")
    export_reviews.add_argument("--test-share", type=float, default=0.15, help="share of documents held out for test")
    database_option(export_reviews)
    export_reviews.set_defaults(run=cmd_reviews_export)

    db = commands.add_parser("db", help="show or migrate the review store's schema")
    db.add_argument("action", choices=["current", "upgrade", "downgrade"])
    db.add_argument("revision", nargs="?", default=None, help="target revision (default: head up, base down)")
    database_option(db)
    db.set_defaults(run=cmd_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"stanceline {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
