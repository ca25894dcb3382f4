"""The comparison table for the HTML report: an inline HTML table and the front page's headline results.

Snakemake's report shows images, HTML and PDF inline and offers anything else (a CSV) as a download, so
the comparison table is also written as a small self-contained HTML page (``comparison.html``) with the
same rows, columns and rounding as ``comparison.md``. The report's front page (``workflow/report/
workflow.rst``) includes ``headline.rst``: per dataset and pruning rate, the accuracy gap, the size
reduction and the speed-ups, in words, from the same table. Both are written by the ``compare`` rule from
the table read back from MLflow, so the report, the tables and the UI show the same numbers.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from equitable_fl.report import tables

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1em;color:#222}h1{font-size:1.2em}"
    "p{max-width:60em;color:#444}table{border-collapse:collapse;font-size:.9em}"
    "th,td{padding:.3em .6em;border-bottom:1px solid #ddd}td{white-space:nowrap}"
    "th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
)

# (column base in the comparison table, how the front page names it, unit suffix)
SPEEDUPS = (
    ("flop_speedup_model", "FLOPs of the final model", "×"),
    ("flop_speedup_training", "FLOPs of the whole training", "×"),
    ("wallclock_speedup", "measured wall-clock", "×"),
    ("rounds_speedup", "rounds to target", "×"),
    ("simulated_time_speedup", "simulated fleet time", "×"),
)


def table_html(df: pd.DataFrame, title: str, note: str | None = None) -> str:
    """A standalone page with ``df`` as a table: ``x_mean``/``x_std`` pairs shown as "mean ± std"."""
    headers, rows, numeric = tables.markdown_frame(df)
    head = "".join(f"<th>{html.escape(h).replace('_', '_<wbr>')}</th>" for h in headers)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="n">{html.escape(v)}</td>' if n else f"<td>{html.escape(v)}</td>"
            for v, n in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    parts += [f"<table><thead><tr>{head}</tr></thead><tbody>", body, "</tbody></table></body></html>", ""]
    return "\n".join(parts)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _mean_std(row: Mapping[str, Any], base: str, unit: str, signed: bool = False) -> str:
    mean, std = row.get(f"{base}_mean"), row.get(f"{base}_std")
    if _missing(mean):
        return tables.NA
    text = f"{float(mean):+.2f}" if signed else f"{float(mean):.2f}"
    if not _missing(std):
        text += f" ± {float(std):.2f}"
    return f"{text}{unit}"


def headline_rst(df: pd.DataFrame) -> str:
    """reStructuredText: per dataset (and variant) a bullet per pruning rate, its numbers nested under it."""
    if df.empty:
        return "*No cell of the grid has been logged yet.*\n"
    lines: list[str] = []
    for (dataset, variant), group in df.groupby(["dataset", "variant"], sort=True):
        lines += [f"**{dataset}**" + (f" (variant {variant})" if variant else ""), ""]
        for row in group.sort_values("pruning_rate").to_dict(orient="records"):
            seeds = int(row["n_seeds"])
            speedups = ", ".join(
                f"{label} {_mean_std(row, base, unit)}"
                for base, label, unit in SPEEDUPS
                if f"{base}_mean" in row
            )
            lines += [
                f"- pruning rate {row['pruning_rate']:g}, sparsity {_mean_std(row, 'sparsity_pct', ' %')} "
                f"({seeds} seed{'s' if seeds != 1 else ''})",
                "",
                f"  - accuracy gap {_mean_std(row, 'accuracy_gap_pp', ' pp', signed=True)}: "
                f"{_mean_std(row, 'final_accuracy_pct', ' %')} against "
                f"{_mean_std(row, 'vanilla_accuracy_pct', ' %')} for vanilla FL",
                f"  - size reduction {_mean_std(row, 'size_reduction_pct', ' %')}",
                f"  - speed-ups: {speedups}",
                "",
            ]
    return "\n".join(lines)
