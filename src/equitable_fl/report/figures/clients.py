"""Clients per phase: who trained in each phase, by tier, next to vanilla FL.

Equitable-FL's claim is about *inclusion*: sparser models let lower tiers join. So this figure separates
clients that took part from those that were eligible but not sampled and from those kept out because the
phase's model exceeded their resource budget, instead of showing a single participation count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from equitable_fl.report.figures import style
from equitable_fl.report.figures.summaries import Summary, as_float, by_dataset_and_rate, rate_label

MAX_CLIENT_PANELS = 3


def _client_panels(by_rate: Mapping[float, list[Summary]]) -> list[tuple[float, Summary]]:
    """(rate, first-seed summary) per panel: every rate if few, else only the most aggressive one."""
    rates = list(by_rate)
    if len(rates) > MAX_CLIENT_PANELS:
        rates = [max(rates)]
    return [(r, by_rate[r][0]) for r in rates]


def _tiers(summaries: Sequence[Summary]) -> list[str]:
    tiers: set[str] = set()
    for s in summaries:
        for p in s.get("phases") or []:
            tiers.update(str(t) for t in (p.get("took_part_by_tier") or {}))
            tiers.update(str(t) for t in (p.get("eligible_by_tier") or {}))
    return sorted(tiers, key=lambda t: (len(t), t))


def _draw_clients_panel(
    ax: Axes, summary: Summary, tiers: Sequence[str], tier_colors: Mapping[str, Any]
) -> None:
    phases = summary.get("phases") or []
    labels = [f"phase {p.get('phase', i + 1)}" for i, p in enumerate(phases)] + ["vanilla"]
    x = np.arange(len(labels))
    bottoms = np.zeros(len(labels))
    for tier in tiers:
        took = np.array([as_float((p.get("took_part_by_tier") or {}).get(tier)) for p in phases] + [0.0])
        took = np.nan_to_num(took)
        ax.bar(
            x,
            took,
            0.6,
            bottom=bottoms,
            color=tier_colors[tier],
            edgecolor="white",
            lw=0.5,
            label=f"tier {tier}: took part",
        )
        bottoms += took
    for tier in tiers:  # eligible but not sampled this phase (or sampled out by the participation rule)
        idle = []
        for p in phases:
            elig = as_float((p.get("eligible_by_tier") or {}).get(tier))
            took = as_float((p.get("took_part_by_tier") or {}).get(tier))
            idle.append(max(0.0, elig - took) if not (np.isnan(elig) or np.isnan(took)) else 0.0)
        idle_arr = np.array([*idle, 0.0])
        if idle_arr.any():
            ax.bar(
                x,
                idle_arr,
                0.6,
                bottom=bottoms,
                color="white",
                edgecolor=tier_colors[tier],
                hatch="///",
                lw=0.8,
                label=f"tier {tier}: eligible, not sampled",
            )
            bottoms += idle_arr
    excluded = np.nan_to_num(np.array([as_float(p.get("excluded_by_budget")) for p in phases] + [0.0]))
    if excluded.any():
        ax.bar(
            x,
            excluded,
            0.6,
            bottom=bottoms,
            color="0.92",
            edgecolor="0.45",
            hatch="xx",
            lw=0.6,
            label="not eligible: over resource budget",
        )
        bottoms += excluded
    vanilla = summary.get("vanilla") or {}
    v = as_float(vanilla.get("clients_took_part"))
    if not np.isnan(v):
        ax.bar(
            x[-1:],
            [v],
            0.6,
            color=style.VANILLA_COLOR,
            alpha=0.8,
            label=f"vanilla FL: took part ({vanilla.get('participation', 'n/a')})",
        )
        bottoms[-1] += v
    totals = [as_float(p.get("clients_took_part")) for p in phases] + [v]
    for xi, (b, t) in enumerate(zip(bottoms, totals, strict=True)):
        text = "n/a" if np.isnan(t) else f"{t:.0f}"
        ax.annotate(
            text,
            (xi, b),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
            fontweight="bold",
        )
    ax.set_xticks(x, labels)
    ax.set_ylim(0, max(bottoms.max(), 1) * 1.15)
    ax.set_ylabel("clients")
    ax.grid(axis="x", visible=False)


def plot_clients_per_phase(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Who trained in each phase, by tier, for the first seed; vanilla FL as the last bar.

    Solid segments are clients that took part; hatched ones were eligible but not sampled, and the
    cross-hatched grey segment counts clients kept out because the phase's model exceeded their
    resource budget. Bold numbers are the clients that took part.
    """
    grid = by_dataset_and_rate(summaries)
    tiers = _tiers(summaries)
    tier_colors = style.tier_colors(tiers)
    panels = {d: _client_panels(by_rate) for d, by_rate in grid.items()}
    cols = max(len(p) for p in panels.values())

    def draw() -> Figure:
        fig, axes = style.new_figure(len(panels), cols, width=4.4, height=3.4)
        for i, (dataset, cells) in enumerate(panels.items()):
            for j in range(cols):
                ax = axes[i, j]
                if j >= len(cells):
                    ax.set_axis_off()
                    continue
                rate, summary = cells[j]
                _draw_clients_panel(ax, summary, tiers, tier_colors)
                n_rates = len(grid[dataset])
                only = f"highest of {n_rates} rates, " if n_rates > len(cells) else ""
                ax.set_title(f"{dataset}, {rate_label(rate)} ({only}seed {summary.get('seed', 'n/a')})")
        handles, labels = style.collect_legend(axes)
        style.figure_legend(fig, handles, labels, col_width=2.6)
        fig.suptitle("Clients per phase by tier")
        return fig

    return style.render(out_stem, draw)
