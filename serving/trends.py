"""Stance over time: per (party, issue) and period, how many documents took each stance, and where that
changed beyond chance.

One engine for `stanceline trends` (scored Parquet files or the review store) and `GET /v1/trends`: the
pair rows (PAIR_COLUMNS, one per answered pair of a document) are aggregated by DuckDB, which reads only
the columns it needs from Parquet and groups a million rows in about a second on two cores
(`benchmarks/trends_bench.py` measures it against pandas and pyarrow). The statistics on the aggregated
table (Wilson intervals, shift tests) are small and done here in Python.

Shifts: between consecutive periods of a pair that both have at least `min_documents` documents, each
stance's share is compared with a pooled two-proportion z-test. A change is a shift when it is significant
after a Bonferroni correction over every test of that pair's series (family-wise error `alpha` per pair)
and at least `min_change` in size, so a large feed's tiny but "significant" wobbles are not reported.
"""

from __future__ import annotations

import calendar
import glob
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby, pairwise
from typing import Any

from serving.schemas import parse_iso
from serving.store import as_utc
from training.labels import STANCE_LABELS

PERIODS = ("day", "week", "month")
"""Calendar periods (UTC): a week starts on Monday."""
Z_95 = 1.959963984540054
PAIR_COLUMNS = ("document", "published", "published_source", "party", "issue", "stance", *STANCE_LABELS)
"""A pair row: the document's id, its publication date (UTC, no zone) and whether it was `given` or the
`received` time, the pair, the stance label the model chose and its calibrated score for each label."""


@dataclass(frozen=True)
class ShiftRule:
    """When a change of a stance's share between two periods counts as a shift."""

    alpha: float = 0.01
    """Family-wise false-alarm rate per pair (Bonferroni over the pair's labels x period transitions)."""
    min_documents: int = 20
    """Periods with fewer documents are not compared (their shares are too uncertain)."""
    min_change: float = 0.10
    """Smallest change of a share (absolute, 0.10 = 10 points) worth reporting."""


