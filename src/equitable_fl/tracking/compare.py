"""The comparison tables, read back from MLflow with ``mlflow.search_runs``.

One row per dataset × pruning rate: Equitable-FL against vanilla FL, mean ± sample std (ddof=1) over
seeds. Each Equitable-FL parent run is paired with the vanilla parent run of the same (dataset, seed), so
the vanilla columns and the gap average exactly the seeds that the Equitable-FL columns do. Column names
and units are those of ``by_rate.csv`` (``equitable_fl.report.tables``): accuracies and ``*_pct`` in %,
speed-ups as ratios vanilla / Equitable-FL. The accuracy-vs-sparsity figure is drawn from this table, so
the report's figure and the cited numbers are the same numbers. The same table is written as HTML for
the report (``comparison.html``) with the front page's headline results (``headline.rst``).

Percentages are rounded per cell to the precision they are measured at before averaging, and means and
standard deviations keep ten significant digits (:mod:`equitable_fl.tracking.precision`): the CSV says
``96.9``, not ``96.89999999999999``.

Reading from the store rather than from the summaries is deliberate: what the table says is then exactly
what users see and filter in the MLflow UI, and a cell missing from the store fails the table instead of
being silently absent from one view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from equitable_fl import io
from equitable_fl.grid import EQUITABLE, VANILLA, GridCell, cells
from equitable_fl.report import html, tables
from equitable_fl.tracking import precision, store
from equitable_fl.tracking.cells import ROLE_CELL

KEYS = ("dataset", "variant", "pruning_rate")
COMPARISON_METRICS = (
    "final_accuracy_pct",
    "vanilla_accuracy_pct",
    "accuracy_gap_pp",
    "sparsity_pct",
    "size_reduction_pct",
    "flop_speedup_model",
    "flop_speedup_training",
    "rounds_speedup",
    "wallclock_speedup",
    "simulated_time_speedup",
)
COLUMNS = (*KEYS, "n_seeds", *(f"{m}_{s}" for m in COMPARISON_METRICS for s in ("mean", "std")))
TITLE = "Equitable-FL vs vanilla FL (dataset × pruning rate, mean ± std over seeds), from MLflow"

# Equitable-FL metric (as logged on its parent run) → table column and scale.
_EQ_METRICS = {
    "sparsity": ("sparsity_pct", 100.0),
    "size_reduction_pct": ("size_reduction_pct", 1.0),
    "flop_speedup_model": ("flop_speedup_model", 1.0),
    "flop_speedup_training": ("flop_speedup_training", 1.0),
    "rounds_speedup": ("rounds_speedup", 1.0),
    "wallclock_speedup": ("wallclock_speedup", 1.0),
    "simulated_time_speedup": ("simulated_time_speedup", 1.0),
}


def search_cells(target: store.Target) -> pd.DataFrame:
    """Every active parent run of the experiment, as ``mlflow.search_runs`` returns them."""
    import mlflow

    mlflow.set_tracking_uri(target.uri)
    runs = mlflow.search_runs(
        experiment_names=[target.experiment],
        filter_string=f"tags.role = '{ROLE_CELL}'",
        output_format="pandas",
    )
    assert isinstance(runs, pd.DataFrame)
    return runs


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    """A column of ``search_runs`` output; absent (no run logged that metric) means all NaN."""
    if name in df.columns:
        return df[name]
    return pd.Series(np.nan, index=df.index, dtype="float64")


def _floats(series: pd.Series) -> pd.Series:
    """Metric values as float64; anything that is not a number is NaN (the rule of ``records.number``)."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def paired_cells(runs: pd.DataFrame, grid: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """One row per Equitable-FL cell of ``grid`` with its own metrics and its vanilla run's accuracy.

    ``grid`` has ``datasets``, ``pruning_rates`` (labels as in paths and tags, e.g. "0.5") and ``seeds``.
    Runs of cells outside the grid (an older config's rates) are ignored; a grid cell with no run, or with
    more than one, raises ``ValueError``: the store must hold each cell exactly once.
    """
    datasets = [str(d) for d in grid["datasets"]]
    rates = [str(r) for r in grid["pruning_rates"]]
    seeds = [int(s) for s in grid["seeds"]]
    variants = [str(v) for v in grid.get("variants", [""])]
    if runs.empty:
        runs = pd.DataFrame(columns=["run_id", "tags.method", "tags.dataset", "tags.seed"])
    frame = pd.DataFrame(
        {
            "run_id": _column(runs, "run_id"),
            "method": _column(runs, "tags.method"),
            "dataset": _column(runs, "tags.dataset"),
            "seed": pd.to_numeric(_column(runs, "tags.seed"), errors="coerce"),
            "variant": _column(runs, "tags.variant").astype(object).fillna("").astype(str),
            "rate": _column(runs, "tags.pruning_rate"),
            "final_accuracy": _floats(_column(runs, "metrics.final_accuracy")),
            **{metric: _floats(_column(runs, f"metrics.{metric}")) for metric in _EQ_METRICS},
        }
    )
    in_grid = frame["dataset"].isin(datasets) & frame["seed"].isin(seeds) & frame["variant"].isin(variants)
    eq = frame[in_grid & (frame["method"] == EQUITABLE) & frame["rate"].isin(rates)]
    van = frame[in_grid & (frame["method"] == VANILLA)]

    grid_cells = cells(datasets, seeds, rates, variants)
    expected_eq = {c.key for c in grid_cells}
    expected_van = {c.shared().key for c in grid_cells}
    found_eq = [
        GridCell(d, int(s), r, v).key
        for d, s, r, v in eq[["dataset", "seed", "rate", "variant"]].itertuples(index=False)
    ]
    found_van = [
        GridCell(d, int(s), None, v).key
        for d, s, v in van[["dataset", "seed", "variant"]].itertuples(index=False)
    ]
    problems = []
    missing = sorted((expected_eq - set(found_eq)) | (expected_van - set(found_van)))
    if missing:
        problems.append(f"no run for {missing}")
    dups = sorted({k for k in found_eq + found_van if (found_eq + found_van).count(k) > 1})
    if dups:
        problems.append(f"more than one run for {dups}")
    if problems:
        raise ValueError(
            "the MLflow experiment does not hold every cell of the grid exactly once: "
            + "; ".join(problems)
            + ". Rerun the logging step (snakemake -R track)."
        )

    vanilla = van[["dataset", "seed", "variant", "final_accuracy"]]
    vanilla = vanilla.rename(columns={"final_accuracy": "vanilla_accuracy"})
    paired = eq.merge(vanilla, on=["dataset", "seed", "variant"], how="left", validate="many_to_one")
    out = pd.DataFrame(
        {
            "dataset": paired["dataset"].astype(str),
            "variant": paired["variant"].astype(str),
            "pruning_rate": paired["rate"].astype(float),
            "seed": paired["seed"].astype("int64"),
            "final_accuracy_pct": 100.0 * paired["final_accuracy"],
            "vanilla_accuracy_pct": 100.0 * paired["vanilla_accuracy"],
        }
    )
    out["accuracy_gap_pp"] = out["final_accuracy_pct"] - out["vanilla_accuracy_pct"]
    for metric, (column, scale) in _EQ_METRICS.items():
        out[column] = scale * paired[metric]
    pct = [c for c in out.columns if precision.is_percentage(c)]
    out[pct] = out[pct].round(precision.PERCENT_DECIMALS) + 0.0  # + 0.0: no "-0.0"
    return out.sort_values(["dataset", "variant", "pruning_rate", "seed"], kind="stable").reset_index(
        drop=True
    )


def comparison_table(runs: pd.DataFrame, grid: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """Mean and sample std over seeds per dataset × pruning rate (std is NaN, shown "n/a", for one seed)."""
    rows = paired_cells(runs, grid)
    grouped = rows.groupby(list(KEYS), sort=True)
    mean = grouped[list(COMPARISON_METRICS)].mean()
    std = grouped[list(COMPARISON_METRICS)].std(ddof=1)
    result = pd.DataFrame(index=mean.index)
    result["n_seeds"] = grouped.size().astype("int64")
    for metric in COMPARISON_METRICS:
        result[f"{metric}_mean"] = mean[metric].map(precision.significant)
        result[f"{metric}_std"] = std[metric].map(precision.significant)
    return result.reset_index()[list(COLUMNS)]


def build(
    *,
    results_dir: str,
    grid: Mapping[str, Sequence[Any]],
    out_csv: str,
    out_md: str,
    out_html: str | None = None,
    out_headline: str | None = None,
) -> pd.DataFrame:
    """Read the parent runs from the store; write ``comparison.csv``, ``.md`` and, if asked, ``.html`` and the
    report's ``headline.rst``."""
    target = store.resolve(results_dir)
    target.lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.lock_path), timeout=1800):  # never read while another invocation logs
        store.open_client(target, results_dir)  # fails fast, with the recovery hint, if unreachable
        runs = search_cells(target)
    table = comparison_table(runs, grid)
    note = (
        f"{tables.UNITS_NOTE} Read with `mlflow.search_runs` from experiment `{target.experiment}` at "
        f"`{target.display_uri}`; each Equitable-FL run is paired with the vanilla FL run of the same "
        "dataset and seed."
    )
    io.write_text(out_csv, table.to_csv(index=False, lineterminator="\n"))
    io.write_text(out_md, tables.to_markdown(table, TITLE, note=note))
    if out_html is not None:
        io.write_text(out_html, html.table_html(table, TITLE, note=note.replace("`", "")))
    if out_headline is not None:
        io.write_text(out_headline, html.headline_rst(table))
    return table
