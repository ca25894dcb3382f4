"""Quantities against a swept setting: tier thresholds, or the Dirichlet α of the client partition.

A sweep is a set of variants (``grid.variants``); the x value of each is read from its config
(:class:`equitable_fl.sweep.SweepPoint`), never parsed from its name. Thresholds are a vector (one per
tier boundary) with no natural order across tier counts, so the threshold axis is categorical: one
position per setting, fewer tiers first, labelled with the thresholds and the variant's name. α spans
orders of magnitude and is drawn on a log axis; settings of the same sweep that have no α (iid, shards)
sit in a narrow panel beside it, on the same y axis, so the gap they give is read against the same scale.

Every panel shows Equitable-FL at each pruning rate (colour by rate, as in every figure) and vanilla FL
(dark grey, dashed; it does not depend on the rate). Values are means over seeds, with ± std bars when a
setting has more than one seed. A setting without a value (a target never reached, a summary from
before coverage was recorded) is a gap in its line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from equitable_fl.report.figures import style
from equitable_fl.report.figures.simulated_time import time_unit
from equitable_fl.report.figures.summaries import Summary, as_float, rate_label
from equitable_fl.sweep import SweepPoint, by_thresholds

# summary → value; a quantity has an Equitable-FL and a vanilla reading of the same summary
Reader = Callable[[Summary], float]
Cells = dict[str, dict[str, dict[float, list[Summary]]]]  # dataset → variant → rate → seeds


def _get(summary: Summary, *keys: str) -> float:
    cur: Any = summary
    for key in keys:
        cur = cur.get(key) if isinstance(cur, Mapping) else None
    return as_float(cur)


def _pct(*keys: str) -> Reader:
    return lambda s: 100.0 * _get(s, *keys)


def _scaled(factor: float, *keys: str) -> Reader:
    return lambda s: _get(s, *keys) / factor


# (panel title, y label, Equitable-FL reader, vanilla reader or None)
Quantity = tuple[str, str, Reader, Reader | None]
ACCURACY: Quantity = (
    "final accuracy",
    "test accuracy (%)",
    _pct("final", "final_accuracy"),
    _pct("final", "vanilla_accuracy"),
)
CLIENT_COVERAGE: Quantity = (
    "clients that ever took part",
    "share of clients (%)",
    _pct("coverage", "client_coverage"),
    _pct("coverage", "vanilla_client_coverage"),
)
DATA_COVERAGE: Quantity = (
    "training data that ever took part",
    "share of training samples (%)",
    _pct("coverage", "data_coverage"),
    _pct("coverage", "vanilla_data_coverage"),
)
BYTES: Quantity = (
    "bytes communicated (down + up)",
    "MB",
    _scaled(1e6, "final", "bytes_communicated"),
    _scaled(1e6, "final", "vanilla_bytes_communicated"),
)
GAP: Quantity = (
    "accuracy gap, Equitable-FL − vanilla FL",
    "percentage points",
    lambda s: _get(s, "final", "accuracy_gap_pp"),
    None,
)
SIM_TO_TARGET = ("simulated", "simulated_seconds_to_target")
SIM_TOTAL = ("simulated", "simulated_seconds")
VANILLA_SIM_TO_TARGET = ("simulated", "vanilla_simulated_seconds_to_target")
VANILLA_SIM_TOTAL = ("simulated", "vanilla_simulated_seconds")


def group_cells(summaries: Sequence[Summary]) -> Cells:
    """dataset → variant → pruning rate → the seeds' summaries (sorted by seed)."""
    if not summaries:
        raise ValueError("no summaries to plot")
    grid: Cells = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for s in summaries:
        grid[str(s["dataset"])][str(s.get("variant", ""))][float(s["pruning_rate"])].append(s)
    for by_variant in grid.values():
        for by_rate in by_variant.values():
            for cells in by_rate.values():
                cells.sort(key=lambda s: s.get("seed", 0))
    return grid


def _stat(cells: Sequence[Summary], read: Reader) -> tuple[float, float]:
    """Mean and sample std (0 for one seed) of the finite readings; NaN when there are none."""
    values = np.array([read(s) for s in cells], dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), 0.0
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def _rates(cells: Cells) -> list[float]:
    return sorted({r for by_variant in cells.values() for by_rate in by_variant.values() for r in by_rate})


VANILLA = None  # the key of vanilla FL's line in :func:`sweep_values`


