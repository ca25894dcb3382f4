"""Accuracy over rounds: the training curves of Equitable-FL, phase by phase, against vanilla FL.

This is the figure that shows *how* accuracy evolves when the server prunes and admits new tiers, so
each phase keeps its own colour, phase changes are marked where they happened, and the dense baseline is
drawn on the same global-round axis. With several seeds the line is the mean and a band spans min to
max, so seed noise is visible rather than averaged away.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from equitable_fl.report.figures import style
from equitable_fl.report.figures.summaries import (
    Summary,
    as_float,
    by_dataset_and_rate,
    rate_label,
    seeds_label,
)


def _curve_band(curves: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[np.ndarray, ...]:
    """Rounds and mean / min / max accuracy (%) over seeds, aligned on global round."""
    by_round: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            acc = as_float(point.get("accuracy"))
            if not np.isnan(acc):
                by_round[int(point["global_round"])].append(100.0 * acc)
    rounds = np.array(sorted(by_round), dtype=float)
    mean = np.array([np.mean(by_round[int(r)]) for r in rounds])
    lo = np.array([np.min(by_round[int(r)]) for r in rounds])
    hi = np.array([np.max(by_round[int(r)]) for r in rounds])
    return rounds, mean, lo, hi


def _phase_info(cells: Sequence[Summary]) -> list[tuple[int, str, int, int]]:
    """Per phase of the first seed: (phase, tiers text, first global round, last global round)."""
    first = cells[0]
    tiers = {
        int(p.get("phase", i + 1)): p.get("admitted_tiers") or []
        for i, p in enumerate(first.get("phases") or [])
    }
    spans: dict[int, list[int]] = defaultdict(list)
    for point in first.get("curve") or []:
        if point.get("phase") is not None:
            spans[int(point["phase"])].append(int(point["global_round"]))
    return [
        (ph, ",".join(str(t) for t in tiers.get(ph, [])) or "?", min(rs), max(rs))
        for ph, rs in sorted(spans.items())
    ]


def _curve(obj: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The ``curve`` list of a summary or of its ``vanilla`` part; empty when absent."""
    return list((obj or {}).get("curve") or [])


def _data_ylim(ax: Axes) -> tuple[float, float]:
    """Min and max y over the plotted lines (the band patches are within them by construction)."""
    ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.array([])
    if finite.size == 0:
        return 0.0, 100.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def _draw_accuracy_panel(ax: Axes, cells: Sequence[Summary], colors: Sequence[Any], multi: bool) -> None:
    phases = _phase_info(cells)
    prev_end: tuple[float, float] | None = None
    for i, (ph, _tiers, _start, _end) in enumerate(phases):
        curves = [[p for p in (s.get("curve") or []) if p.get("phase") == ph] for s in cells]
        r, m, lo, hi = _curve_band(curves)
        if r.size == 0:
            continue
        color = colors[i]
        if prev_end is not None:  # thin connector so the phase change reads as one run, not a gap
            ax.plot([prev_end[0], r[0]], [prev_end[1], m[0]], color=color, lw=0.8, ls=":", zorder=2)
        ax.plot(r, m, color=color, lw=1.6, marker="o", ms=2.5, label=f"Equitable-FL phase {ph}", zorder=4)
        if multi:
            ax.fill_between(r, lo, hi, color=color, alpha=0.2, lw=0, zorder=1)
        prev_end = (float(r[-1]), float(m[-1]))
    van_curves = [_curve(s.get("vanilla")) for s in cells]
    if any(van_curves):
        r, m, lo, hi = _curve_band(van_curves)
        ax.plot(r, m, color=style.VANILLA_COLOR, lw=1.3, ls="-", label="vanilla FL (dense)", zorder=3)
        if multi:
            ax.fill_between(r, lo, hi, color=style.VANILLA_FILL, alpha=0.25, lw=0, zorder=1)
    # Fit y to the curves before adding the full-height phase markers, with room below for the labels.
    lo, hi = _data_ylim(ax)
    ax.set_ylim(max(0.0, lo - 0.14 * (hi - lo)), hi + 0.04 * (hi - lo))
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for i, (ph, tiers, start, end) in enumerate(phases):
        if i > 0:
            ax.axvline(start - 0.5, color="0.4", ls="--", lw=0.9, zorder=2)
        ax.text(
            (start + end) / 2,
            0.03,
            f"phase {ph}: tiers {tiers}",
            transform=trans,
            ha="center",
            va="bottom",
            fontsize=7,
            color=colors[i],
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
            zorder=5,
        )
    ax.set_xlabel("global communication round")
    ax.set_ylabel("test accuracy (%)")


def plot_accuracy_vs_round(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Test accuracy per global round: Equitable-FL coloured by phase against vanilla FL, per cell.

    Rows are datasets and columns pruning rates; with several seeds the line is the mean and the shaded
    band spans min to max over seeds. Dashed lines mark where the server pruned and new tiers joined.
    """
    grid = by_dataset_and_rate(summaries)
    rates = sorted({r for by_rate in grid.values() for r in by_rate})
    max_phases = max(len(s.get("phases") or []) for s in summaries)
    colors = style.phase_colors(max_phases)

    def draw() -> Figure:
        fig, axes = style.new_figure(len(grid), len(rates), width=5.0, height=3.4)
        for i, (dataset, by_rate) in enumerate(grid.items()):
            for j, rate in enumerate(rates):
                ax = axes[i, j]
                cells = by_rate.get(rate)
                if not cells:
                    ax.set_axis_off()
                    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
                    continue
                multi = len(cells) > 1
                _draw_accuracy_panel(ax, cells, colors, multi)
                ax.set_title(f"{dataset}, {rate_label(rate)} ({seeds_label(cells)})")
        handles, labels = style.collect_legend(axes)
        if any(len(c) > 1 for by_rate in grid.values() for c in by_rate.values()):
            handles.append(Patch(color=style.VANILLA_FILL, alpha=0.35))
            labels.append("min–max over seeds")
        style.figure_legend(fig, handles, labels)
        fig.suptitle("Accuracy per round: Equitable-FL (phases) vs vanilla FL")
        return fig

    return style.render(out_stem, draw)
