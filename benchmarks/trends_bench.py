"""How fast trends aggregate: DuckDB (what `stanceline trends` uses) against pyarrow and pandas.

Generates `--rows` synthetic documents in `stanceline score`'s output schema (1 to 3 answered pairs each,
among 40 parties x 25 issues, dated over three years, with an answer JSON per row as score writes it),
as Parquet files, then times each engine grouping them by (party, issue, month) into documents, counts per
stance label and mean calibrated scores, from reading the files to the aggregated table. The engines'
tables are compared, so a fast wrong answer cannot win. The DuckDB figure is also given end to end
(`serving.trends.trends_of_scored`: aggregation, Wilson intervals, shift tests).

    python benchmarks/trends_bench.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from serving.score import output_schema
from serving.trends import trends_of_scored
from training.labels import STANCE_LABELS

PARTIES, ISSUES = 40, 25
GENERATE = """
COPY (
  WITH documents AS (
    SELECT i, TIMESTAMP '2022-01-01' + to_seconds((hash(i, 'date') % (3 * 365 * 86400))::BIGINT) AS published,
           1 + (hash(i, 'pairs') % 3)::INTEGER AS pairs
    FROM range({start}, {end}) AS t(i)
  ),
  scored AS (
    SELECT i, published, pairs,
      list_transform(range(pairs), lambda k: {{
        'party': 'party-' || (hash(i, k, 'party') % {parties}),
        'issue': 'issue-' || (hash(i, k, 'issue') % {issues}),
        'stance': ['cooperative', 'pressure', 'neutral'][1 + (hash(i, k, 'stance') % 3)::INTEGER],
        'cooperative': (hash(i, k, 'c') % 1000) / 1000.0,
        'pressure': (hash(i, k, 'p') % 1000) / 1000.0,
        'neutral': (hash(i, k, 'n') % 1000) / 1000.0
      }}) AS stances
    FROM documents
  )
  SELECT i + 1 AS line, 'doc-' || i AS id, 'bench@1' AS model, NULL::VARCHAR AS overall_stance,
         NULL::VARCHAR AS overall_sentiment, pairs::BIGINT AS pairs,
         to_json({{'id': 'doc-' || i, 'model': {{'name': 'bench', 'version': '1'}}, 'overall': NULL,
                   'results': list_transform(stances, lambda s: {{
                      'party': s.party, 'issue': s.issue,
                      'stance': {{'label': s.stance, 'scores': {{'cooperative': s.cooperative, 'pressure': s.pressure, 'neutral': s.neutral}}}},
                      'evidence': [{{'start': 0, 'end': 80, 'text': 'A sentence of the article that shows the stance of ' || s.party || ' on ' || s.issue || '.'}}]
                   }})}})::VARCHAR AS answer,
         NULL::VARCHAR AS error_code, NULL::VARCHAR AS error_message,
         published, 'given' AS published_source, stances
  FROM scored
) TO '{path}' (FORMAT parquet)
"""


def generate(folder: Path, rows: int, files: int) -> list[str]:
    """`files` Parquet files holding `rows` synthetic scored documents; checks they read as score's schema."""
    import duckdb
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect()
    paths = []
    size = -(-rows // files)
    for index in range(files):
        path = folder / f"bench-{index:06d}.parquet"
        start, end = index * size, min(rows, (index + 1) * size)
        connection.execute(
            GENERATE.format(start=start, end=end, parties=PARTIES, issues=ISSUES, path=path.as_posix().replace("'", "''"))
        )
        paths.append(str(path))
    connection.close()
    pq.read_table(paths[0]).cast(output_schema())  # raises unless the files hold score's columns and types
    return paths


def aggregate_duckdb(paths: list[str], threads: int | None) -> list[tuple]:
    """The grouped rows (party, issue, month, documents, undated, then count and mean per label)."""
    from serving.trends import aggregate_sql, connect, register_scored

    connection = connect(threads)
    register_scored(connection, paths)
    sql, parameters = aggregate_sql("month", None, None, None, None)
    result = connection.execute(sql, parameters).fetchall()
    connection.close()
    return result


def duckdb_groups(result: list[tuple]) -> dict:
    return {(row[0], row[1], row[2].date()): (row[3], row[5], row[7], row[9]) for row in result}


def flatten_with_pyarrow(paths: list[str]):
    """The pair rows as an Arrow table: one per struct of each row's `stances`, with its row's date."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(paths, columns=["published", "stances"])
    stances = table.column("stances").combine_chunks()
    pairs = pc.list_flatten(stances)
    published = pc.take(table.column("published"), pc.list_parent_indices(stances))
    return pa.table(
        {
            "month": pc.floor_temporal(published, unit="month"),
            **{name: pairs.field(name) for name in ("party", "issue", "stance", *STANCE_LABELS)},
        }
    )


def aggregate_pyarrow(paths: list[str]):
    """Two Arrow tables: documents and mean scores per group, and counts per group and label."""
    flat = flatten_with_pyarrow(paths)
    keys = ["party", "issue", "month"]
    means = flat.group_by(keys).aggregate([("party", "count"), *[(label, "mean") for label in STANCE_LABELS]])
    counts = flat.group_by([*keys, "stance"]).aggregate([("party", "count")])
    return means, counts


def pyarrow_groups(result) -> dict:
    means, counts = result
    by_label = {
        (row["party"], row["issue"], row["month"].date(), row["stance"]): row["party_count"] for row in counts.to_pylist()
    }
    return {
        (row["party"], row["issue"], row["month"].date()): (
            row["party_count"],
            *[by_label.get((row["party"], row["issue"], row["month"].date(), label), 0) for label in STANCE_LABELS],
        )
        for row in means.to_pylist()
    }


def aggregate_pandas(paths: list[str]):
    """pandas as its users would write it: read the files, explode the lists, group."""
    import pandas as pd

    frame = pd.read_parquet(paths, columns=["published", "stances"]).explode("stances").dropna(subset=["stances"])
    pairs = pd.DataFrame(frame["stances"].tolist())
    pairs["month"] = frame["published"].dt.to_period("M").dt.start_time.to_numpy()
    return group_pandas(pairs)


def aggregate_pandas_on_arrow(paths: list[str]):
    """pandas grouping the pair rows pyarrow flattened (the fast way to feed pandas nested Parquet)."""
    return group_pandas(flatten_with_pyarrow(paths).to_pandas())


def group_pandas(pairs):
    """A DataFrame indexed by (party, issue, month): mean score and count per label."""
    import pandas as pd

    keys = ["party", "issue", "month"]
    counts = pd.crosstab([pairs[key] for key in keys], pairs["stance"]).add_suffix("_count")
    return pairs.groupby(keys)[list(STANCE_LABELS)].mean().join(counts)


def pandas_groups(grouped) -> dict:
    import pandas as pd

    return {
        (party, issue, pd.Timestamp(month).date()): (
            int(sum(row[f"{label}_count"] for label in STANCE_LABELS)),
            *[int(row[f"{label}_count"]) for label in STANCE_LABELS],
        )
        for (party, issue, month), row in grouped.iterrows()
    }


def timed(function, *args, repeats: int) -> tuple[list[float], object]:
    """Seconds of each run (reading the files to the engine's own aggregated table) and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*args)
        seconds.append(time.perf_counter() - started)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="scored documents (rows of score's output)")
    parser.add_argument("--files", type=int, default=8, help="Parquet files they are spread over (score writes chunks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    parser.add_argument("--folder", default=None, help="where to write the files (default: a temporary folder)")
    parser.add_argument("--skip", nargs="*", default=[], help="engines to skip: pandas, pandas-on-arrow, pyarrow")
    parser.add_argument("--output", default=None, help="write the figures here as JSON")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp(prefix="trends-bench-"))
    started = time.perf_counter()
    paths = generate(folder, args.rows, args.files)
    size = sum(os.path.getsize(path) for path in paths)
    print(
        f"generated {args.rows} scored rows in {len(paths)} files ({size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
    )

    figures: dict = {"rows": args.rows, "files": len(paths), "megabytes": round(size / 1e6), "cpus": os.cpu_count()}
    seconds, result = timed(aggregate_duckdb, paths, args.threads, repeats=args.repeats)
    reference = duckdb_groups(result)
    figures["duckdb"] = seconds
    figures["pair_rows"] = sum(value[0] for value in reference.values())
    figures["groups"] = len(reference)
    end_to_end, trends = timed(lambda: trends_of_scored(paths, "month", threads=args.threads), repeats=args.repeats)
    figures["duckdb_end_to_end"] = end_to_end
    engines = {
        "pyarrow": (aggregate_pyarrow, pyarrow_groups),
        "pandas-on-arrow": (aggregate_pandas_on_arrow, pandas_groups),
        "pandas": (aggregate_pandas, pandas_groups),
    }
    for name, (function, groups) in engines.items():
        if name in args.skip:
            continue
        seconds, native = timed(function, paths, repeats=1 if name == "pandas" else args.repeats)
        result = groups(native)
        if result != reference:
            raise SystemExit(f"{name} disagrees with DuckDB on {len(set(result.items()) ^ set(reference.items()))} groups")
        figures[name] = seconds
    print(f"{figures['pair_rows']} pair rows -> {figures['groups']} (party, issue, month) groups; {len(trends.shifts)} shifts")
    for name in ("duckdb", "duckdb_end_to_end", *engines):
        if name in figures:
            times = figures[name]
            print(f"{name:>18}: median {statistics.median(times):6.2f} s, best {min(times):6.2f} s over {len(times)} run(s)")
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
