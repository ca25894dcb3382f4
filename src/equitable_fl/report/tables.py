"""Per-cell and per-pruning-rate tables of the Equitable-FL versus vanilla-FL comparison.

Units follow the paper's way of reporting: accuracies and every ``*_pct`` column are percentages,
``accuracy_gap_pp`` is Equitable-FL minus vanilla accuracy in percentage points (negative means
Equitable-FL is worse), speed-ups are plain ratios (vanilla cost / Equitable-FL cost, so > 1
favours Equitable-FL), and ``*simulated_seconds*`` are seconds of the simulated fleet's clock.
Missing values (``null`` in a summary, e.g. a target accuracy never reached) become NaN / <NA> in the
frames and "n/a" in Markdown, so one incomplete cell never breaks the report.

The CSV files keep full precision for downstream analysis; the Markdown files round for reading.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from equitable_fl import io
from equitable_fl.records import number as _num

KEY_COLUMNS = ("dataset", "variant", "pruning_rate", "seed")

# Columns stored as nullable integers: counts and round numbers, where "12.0" would only confuse.
INT_COLUMNS = ("seed", "rounds_to_target", "vanilla_rounds_to_target", "clients_final_phase")

# The ``simulated`` section's numbers, under their own names (absent before the fleet had a clock: n/a).
SIMULATED_COLUMNS = (
    "simulated_time_speedup",
    "simulated_seconds_to_target",
    "vanilla_simulated_seconds_to_target",
    "simulated_seconds",
    "vanilla_simulated_seconds",
)

# The ``coverage`` section's fractions, in % (absent in a summary from before coverage: n/a).
COVERAGE_COLUMNS = (
    "client_coverage_pct",
    "data_coverage_pct",
    "vanilla_client_coverage_pct",
    "vanilla_data_coverage_pct",
)

# The ``availability`` section's dropout rates, in % (a static fleet has none: n/a).
AVAILABILITY_COLUMNS = ("dropout_rate_pct", "vanilla_dropout_rate_pct")

CELL_COLUMNS = (
    "dataset",
    "variant",
    "pruning_rate",
    "seed",
    "sparsity_pct",
    "final_accuracy_pct",
    "vanilla_accuracy_pct",
    "accuracy_gap_pp",
    "size_reduction_pct",
    "flop_speedup_model",
    "flop_speedup_training",
    "wallclock_speedup",
    "rounds_to_target",
    "vanilla_rounds_to_target",
    "rounds_speedup",
    *SIMULATED_COLUMNS,
    "comm_reduction_pct",
    "clients_final_phase",
    *COVERAGE_COLUMNS,
    *AVAILABILITY_COLUMNS,
    "bytes_communicated",
    "vanilla_bytes_communicated",
)

# Everything the grouped table averages over seeds.
METRIC_COLUMNS = tuple(c for c in CELL_COLUMNS if c not in KEY_COLUMNS)

NA = "n/a"
PLUS_MINUS = " ± "

UNITS_NOTE = (
    "Accuracies and `*_pct` columns in %; `accuracy_gap_pp` = Equitable-FL − vanilla accuracy in "
    "percentage points; speed-ups are ratios vanilla / Equitable-FL (> 1 favours Equitable-FL); "
    "`*simulated_seconds*` are seconds of the simulated fleet (slowest participant per round); "
    "n/a = not available (e.g. target accuracy never reached)."
)


def load_summaries(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Read the per-cell summaries in the given order (sorting is left to the table builders)."""
    return [io.read_json(p) for p in paths]


def get_path(obj: Mapping[str, Any] | None, *keys: str) -> Any:
    """Nested lookup that returns None for any missing level, so optional fields never raise."""
    cur: Any = obj
    for key in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _scaled(value: Any, factor: float) -> float | None:
    v = _num(value)
    return None if v is None else v * factor