def wilson_interval(successes: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a share: unlike the normal approximation it stays inside [0, 1] and
    holds up for the small counts of a quiet period."""
    if total == 0:
        return 0.0, 0.0
    share = successes / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_test(before: int, before_total: int, after: int, after_total: int) -> tuple[float, float]:
    """(z, two-sided p) of the pooled two-proportion z-test that two shares are equal."""
    pooled = (before + after) / (before_total + after_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / before_total + 1 / after_total))
    if spread == 0:
        return 0.0, 1.0
    z = (after / after_total - before / before_total) / spread
    return z, math.erfc(abs(z) / math.sqrt(2))


def period_end(start: datetime, period: str) -> datetime:
    """The first moment after the period that starts at `start` (the calendar's end for its last period)."""
    length = {"day": 1, "week": 7}.get(period) or calendar.monthrange(start.year, start.month)[1]
    return moved(start, timedelta(days=length))


def moved(moment: datetime, step: timedelta) -> datetime:
    """`moment + step`, clamped to the calendar's ends (years 1 and 9999) instead of overflowing."""
    try:
        return moment + step
    except OverflowError:
        return datetime.max if step > timedelta(0) else datetime.min


def period_start(moment: datetime, period: str) -> datetime:
    """The start of the period that holds `moment` (as DuckDB's date_trunc)."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return moved(day, -timedelta(days=day.weekday()))
    if period == "month":
        return day.replace(day=1)
    return day


def parse_window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """The [start, end) of `--from`/`--to` (or `from`/`to`): ISO 8601, UTC when no zone is given. A date
    alone as the end includes that whole day; a ValueError names a bad value."""
    begins = as_utc(parse_iso(start, "from")) if start else None
    ends = as_utc(parse_iso(end, "to")) if end else None
    if ends is not None and len(end.strip()) == 10:
        ends = moved(ends, timedelta(days=1))
    if begins is not None and ends is not None and ends <= begins:
        raise ValueError(f"to ({end}) must come after from ({start})")
    return begins, ends


def check_period(period: str) -> None:
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")


@dataclass
class Trends:
    """The aggregated series of every pair, and the shifts found in them."""

    period: str
    rows: list[dict[str, Any]]
    """One per (pair, period), ordered by pair then period: see `series_row`."""
    shifts: list[dict[str, Any]]
    rule: ShiftRule = field(default_factory=ShiftRule)

    def pairs(self) -> list[dict[str, Any]]:
        """Every pair with its series and shifts, the most active (most documents) first."""
        by_pair: dict[tuple[str, str | None], dict[str, Any]] = {}
        for row in self.rows:
            key = (row["party"], row["issue"])
            pair = by_pair.setdefault(
                key, {"party": key[0], "issue": key[1], "documents": 0, "undated": 0, "periods": [], "shifts": []}
            )
            pair["documents"] += row["documents"]
            pair["undated"] += row["undated"]
            pair["periods"].append(row)
        for shift in self.shifts:
            by_pair[(shift["party"], shift["issue"])]["shifts"].append(shift)
        pairs = list(by_pair.values())
        for pair in pairs:
            pair["largest_change"] = largest_change(pair["periods"], self.rule.min_documents)
        return sorted(pairs, key=lambda pair: (-pair["documents"], pair["party"], pair["issue"] or ""))

    def top_pairs(self, count: int) -> list[dict[str, Any]]:
        """The `count` most active pairs, then the `count` with the largest change not already among them."""
        pairs = self.pairs()
        chosen = pairs[:count]
        seen = {(pair["party"], pair["issue"]) for pair in chosen}
        by_change = sorted(pairs, key=lambda pair: -pair["largest_change"])
        chosen += [pair for pair in by_change if (pair["party"], pair["issue"]) not in seen and pair["largest_change"] > 0][
            :count
        ]
        return chosen


def largest_change(periods: list[dict[str, Any]], min_documents: int) -> float:
    """The largest absolute change of any stance's share between consecutive periods with enough documents."""
    counted = [row for row in periods if row["documents"] >= min_documents]
    return max(
        (
            abs(after[f"{label}_share"] - before[f"{label}_share"])
            for before, after in pairwise(counted)
            for label in STANCE_LABELS
        ),
        default=0.0,
    )


def series_row(aggregate: dict[str, Any], period: str) -> dict[str, Any]:
    """A (pair, period) row: documents, how many of them were dated by their received time, and per stance
    label its count, share with a 95% Wilson interval, and mean calibrated score."""
    total = aggregate["documents"]
    row = {
        "party": aggregate["party"],
        "issue": aggregate["issue"],
        "period": aggregate["period"],
        "period_end": period_end(aggregate["period"], period),
        "documents": total,
        "undated": aggregate["undated"],
    }
    for label in STANCE_LABELS:
        count = aggregate[f"{label}_count"]
        low, high = wilson_interval(count, total)
        row[f"{label}_count"] = count
        row[f"{label}_share"] = count / total if total else 0.0
        row[f"{label}_low"] = low
        row[f"{label}_high"] = high
        row[f"{label}_mean_score"] = aggregate[f"{label}_mean_score"]
    return row


def find_shifts(rows: list[dict[str, Any]], rule: ShiftRule) -> list[dict[str, Any]]:
    """Shifts in series rows ordered by pair then period (see the module's docstring for the rule)."""
    shifts: list[dict[str, Any]] = []
    for key, series in groupby(rows, key=lambda row: (row["party"], row["issue"])):
        counted = [row for row in series if row["documents"] >= rule.min_documents]
        tests = len(STANCE_LABELS) * (len(counted) - 1)
        for before, after in pairwise(counted):
            for label in STANCE_LABELS:
                z, p = two_proportion_test(
                    before[f"{label}_count"], before["documents"], after[f"{label}_count"], after["documents"]
                )
                change = after[f"{label}_share"] - before[f"{label}_share"]
                if min(1.0, p * tests) < rule.alpha and abs(change) >= rule.min_change:
                    shifts.append(
                        {
                            "party": key[0],
                            "issue": key[1],
                            "stance": label,
                            "period": after["period"],
                            "previous_period": before["period"],
                            "share_before": before[f"{label}_share"],
                            "share_after": after[f"{label}_share"],
                            "change": change,
                            "documents_before": before["documents"],
                            "documents_after": after["documents"],
                            "z": z,
                            "p_value": min(1.0, p * tests),
                        }
                    )
    return shifts


def connect(threads: int | None = None):
    """An in-memory DuckDB connection (all cores unless `threads`)."""
    import duckdb

    connection = duckdb.connect(":memory:")
    if threads:
        connection.execute(f"SET threads TO {int(threads)}")
    return connection


def parquet_files(inputs: list[str]) -> list[str]:
    """The Parquet files of `stanceline score` outputs given as files, folders (searched recursively) or globs."""
    files: list[str] = []
    for given in inputs:
        if os.path.isdir(given):
            found = sorted(glob.glob(os.path.join(given, "**", "*.parquet"), recursive=True))
        elif any(char in given for char in "*?["):
            found = sorted(glob.glob(given, recursive=True))
        elif os.path.isfile(given):
            found = [given]
        else:
            raise FileNotFoundError(f"input {given} does not exist")
        if not found:
            raise FileNotFoundError(f"input {given} holds no .parquet file (the output folder of `stanceline score`)")
        files += found
    return files


PAIRS_FROM_SCORED = f"""
SELECT id AS document, published, published_source, s.party, s.issue, s.stance,
       {", ".join(f"s.{label}" for label in STANCE_LABELS)}
FROM (SELECT id, published, published_source, unnest(stances) AS s FROM scored)
"""
"""The pair rows of scored Parquet files: one per struct of each row's `stances` list."""


def register_scored(connection, inputs: list[str]) -> None:
    """Make the view `pairs` (PAIR_COLUMNS) over `stanceline score` output files."""
    files = parquet_files(inputs)
    connection.read_parquet(files, union_by_name=True).create_view("scored")
    columns = {row[0] for row in connection.execute("DESCRIBE scored").fetchall()}
    missing = {"published", "published_source", "stances"} - columns
    if missing:
        raise ValueError(
            f"{inputs[0]} lacks the column(s) {', '.join(sorted(missing))}: it was scored by a version of `stanceline "
            "score` before dates; score the input again into a new --output folder"
        )
    connection.execute(f"CREATE VIEW pairs AS {PAIRS_FROM_SCORED}")


def register_rows(connection, rows: list[dict[str, Any]]) -> None:
    """Make the view `pairs` over pair rows held in memory (the store's)."""
    import pyarrow as pa

    schema = pa.schema(
        [
            ("document", pa.string()),
            ("published", pa.timestamp("us")),
            ("published_source", pa.string()),
            ("party", pa.string()),
            ("issue", pa.string()),
            ("stance", pa.string()),
            *[(label, pa.float64()) for label in STANCE_LABELS],
        ]
    )
    connection.register("pair_rows", pa.Table.from_pylist(rows, schema=schema))
    connection.execute("CREATE VIEW pairs AS SELECT * FROM pair_rows")


def aggregate_sql(
    period: str, party: str | None, issue: str | None, start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    """The query that groups the `pairs` view by pair and period, and its parameters."""
    conditions, parameters = [], [period]
    for condition, value in (("party = ?", party), ("issue = ?", issue), ("published >= ?", start), ("published < ?", end)):
        if value is not None:
            conditions.append(condition)
            parameters.append(value)
    counts = ",\n".join(
        f"count(*) FILTER (WHERE stance = '{label}') AS {label}_count, avg({label}) AS {label}_mean_score"
        for label in STANCE_LABELS
    )
    sql = f"""
    SELECT party, issue, date_trunc(?, published) AS period, count(*) AS documents,
           count(*) FILTER (WHERE published_source = 'received') AS undated,
           {counts}
    FROM pairs
    {"WHERE " + " AND ".join(conditions) if conditions else ""}
    GROUP BY party, issue, period
    ORDER BY party, issue NULLS FIRST, period
    """
    return sql, parameters


def compute(
    connection,
    period: str = "month",
    party: str | None = None,
    issue: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    rule: ShiftRule | None = None,
) -> Trends:
    """Aggregate the connection's `pairs` view (published in [start, end), of `party` and `issue` when
    given) by pair and `period`, and find the shifts."""
    check_period(period)
    rule = rule or ShiftRule()
    sql, parameters = aggregate_sql(period, party, issue, start, end)
    result = connection.execute(sql, parameters)
    names = [column[0] for column in result.description]
    rows = [series_row(dict(zip(names, values, strict=True)), period) for values in result.fetchall()]
    return Trends(period, rows, find_shifts(rows, rule), rule)


def trends_of_scored(inputs: list[str], period: str = "month", threads: int | None = None, **filters: Any) -> Trends:
    """Trends over `stanceline score` output files."""
    connection = connect(threads)
    try:
        register_scored(connection, inputs)
        return compute(connection, period, **filters)
    finally:
        connection.close()


def trends_of_rows(rows: list[dict[str, Any]], period: str = "month", **filters: Any) -> Trends:
    """Trends over pair rows in memory (the review store's `stance_rows`)."""
    connection = connect(threads=1)
    try:
        register_rows(connection, rows)
        return compute(connection, period, **filters)
    finally:
        connection.close()