def sweep_values(
    by_variant: Mapping[str, Mapping[float, list[Summary]]],
    variants: Sequence[str],
    quantity: Quantity,
    rates: Sequence[float],
) -> dict[float | None, list[tuple[float, float]]]:
    """The plotted numbers: per pruning rate (and ``VANILLA``, if the quantity has a vanilla reading),
    (mean, std) over seeds at each of ``variants``."""
    _, _, read, read_vanilla = quantity
    out: dict[float | None, list[tuple[float, float]]] = {
        rate: [_stat(by_variant.get(v, {}).get(rate, []), read) for v in variants] for rate in rates
    }
    if read_vanilla is not None:
        # vanilla FL is one run per seed of a variant, paired with every rate: read it from one rate's cells
        out[VANILLA] = [_stat(next(iter(by_variant.get(v, {}).values()), []), read_vanilla) for v in variants]
    return out


def _series(
    ax: Axes,
    x: Sequence[float],
    variants: Sequence[str],
    by_variant: Mapping[str, Mapping[float, list[Summary]]],
    quantity: Quantity,
    rates: Sequence[float],
    line: str = "-",
    marker_fill: bool = True,
    legend: bool = True,
) -> None:
    """One line per pruning rate and, if the quantity has one, a vanilla line, over ``variants`` at ``x``.

    Lines of one rate carry the same legend label in every panel (the figure legend lists each once);
    ``legend=False`` keeps a second reading in the same panel (open markers) out of the legend.
    """
    colors = style.rate_colors(rates)
    for key, stats in sweep_values(by_variant, variants, quantity, rates).items():
        color = style.VANILLA_COLOR if key is VANILLA else colors[key]
        ax.errorbar(
            x,
            [m for m, _ in stats],
            yerr=[e for _, e in stats],
            color=color,
            ls=("--" if line == "-" else line) if key is VANILLA else line,
            marker="s" if key is VANILLA else "o",
            mfc=color if marker_fill else "white",
            ms=4.5 if key is VANILLA else 5,
            capsize=2,
            label=("vanilla FL" if key is VANILLA else f"Equitable-FL, {rate_label(key)}")
            if legend
            else "_nolegend_",
        )


def _threshold_axis(ax: Axes, points: Sequence[SweepPoint]) -> list[float]:
    x = [float(i) for i in range(len(points))]
    labels = [f"{p.thresholds_label()}\n({p.variant or 'base'})" for p in points]
    ax.set_xticks(x, labels)
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.set_xlabel(f"tier thresholds ({points[0].tier_method if points else 'quantile'}; variant)")
    return x


def _threshold_figure(
    summaries: Sequence[Summary],
    points: Sequence[SweepPoint],
    out_stem: str | Path,
    panels: Sequence[Callable[[Axes, list[float], Sequence[str], Mapping[str, Any], list[float]], str]],
    title: str,
) -> list[Path]:
    """A row of panels per dataset, every panel over the threshold axis."""
    cells = group_cells(summaries)
    ordered = by_thresholds(points)
    variants = [p.variant for p in ordered]
    rates = _rates(cells)

    def draw() -> Figure:
        fig, axes = style.new_figure(len(cells), len(panels), width=max(4.2, 1.1 * len(ordered) + 1.2))
        for i, (dataset, by_variant) in enumerate(sorted(cells.items())):
            for j, panel in enumerate(panels):
                ax = axes[i, j]
                x = _threshold_axis(ax, ordered)
                name = panel(ax, x, variants, by_variant, rates)
                ax.set_title(f"{dataset}: {name}")
        handles, labels = style.collect_legend(axes)
        style.figure_legend(fig, handles, labels, col_width=2.6)
        fig.suptitle(title)
        return fig

    return style.render(out_stem, draw)


def _quantity_panel(quantity: Quantity) -> Callable[..., str]:
    def panel(
        ax: Axes, x: list[float], variants: Sequence[str], by_variant: Mapping[str, Any], rates: list[float]
    ) -> str:
        _series(ax, x, variants, by_variant, quantity, rates)
        ax.set_ylabel(quantity[1])
        return quantity[0]

    return panel


def _simulated_panel(
    ax: Axes, x: list[float], variants: Sequence[str], by_variant: Mapping[str, Any], rates: list[float]
) -> str:
    """Simulated fleet time to the target accuracy (filled, solid) and of the whole run (open, dotted)."""
    seeds = [s for by_rate in by_variant.values() for cells in by_rate.values() for s in cells]
    totals = [_get(s, *SIM_TOTAL) for s in seeds] + [_get(s, *VANILLA_SIM_TOTAL) for s in seeds]
    unit, name = time_unit(float(np.nanmax([*totals, 1.0])))
    to_target: Quantity = ("", "", _scaled(unit, *SIM_TO_TARGET), _scaled(unit, *VANILLA_SIM_TO_TARGET))
    total: Quantity = ("", "", _scaled(unit, *SIM_TOTAL), _scaled(unit, *VANILLA_SIM_TOTAL))
    _series(ax, x, variants, by_variant, to_target, rates)
    _series(ax, x, variants, by_variant, total, rates, line=":", marker_fill=False, legend=False)
    ax.set_ylabel(f"simulated fleet time ({name})")
    return "simulated time: to target (●), whole run (○)"