def _ratio_reduction_pct(part: Any, whole: Any) -> float | None:
    """100 × (1 − part / whole); None when either side is missing or ``whole`` is zero."""
    p, w = _num(part), _num(whole)
    if p is None or w is None or w == 0:
        return None
    return 100.0 * (1.0 - p / w)


def cell_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one summary into the ``CELL_COLUMNS`` row (None where the summary has no value)."""
    final = summary.get("final") or {}
    rtt = summary.get("rounds_to_target") or {}
    phases = summary.get("phases") or []
    acc_eq = _scaled(final.get("final_accuracy"), 100.0)
    acc_van = _scaled(final.get("vanilla_accuracy"), 100.0)
    # Recompute the gap from the two accuracies shown beside it so the row is self-consistent; fall
    # back to the stored gap only if an accuracy is missing.
    gap = (
        acc_eq - acc_van if acc_eq is not None and acc_van is not None else _num(final.get("accuracy_gap_pp"))
    )
    last_phase = phases[-1] if phases else {}
    return {
        "dataset": summary.get("dataset"),
        "variant": summary.get("variant", ""),
        "pruning_rate": _num(summary.get("pruning_rate")),
        "seed": summary.get("seed"),
        "sparsity_pct": _scaled(final.get("sparsity"), 100.0),
        "final_accuracy_pct": acc_eq,
        "vanilla_accuracy_pct": acc_van,
        "accuracy_gap_pp": gap,
        "size_reduction_pct": _num(final.get("size_reduction_pct")),
        "flop_speedup_model": _num(final.get("flop_speedup_model")),
        "flop_speedup_training": _num(final.get("flop_speedup_training")),
        "wallclock_speedup": _num(get_path(summary, "measured", "wallclock_speedup")),
        "rounds_to_target": rtt.get("rounds_to_target"),
        "vanilla_rounds_to_target": rtt.get("vanilla_rounds_to_target"),
        "rounds_speedup": _num(rtt.get("rounds_speedup")),
        **{c: _num(get_path(summary, "simulated", c)) for c in SIMULATED_COLUMNS},
        "comm_reduction_pct": _ratio_reduction_pct(
            final.get("bytes_communicated"), final.get("vanilla_bytes_communicated")
        ),
        "clients_final_phase": last_phase.get("clients_took_part"),
        **{
            c: _scaled(get_path(summary, "coverage", c.removesuffix("_pct")), 100.0) for c in COVERAGE_COLUMNS
        },
        **{
            c: _scaled(get_path(summary, "availability", c.removesuffix("_pct")), 100.0)
            for c in AVAILABILITY_COLUMNS
        },
        "bytes_communicated": _num(final.get("bytes_communicated")),
        "vanilla_bytes_communicated": _num(final.get("vanilla_bytes_communicated")),
    }


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Give every metric column a numeric dtype: nullable Int64 for counts, float64 otherwise."""
    for col in df.columns:
        if col in ("dataset", "variant"):
            df[col] = df[col].astype(str)
        elif col in INT_COLUMNS:
            # Raises on a fractional value: a round number or a count of 12.5 means a broken summary.
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return df


