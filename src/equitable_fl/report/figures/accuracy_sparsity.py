"""Accuracy vs sparsity: the paper's headline trade-off, one point per pruning rate.

Unlike the other families this figure is drawn from a per-rate *table*, not from summaries: in the
workflow that table is ``comparison.csv`` read back from MLflow, so the figure shows exactly the numbers
the tables cite. Drawing from summaries goes through the same table (``tables.grouped_table``, the
``by_rate.csv`` builder), so both paths plot identical values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from equitable_fl.report import tables
from equitable_fl.report.figures import style
from equitable_fl.report.figures.summaries import Summary, as_float, nanmean, panel_name


@dataclass(frozen=True)
class SparsityPoint:
    """One pruning rate of one dataset: means and stds over seeds, in % (std 0 when there is one seed)."""

    rate: float
    n_seeds: int
    sparsity: float
    sparsity_std: float
    accuracy: float
    accuracy_std: float
    vanilla: float
    vanilla_std: float


def _cell(record: Mapping[str, Any], column: str) -> float:
    return as_float(record.get(column))


def _std0(value: float) -> float:
    return 0.0 if np.isnan(value) else value


def sparsity_points(table: pd.DataFrame) -> dict[str, list[SparsityPoint]]:
    """dataset → points sorted by pruning rate, from a per-rate table.

    The table is ``comparison.csv`` (read from MLflow) in the workflow, or ``by_rate.csv`` built from
    summaries: both have ``dataset``, ``pruning_rate``, ``n_seeds`` and ``<metric>_mean`` / ``_std`` for
    ``sparsity_pct``, ``final_accuracy_pct`` and ``vanilla_accuracy_pct``. These are exactly the
    plotted numbers.
    """
    if table.empty:
        raise ValueError("no rows to plot")
    points: dict[str, list[SparsityPoint]] = defaultdict(list)
    order = [c for c in ("dataset", "variant", "pruning_rate") if c in table.columns]
    for rec in table.sort_values(order, kind="stable").to_dict(orient="records"):
        variant = rec.get("variant")
        points[panel_name(rec["dataset"], "" if not isinstance(variant, str) else variant)].append(
            SparsityPoint(
                rate=float(rec["pruning_rate"]),
                n_seeds=int(rec["n_seeds"]),
                sparsity=_cell(rec, "sparsity_pct_mean"),
                sparsity_std=_std0(_cell(rec, "sparsity_pct_std")),
                accuracy=_cell(rec, "final_accuracy_pct_mean"),
                accuracy_std=_std0(_cell(rec, "final_accuracy_pct_std")),
                vanilla=_cell(rec, "vanilla_accuracy_pct_mean"),
                vanilla_std=_std0(_cell(rec, "vanilla_accuracy_pct_std")),
            )
        )
    return dict(points)


def plot_accuracy_vs_sparsity(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Accuracy vs sparsity from cell summaries, through the same per-rate table as ``by_rate.csv``."""
    if not summaries:
        raise ValueError("no summaries to plot")
    return plot_accuracy_vs_sparsity_table(tables.grouped_table(summaries), out_stem)


def _pad_ylim(ax: Axes, values: Sequence[float], errs: Sequence[float]) -> None:
    """Fit the y axis to the data with margin, so small accuracy gaps stay visible."""
    lows = [v - e for v, e in zip(values, errs, strict=True) if not np.isnan(v)]
    highs = [v + e for v, e in zip(values, errs, strict=True) if not np.isnan(v)]
    if not lows:
        return
    lo, hi = min(lows), max(highs)
    pad = max(0.5, 0.25 * (hi - lo))
    ax.set_ylim(max(0.0, lo - 2 * pad), min(101.0, hi + pad))  # extra room below for the legend


def plot_accuracy_vs_sparsity_table(table: pd.DataFrame, out_stem: str | Path) -> list[Path]:
    """Final accuracy against final sparsity, one point per pruning rate (mean ± std over seeds).

    Vanilla FL is dense, so it is a horizontal line (the mean over rates of its per-rate mean, which are
    the same seeds' runs) with a ± std band, and the distance of each point below it is the accuracy cost
    of that sparsity. The workflow passes ``comparison.csv`` so that the figure shows the tabled numbers.
    """
    by_dataset = sparsity_points(table)

    def draw() -> Figure:
        fig, axes = style.new_figure(1, len(by_dataset), width=4.6, height=3.6)
        for ax, (dataset, points) in zip(axes[0], by_dataset.items(), strict=True):
            xs = [p.sparsity for p in points]
            ys = [p.accuracy for p in points]
            yerr = [p.accuracy_std for p in points]
            for p in points:
                ax.annotate(
                    f"r={p.rate:g}",
                    (p.sparsity, p.accuracy),
                    xytext=(4, 6),
                    textcoords="offset points",
                    fontsize=7,
                )
            ax.errorbar(
                xs,
                ys,
                xerr=[p.sparsity_std for p in points],
                yerr=yerr,
                fmt="o-",
                color="C0",
                ms=5,
                capsize=3,
                lw=1.3,
                label="Equitable-FL (mean ± std)",
                zorder=3,
            )
            vm = nanmean([p.vanilla for p in points])
            vs = nanmean([p.vanilla_std for p in points])
            vs = 0.0 if np.isnan(vs) else vs
            if not np.isnan(vm):
                ax.axhline(
                    vm, color=style.VANILLA_COLOR, lw=1.2, ls="--", label="vanilla FL, dense (mean ± std)"
                )
                if vs > 0:
                    ax.axhspan(vm - vs, vm + vs, color=style.VANILLA_FILL, alpha=0.25, lw=0)
            n_seeds = max(p.n_seeds for p in points)
            ax.set_title(f"{dataset} ({n_seeds} seed{'s' if n_seeds > 1 else ''} per rate)")
            ax.set_xlabel("final sparsity (% of weights pruned)")
            ax.set_ylabel("final test accuracy (%)")
            ax.set_xlim(-2.0, 102.0)  # sparsity is a share of weights: always show the whole 0–100 % range
            _pad_ylim(ax, [*ys, vm], [*yerr, vs])
            ax.legend(loc="lower left")
        fig.suptitle("Accuracy vs sparsity of the final Equitable-FL model")
        return fig

    return style.render(out_stem, draw)
