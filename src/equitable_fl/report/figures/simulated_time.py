"""Accuracy against the fleet's simulated time: what a federated speed-up means to whoever waits for it.

The x axis is the simulated clock of :mod:`equitable_fl.fleet_time` (each round lasts as long as its
slowest participant's download, training and upload), summed from the first round: a run whose weak
clients straggle through every round moves right, however few rounds it needs. Equitable-FL keeps its
per-phase colours and vanilla FL is grey, as in the accuracy-per-round figure; a dotted line marks the
target accuracy and a marker on each curve the simulated time at which it is first reached. With
several seeds each global round is drawn at the mean elapsed time and mean accuracy over seeds (the
seeds' clocks differ, so a min–max band over rounds would mix different times). The time unit (s, min,
h) is chosen per panel from its longest run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from equitable_fl.report.figures import style
from equitable_fl.report.figures.summaries import (
    Summary,
    as_float,
    by_dataset_and_rate,
    rate_label,
    seeds_label,
)

ELAPSED = "elapsed_simulated_seconds"
UNITS = ((3600.0, "h"), (60.0, "min"), (1.0, "s"))


def time_unit(longest_seconds: float) -> tuple[float, str]:
    """Seconds per unit and its name: hours from 2 h, minutes from 2 min, else seconds."""
    for seconds, name in UNITS:
        if longest_seconds >= 2 * seconds:
            return seconds, name
    return 1.0, "s"


def mean_clock(curves: Sequence[Sequence[Mapping[str, Any]]]) -> list[tuple[int, Any, float, float]]:
    """Per global round: (round, phase, mean elapsed seconds, mean accuracy in %) over the seeds' curves.

    Points without a simulated clock are left out, so a summary from before the clock gives nothing.
    """
    by_round: dict[int, list[tuple[Any, float, float]]] = defaultdict(list)
    for curve in curves:
        for p in curve:
            t, acc = as_float(p.get(ELAPSED)), as_float(p.get("accuracy"))
            if np.isfinite(t) and np.isfinite(acc):
                by_round[int(p["global_round"])].append((p.get("phase"), t, 100.0 * acc))
    return [
        (r, pts[0][0], float(np.mean([t for _, t, _ in pts])), float(np.mean([a for _, _, a in pts])))
        for r, pts in sorted(by_round.items())
    ]


def _target(cells: Sequence[Summary]) -> float:
    """Mean target accuracy (%) of the cells' simulated sections; NaN when none has one."""
    values = [as_float((s.get("simulated") or {}).get("target_accuracy")) for s in cells]
    finite = [v for v in values if np.isfinite(v)]
    return 100.0 * float(np.mean(finite)) if finite else float("nan")


def _reached(
    points: Sequence[tuple[int, Any, float, float]], target: float
) -> tuple[Any, float, float] | None:
    """(phase, elapsed seconds, accuracy) of the first point at or above ``target``."""
    return next(((ph, t, a) for _, ph, t, a in points if a >= target), None)


def _draw_panel(ax: Axes, cells: Sequence[Summary], colors: Sequence[Any]) -> bool:
    """Draw one cell's (or one cell's seeds') curves; False when there is no simulated clock to draw."""
    eq = mean_clock([s.get("curve") or [] for s in cells])
    van = mean_clock([(s.get("vanilla") or {}).get("curve") or [] for s in cells])
    if not eq or not van:
        return False
    scale, unit = time_unit(max(eq[-1][2], van[-1][2]))
    phases = sorted({ph for _, ph, _, _ in eq if ph is not None})
    prev: tuple[float, float] | None = None
    for i, ph in enumerate(phases):
        pts = [(t / scale, a) for _, p, t, a in eq if p == ph]
        xs, ys = zip(*pts, strict=True)
        color = colors[i % len(colors)]
        if prev is not None:  # the phase change reads as one run, not a gap
            ax.plot([prev[0], xs[0]], [prev[1], ys[0]], color=color, lw=0.8, ls=":", zorder=2)
            ax.axvline(prev[0], color="0.4", ls="--", lw=0.9, zorder=1)
        ax.plot(xs, ys, color=color, lw=1.6, marker="o", ms=2.5, label=f"Equitable-FL phase {ph}", zorder=4)
        prev = (xs[-1], ys[-1])
    ax.plot(
        [t / scale for _, _, t, _ in van],
        [a for _, _, _, a in van],
        color=style.VANILLA_COLOR,
        lw=1.3,
        marker="o",
        ms=2.0,
        label="vanilla FL (dense)",
        zorder=3,
    )
    target = _target(cells)
    if np.isfinite(target):
        ax.axhline(target, color="0.5", ls=":", lw=0.9, label="target accuracy", zorder=1)
        for points in (eq, van):
            hit = _reached(points, target)
            if hit is not None:
                ph, t, a = hit
                color = colors[phases.index(ph) % len(colors)] if ph in phases else style.VANILLA_COLOR
                ax.plot(t / scale, a, marker="*", ms=9, color=color, mec="black", mew=0.5, zorder=5)
    ax.set_xlabel(f"simulated fleet time ({unit})")
    ax.set_ylabel("test accuracy (%)")
    return True


def plot_accuracy_vs_simulated_time(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Test accuracy against cumulative simulated time: Equitable-FL by phase against vanilla FL, per cell.

    Rows are datasets and columns pruning rates; stars mark when each run first reaches the target.
    """
    grid = by_dataset_and_rate(summaries)
    rates = sorted({r for by_rate in grid.values() for r in by_rate})
    panels = [(dataset, rate, by_rate.get(rate) or []) for dataset, by_rate in grid.items() for rate in rates]
    colors = style.phase_colors(max(len(s.get("phases") or []) for s in summaries))

    def draw() -> Figure:
        fig, axes = style.new_figure(len(grid), len(rates), width=5.0, height=3.4)
        for ax, (dataset, rate, cells) in zip(axes.flat, panels, strict=True):
            if cells and _draw_panel(ax, cells, colors):
                ax.set_title(f"{dataset}, {rate_label(rate)} ({seeds_label(cells)})")
            else:
                ax.set_axis_off()
                text = "no simulated time in this summary" if cells else "no data"
                ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
        handles, labels = style.collect_legend(axes)
        style.figure_legend(fig, handles, labels)
        fig.suptitle("Accuracy against simulated fleet time: Equitable-FL (phases) vs vanilla FL")
        return fig

    return style.render(out_stem, draw)