def cell_table(summaries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per grid cell, sorted by dataset, pruning rate and seed.

    Raises ``ValueError`` if two summaries claim the same cell: averaging or plotting a duplicate would
    silently weight that cell twice, and it always means the inputs were wired wrongly.
    """
    rows = [cell_row(s) for s in summaries]
    df = pd.DataFrame(rows, columns=list(CELL_COLUMNS))
    df = _typed(df)
    dup = df.duplicated(subset=list(KEY_COLUMNS), keep=False)
    if dup.any():
        cells = sorted({tuple(r) for r in df.loc[dup, list(KEY_COLUMNS)].itertuples(index=False)})
        raise ValueError(f"duplicate grid cells (dataset, pruning_rate, seed): {cells}")
    return df.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def grouped_table(summaries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof=1) over seeds for each dataset × variant × pruning rate.

    Columns are ``dataset``, ``variant``, ``pruning_rate``, ``n_seeds``, ``n_reached_target`` and
    ``<metric>_mean`` / ``<metric>_std`` for every metric of ``cell_table``. Means skip missing values, so
    the rounds-to-target mean covers only the seeds that reached the target; ``n_reached_target`` says how
    many that was.
    With a single seed the std is NaN (rendered "n/a"/omitted), not a misleading 0.
    """
    cells = cell_table(summaries)
    group_cols = ["dataset", "variant", "pruning_rate"]  # variants are settings, never averaged together
    out_cols = [*group_cols, "n_seeds", "n_reached_target"]
    for col in METRIC_COLUMNS:
        out_cols += [f"{col}_mean", f"{col}_std"]
    if cells.empty:
        return pd.DataFrame(columns=out_cols)
    metrics = cells[list(METRIC_COLUMNS)].astype("float64")
    metrics[group_cols] = cells[group_cols]
    grouped = metrics.groupby(group_cols, sort=True)
    mean = grouped.mean()
    std = grouped.std(ddof=1)
    result = pd.DataFrame(index=mean.index)
    result["n_seeds"] = grouped.size().astype("int64")
    result["n_reached_target"] = grouped["rounds_to_target"].count().astype("int64")
    for col in METRIC_COLUMNS:
        result[f"{col}_mean"] = mean[col]
        result[f"{col}_std"] = std[col]
    return result.reset_index()[out_cols]


# ----------------------------------------------------------------------------------------------------
# Markdown rendering


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def format_value(value: Any, column: str) -> str:
    """Render one cell for Markdown: counts as integers, rates compactly, other numbers to 2 decimals."""
    if _is_missing(value):
        return NA
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if column == "pruning_rate":
            return f"{v:g}"
        if column in INT_COLUMNS and v.is_integer():
            return str(int(v))
        return f"{v:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _mean_std_bases(columns: Sequence[str]) -> list[str]:
    return [c[: -len("_mean")] for c in columns if c.endswith("_mean") and f"{c[:-5]}_std" in columns]


def markdown_frame(df: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, rendered rows and right-alignment flags; ``x_mean``/``x_std`` pairs merge into one column.

    A merged cell reads "97.20 ± 0.31"; with no std (a single seed) it shows the mean alone.
    """
    columns = [str(c) for c in df.columns]
    bases = set(_mean_std_bases(columns))
    headers: list[str] = []
    render: list[tuple[str, str | None]] = []  # (value column, std column or None)
    for col in columns:
        if col.endswith("_std") and col[:-4] in bases:
            continue
        if col.endswith("_mean") and col[:-5] in bases:
            base = col[:-5]
            headers.append(base)
            render.append((col, f"{base}_std"))
        else:
            headers.append(col)
            render.append((col, None))
    rows: list[list[str]] = []
    for record in df.to_dict(orient="records"):
        line = []
        for (col, std_col), header in zip(render, headers, strict=True):
            text = format_value(record[col], header)
            if std_col is not None and text != NA and not _is_missing(record[std_col]):
                text += PLUS_MINUS + format_value(record[std_col], header)
            line.append(text)
        rows.append(line)
    numeric = [col != "dataset" and pd.api.types.is_numeric_dtype(df[col]) for col, _ in render]
    return headers, rows, numeric


def to_markdown(df: pd.DataFrame, title: str, note: str | None = UNITS_NOTE) -> str:
    """A Markdown document: ``# title``, an optional units note, then a pipe table (no ``tabulate``)."""
    headers, rows, numeric = markdown_frame(df)
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("| " + " | ".join("---:" if n else ":---" for n in numeric) + " |")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, csv_path: str | Path, md_path: str | Path, title: str) -> None:
    """Write ``df`` as a full-precision CSV and a rounded Markdown table, each atomically."""
    io.write_text(csv_path, df.to_csv(index=False, lineterminator="\n"))
    io.write_text(md_path, to_markdown(df, title))