def plot_accuracy_vs_thresholds(
    summaries: Sequence[Summary], points: Sequence[SweepPoint], out_stem: str | Path
) -> list[Path]:
    """Final test accuracy of every threshold setting, Equitable-FL per rate and vanilla FL."""
    return _threshold_figure(
        summaries, points, out_stem, [_quantity_panel(ACCURACY)], "Final accuracy against the tier thresholds"
    )


def plot_coverage_vs_thresholds(
    summaries: Sequence[Summary], points: Sequence[SweepPoint], out_stem: str | Path
) -> list[Path]:
    """Share of the clients, and of the training samples, that trained in at least one round."""
    return _threshold_figure(
        summaries,
        points,
        out_stem,
        [_quantity_panel(CLIENT_COVERAGE), _quantity_panel(DATA_COVERAGE)],
        "Who ever took part, against the tier thresholds",
    )


def plot_cost_vs_thresholds(
    summaries: Sequence[Summary], points: Sequence[SweepPoint], out_stem: str | Path
) -> list[Path]:
    """Bytes on the wire over the run, and the fleet's simulated time to the target and in total."""
    return _threshold_figure(
        summaries,
        points,
        out_stem,
        [_quantity_panel(BYTES), _simulated_panel],
        "Communication and simulated time against the tier thresholds",
    )


def plot_accuracy_gap_vs_alpha(
    summaries: Sequence[Summary], points: Sequence[SweepPoint], out_stem: str | Path
) -> list[Path]:
    """Equitable-FL − vanilla FL final accuracy (pp) per rate against Dirichlet α (log axis).

    Settings without an α (iid, shards) are drawn in a narrow panel on the right, same y axis; a dotted
    line marks no gap.
    """
    cells = group_cells(summaries)
    rates = _rates(cells)
    dirichlet = sorted((p for p in points if p.alpha is not None), key=lambda p: (p.alpha, p.variant))
    others = sorted(
        (p for p in points if p.alpha is None), key=lambda p: (p.partition != "iid", p.partition_key)
    )
    if not dirichlet:
        raise ValueError("no Dirichlet partition among the sweep points: nothing to draw against α")

    def draw() -> Figure:
        cols = 2 if others else 1
        fig = Figure(figsize=(6.4 if others else 5.2, 3.6 * len(cells) + 0.6), layout="constrained")
        axes = fig.subplots(
            len(cells),
            cols,
            squeeze=False,
            sharey="row",
            gridspec_kw={"width_ratios": [3, max(1, len(others))][:cols]},
        )
        for i, (dataset, by_variant) in enumerate(sorted(cells.items())):
            ax = axes[i, 0]
            _series(
                ax,
                [float(p.alpha or 0) for p in dirichlet],
                [p.variant for p in dirichlet],
                by_variant,
                GAP,
                rates,
            )
            ax.set_xscale("log")
            ax.set_xlabel("Dirichlet α (smaller = more label skew)")
            ax.set_ylabel(GAP[1])
            ax.set_title(f"{dataset}: {GAP[0]}")
            ax.axhline(0.0, color="0.4", lw=0.8, ls=":")
            if others:
                side = axes[i, 1]
                x = [float(k) for k in range(len(others))]
                # categories, not a scale: markers only, no line between iid and shards
                _series(side, x, [p.variant for p in others], by_variant, GAP, rates, line="none")
                side.set_xticks(x, [p.partition_label() for p in others])
                side.set_xlim(-0.6, len(others) - 0.4)
                side.axhline(0.0, color="0.4", lw=0.8, ls=":")
                side.set_title("other partitions")
        handles, labels = style.collect_legend(axes)
        style.figure_legend(fig, handles, labels, col_width=2.6)
        fig.suptitle("Accuracy gap against label skew")
        return fig

    return style.render(out_stem, draw)


SweepFn = Callable[[Sequence[Summary], Sequence[SweepPoint], str | Path], list[Path]]
SWEEP_PLOTS: dict[str, SweepFn] = {
    "sweep_accuracy_vs_thresholds": plot_accuracy_vs_thresholds,
    "sweep_coverage_vs_thresholds": plot_coverage_vs_thresholds,
    "sweep_cost_vs_thresholds": plot_cost_vs_thresholds,
    "sweep_accuracy_gap_vs_alpha": plot_accuracy_gap_vs_alpha,
}
