"""The files `stanceline trends` writes: the series as Parquet and CSV, the shifts as CSV, and one HTML
report with a chart per pair (inline SVG, no script or network: it opens offline and prints)."""

from __future__ import annotations

import csv
import html
from datetime import datetime
from pathlib import Path
from typing import Any

from serving.trends import Trends
from training.labels import STANCE_LABELS

COLOURS = {"cooperative": "#2e7d32", "pressure": "#c62828", "neutral": "#90a4ae"}
CHART_WIDTH, SHARE_HEIGHT, COUNT_HEIGHT, LEFT, GAP = 760, 170, 50, 44, 16


def period_label(start: datetime, period: str) -> str:
    return start.strftime("%Y-%m" if period == "month" else "%Y-%m-%d")


def write_tables(trends: Trends, folder: Path) -> list[Path]:
    """trends.parquet and trends.csv (one row per pair and period), shifts.csv; returns the paths."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    series = pa.Table.from_pylist(trends.rows) if trends.rows else pa.table({"party": pa.array([], pa.string())})
    pq.write_table(series, folder / "trends.parquet")
    pa_csv.write_csv(series, folder / "trends.csv")
    shift_columns = [
        "party",
        "issue",
        "stance",
        "period",
        "previous_period",
        "share_before",
        "share_after",
        "change",
        "documents_before",
        "documents_after",
        "z",
        "p_value",
    ]
    with open(folder / "shifts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, shift_columns)
        writer.writeheader()
        writer.writerows(trends.shifts)
    return [folder / "trends.parquet", folder / "trends.csv", folder / "shifts.csv"]


def pair_name(pair: dict[str, Any]) -> str:
    return f"{pair['party']} on {pair['issue']}" if pair["issue"] else f"{pair['party']} (overall)"


def chart_svg(pair: dict[str, Any], period: str) -> str:
    """Stacked bars of the stance shares per period, the document counts below them, and a triangle over
    each period where a shift was found."""
    periods = pair["periods"]
    slot = (CHART_WIDTH - LEFT - 8) / max(1, len(periods))
    bar = max(1.0, slot * 0.8)
    most = max(row["documents"] for row in periods) or 1
    top = 14
    count_top = top + SHARE_HEIGHT + GAP
    height = count_top + COUNT_HEIGHT + 22
    shifted = {(shift["period"], shift["stance"]): shift for shift in pair["shifts"]}
    parts = [
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {height}" width="{CHART_WIDTH}" height="{height}" '
        f'role="img" aria-label="stance shares of {html.escape(pair_name(pair))} per {period}">',
        f'<text x="{LEFT - 6}" y="{top + 4}" text-anchor="end" class="axis">100%</text>',
        f'<text x="{LEFT - 6}" y="{top + SHARE_HEIGHT}" text-anchor="end" class="axis">0%</text>',
        f'<text x="{LEFT - 6}" y="{count_top + 8}" text-anchor="end" class="axis">{most}</text>',
    ]
    label_every = max(1, round(len(periods) / 8))
    for index, row in enumerate(periods):
        x = LEFT + index * slot + (slot - bar) / 2
        y = top + SHARE_HEIGHT
        when = period_label(row["period"], period)
        for label in STANCE_LABELS:
            height_of = row[f"{label}_share"] * SHARE_HEIGHT
            y -= height_of
            tip = (
                f"{when}: {label} {row[f'{label}_share']:.0%} "
                f"(95% CI {row[f'{label}_low']:.0%}-{row[f'{label}_high']:.0%}) of {row['documents']} documents"
            )
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height_of:.1f}" fill="{COLOURS[label]}">'
                f"<title>{html.escape(tip)}</title></rect>"
            )
        count_height = row["documents"] / most * COUNT_HEIGHT
        parts.append(
            f'<rect x="{x:.1f}" y="{count_top + COUNT_HEIGHT - count_height:.1f}" width="{bar:.1f}" '
            f'height="{count_height:.1f}" fill="#5c6bc0"><title>{when}: {row["documents"]} documents</title></rect>'
        )
        for label in STANCE_LABELS:
            shift = shifted.get((row["period"], label))
            if shift:
                parts.append(
                    f'<path d="M{x + bar / 2:.1f},{top - 2} l-5,-9 h10 z" fill="{COLOURS[label]}" class="shift">'
                    f"<title>shift: {label} {shift['share_before']:.0%} to {shift['share_after']:.0%} "
                    f"(p={shift['p_value']:.2g})</title></path>"
                )
        if index % label_every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis">{when}</text>')
    parts.append("</svg>")
    return "".join(parts)


def shift_list(shifts: list[dict[str, Any]], period: str) -> str:
    if not shifts:
        return "<p class=note>No shift beyond chance.</p>"
    items = "".join(
        f"<li><b class={shift['stance']}>{shift['stance']}</b> {shift['share_before']:.0%} &rarr; "
        f"{shift['share_after']:.0%} in {period_label(shift['period'], period)} (after "
        f"{period_label(shift['previous_period'], period)}; {shift['documents_before']} &rarr; "
        f"{shift['documents_after']} documents, p = {shift['p_value']:.2g})</li>"
        for shift in shifts
    )
    return f"<ul class=shifts>{items}</ul>"


def write_html(trends: Trends, path: Path, source: str, top: int = 10) -> Path:
    """The report: a summary, every shift, and a chart for the `top` pairs by volume and by change."""
    pairs = trends.pairs()
    shown = trends.top_pairs(top)
    rule = trends.rule
    legend = " ".join(f'<span class=key style="background:{COLOURS[label]}"></span>{label}' for label in STANCE_LABELS)
    undated = sum(pair["undated"] for pair in pairs)
    sections = "".join(
        f"<section><h2>{html.escape(pair_name(pair))}</h2><p class=note>{pair['documents']} documents; "
        f"largest change between {trends.period}s: {pair['largest_change']:.0%}</p>"
        f"{chart_svg(pair, trends.period)}{shift_list(pair['shifts'], trends.period)}</section>"
        for pair in shown
    )
    all_shifts = "".join(
        f"<tr><td>{html.escape(pair_name(shift))}</td><td>{period_label(shift['period'], trends.period)}</td>"
        f"<td class={shift['stance']}>{shift['stance']}</td><td>{shift['share_before']:.0%} &rarr; "
        f"{shift['share_after']:.0%}</td><td>{shift['documents_before']} &rarr; {shift['documents_after']}</td>"
        f"<td>{shift['p_value']:.2g}</td></tr>"
        for shift in trends.shifts
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stanceline trends</title>
<style>
body {{ font: 14px/1.5 system-ui, sans-serif; color: #1d2733; max-width: 900px; margin: 24px auto; padding: 0 16px; }}
section {{ border-top: 1px solid #dde3ea; padding: 8px 0 16px; }}
h2 {{ font-size: 17px; margin: 8px 0 0; }} .note {{ color: #555; margin: 2px 0 6px; }}
.axis {{ font-size: 10px; fill: #666; }} .key {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 8px; border-bottom: 1px solid #eef1f4; text-align: left; }}
.cooperative {{ color: #2e7d32; }} .pressure {{ color: #c62828; }} .neutral {{ color: #607d8b; }}
</style></head><body>
<h1>Stance over time</h1>
<p>{html.escape(source)}: {sum(pair["documents"] for pair in pairs)} answered pairs in {len(pairs)} (party, issue)
pairs, per {trends.period} (UTC){f"; {undated} dated by their received time" if undated else ""}.
Shares carry 95% Wilson intervals (hover a bar). A shift: a stance's share changed by at least
{rule.min_change * 100:.0f} percentage points between consecutive {trends.period}s with at least {rule.min_documents} documents each,
significant at {rule.alpha:g} (two-proportion z-test, Bonferroni over each pair's tests).</p>
<p>{legend}</p>
<h2>Shifts ({len(trends.shifts)})</h2>
{f"<table><tr><th>Pair</th><th>{trends.period}</th><th>Stance</th><th>Share</th><th>Documents</th><th>p</th></tr>{all_shifts}</table>" if all_shifts else "<p class=note>No shift beyond chance.</p>"}
<h2>The {top} most active pairs, then the {top} that changed most</h2>
{sections}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
