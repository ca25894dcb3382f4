"""Clients that come and go (``clients.availability``): who trained in each round, and what dropouts cost.

Two figures over a grid whose variants set the availability process:

- ``availability_participation``: per cell (dataset × variant × pruning rate, the first seed), the clients
  of each tier that trained in each global round, Equitable-FL solid and vanilla FL dashed, phase
  boundaries marked. A static fleet's cell shows the paper's staircase (tiers admitted phase by phase); a
  dynamic one shows how churn and dropouts thin it, and which tiers lose most.
- ``availability_vs_dropout_rate``: final accuracy and simulated time to a target against the measured
  dropout rate (``summary.json`` → ``availability.dropout_rate``; a static fleet's cell sits at 0), one
  point per variant, Equitable-FL by pruning rate and vanilla FL (at its own dropout rate).

The target is one accuracy per dataset, pruning rate and seed: the static cell's (its vanilla final
accuracy − ``summary.target_tolerance``) when the grid has one, else the lowest of the cells' own targets,
so the times of all variants are to the same accuracy. Time to it is read off each curve's
``elapsed_simulated_seconds``; a variant that never reaches it is a gap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from equitable_fl.layout import AVAILABILITY_FIGURES
from equitable_fl.report.figures import style
from equitable_fl.report.figures.simulated_time import time_unit
from equitable_fl.report.figures.summaries import Summary, as_float, nanmean, rate_label

PANEL_COLUMNS = 2
ALL_TIERS = "all tiers (static fleet)"


def dropout_rate(summary: Summary, vanilla: bool = False) -> float:
    """The cell's measured dropout rate (fraction); 0 for a static fleet (no ``availability`` section)."""
    section = summary.get("availability")
    if not section:
        return 0.0
    return as_float(section["vanilla_dropout_rate" if vanilla else "dropout_rate"])


def _variant(summary: Summary) -> str:
    return str(summary.get("variant") or "base")


def _per_round(summary: Summary, key: str, curve: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Clients that trained per round by tier: the ``availability`` section, else the static curve's count
    (a static cell has no per-tier record per round; all its clients are shown as one line)."""
    section = summary.get("availability")
    if section:
        return {str(t): list(v) for t, v in section[key].items()}
    return {ALL_TIERS: [int(p["num_clients"]) for p in curve]}


def _cells(summaries: Sequence[Summary]) -> list[Summary]:
    """The first seed of every (dataset, variant, rate), in a stable order."""
    first: dict[tuple[str, str, float], Summary] = {}
    for s in sorted(
        summaries, key=lambda s: (str(s["dataset"]), _variant(s), float(s["pruning_rate"]), s["seed"])
    ):
        first.setdefault((str(s["dataset"]), _variant(s), float(s["pruning_rate"])), s)
    return list(first.values())


def _participation_panel(ax: Axes, summary: Summary, colors: Mapping[str, Any]) -> None:
    curve = summary.get("curve") or []
    rounds = [int(p["global_round"]) for p in curve]
    van_curve = (summary.get("vanilla") or {}).get("curve") or []
    van_rounds = [int(p["global_round"]) for p in van_curve]
    for tier, counts in _per_round(summary, "participation_by_tier", curve).items():
        label = tier if tier == ALL_TIERS else f"tier {tier}"
        ax.plot(rounds, counts, color=colors.get(tier, "0.4"), lw=1.4, drawstyle="steps-mid", label=label)
    for tier, counts in _per_round(summary, "vanilla_participation_by_tier", van_curve).items():
        ax.plot(van_rounds, counts, color=colors.get(tier, "0.4"), lw=0.9, ls="--", drawstyle="steps-mid")
    ends = np.cumsum([int(p["rounds"]) for p in summary.get("phases") or []])[:-1]
    for end in ends:
        ax.axvline(end + 0.5, color="0.5", lw=0.7, ls=":")
    ax.set_title(
        f"{summary['dataset']} · {_variant(summary)} · {rate_label(float(summary['pruning_rate']))}\n"
        f"dropout rate {100 * dropout_rate(summary):.1f}% (vanilla {100 * dropout_rate(summary, True):.1f}%)"
    )
    ax.set_xlabel("global round")
    ax.set_ylabel("clients that trained")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_participation(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """``availability_participation``: clients that trained per round, by tier, one panel per cell."""
    cells = _cells(summaries)
    if not cells:
        raise ValueError("no summaries to plot")
    tiers = sorted(
        {t for s in cells for t in ((s.get("availability") or {}).get("participation_by_tier") or {})},
        key=lambda t: (len(t), t),
    )
    colors = style.tier_colors(tiers)

    def draw() -> Figure:
        cols = min(PANEL_COLUMNS, len(cells))
        rows = -(-len(cells) // cols)
        fig, axes = style.new_figure(rows, cols)
        for ax, summary in zip(axes.flat, cells, strict=False):
            _participation_panel(ax, summary, colors)
        for ax in list(axes.flat)[len(cells) :]:
            ax.set_visible(False)
        handles, labels = style.collect_legend(axes)
        labels = [*labels, "solid: Equitable-FL · dashed: vanilla FL · dotted: phase end"]
        handles = [*handles, axes.flat[0].plot([], [], color="none")[0]]
        style.figure_legend(fig, handles, labels)
        return fig

    return style.render(out_stem, draw)


def _seconds_to(curve: Sequence[Mapping[str, Any]], target: float) -> float:
    for p in curve:
        if as_float(p.get("accuracy")) >= target:
            return as_float(p.get("elapsed_simulated_seconds"))
    return float("nan")


def common_targets(summaries: Sequence[Summary]) -> dict[tuple[str, float, int], float]:
    """One target accuracy per (dataset, rate, seed): the static cell's, else the lowest own target."""
    out: dict[tuple[str, float, int], float] = {}
    groups: dict[tuple[str, float, int], list[Summary]] = defaultdict(list)
    for s in summaries:
        groups[(str(s["dataset"]), float(s["pruning_rate"]), int(s["seed"]))].append(s)
    for key, cells in groups.items():
        static = [s for s in cells if not s.get("availability")]
        pool = static or cells
        out[key] = min(as_float((s.get("rounds_to_target") or {}).get("target_accuracy")) for s in pool)
    return out


def dropout_points(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    """Per cell: dropout rates, final accuracies and simulated seconds to the common target, both methods."""
    targets = common_targets(summaries)
    points = []
    for s in summaries:
        target = targets[(str(s["dataset"]), float(s["pruning_rate"]), int(s["seed"]))]
        final = s.get("final") or {}
        points.append(
            {
                "dataset": str(s["dataset"]),
                "variant": _variant(s),
                "rate": float(s["pruning_rate"]),
                "seed": int(s["seed"]),
                "target": target,
                "dropout_rate": dropout_rate(s),
                "vanilla_dropout_rate": dropout_rate(s, vanilla=True),
                "accuracy": as_float(final.get("final_accuracy")),
                "vanilla_accuracy": as_float(final.get("vanilla_accuracy")),
                "seconds_to_target": _seconds_to(s.get("curve") or [], target),
                "vanilla_seconds_to_target": _seconds_to((s.get("vanilla") or {}).get("curve") or [], target),
            }
        )
    return points


def _mean_over_seeds(
    points: Sequence[Mapping[str, Any]], dataset: str, rate: float | None
) -> list[dict[str, float]]:
    by_variant: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for p in points:
        if p["dataset"] == dataset and (rate is None or p["rate"] == rate):
            by_variant[p["variant"]].append(p)
    keys = (
        "dropout_rate",
        "vanilla_dropout_rate",
        "accuracy",
        "vanilla_accuracy",
        "seconds_to_target",
        "vanilla_seconds_to_target",
    )
    return [{k: nanmean([p[k] for p in ps]) for k in keys} for ps in by_variant.values()]


def _xy(rows: Sequence[Mapping[str, float]], x: str, y: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted((100 * r[x], r[y] / scale) for r in rows)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def plot_vs_dropout_rate(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """``availability_vs_dropout_rate``: final accuracy and simulated time to target, per dataset (rows)."""
    points = dropout_points(summaries)
    if not points:
        raise ValueError("no summaries to plot")
    datasets = sorted({p["dataset"] for p in points})
    rates = sorted({p["rate"] for p in points})
    colors = style.rate_colors(rates)
    longest = np.nanmax(
        [p[k] for p in points for k in ("seconds_to_target", "vanilla_seconds_to_target")] + [0.0]
    )
    unit, unit_name = time_unit(float(longest))

    def draw() -> Figure:
        fig, axes = style.new_figure(len(datasets), 2)
        for row, dataset in enumerate(datasets):
            acc_ax, time_ax = axes[row]
            for rate in rates:
                rows = _mean_over_seeds(points, dataset, rate)
                for ax, y, scale in ((acc_ax, "accuracy", 0.01), (time_ax, "seconds_to_target", unit)):
                    xs, ys = _xy(rows, "dropout_rate", y, scale)
                    ax.plot(xs, ys, "o-", color=colors[rate], label=f"Equitable-FL, {rate_label(rate)}")
            van = _mean_over_seeds(points, dataset, rates[0])  # vanilla does not depend on the rate
            for ax, y, scale in (
                (acc_ax, "vanilla_accuracy", 0.01),
                (time_ax, "vanilla_seconds_to_target", unit),
            ):
                xs, ys = _xy(van, "vanilla_dropout_rate", y, scale)
                ax.plot(xs, ys, "s--", color=style.VANILLA_COLOR, label="vanilla FL")
            acc_ax.set_title(f"{dataset}: final accuracy")
            acc_ax.set_ylabel("test accuracy (%)")
            target = min(p["target"] for p in points if p["dataset"] == dataset)
            time_ax.set_title(f"{dataset}: simulated time to {100 * target:.1f}% accuracy")
            time_ax.set_ylabel(f"simulated time to target ({unit_name})")
            for ax in (acc_ax, time_ax):
                ax.set_xlabel("dropout rate (% of scheduled cohort members)")
        style.figure_legend(fig, *style.collect_legend(axes))
        return fig

    return style.render(out_stem, draw)


PLOTS = dict(zip(AVAILABILITY_FIGURES, (plot_participation, plot_vs_dropout_rate), strict=True))


def write_availability(summaries: Sequence[Summary], figures_dir: str | Path) -> list[Path]:
    """Both figures as PNG and PDF under ``figures_dir``."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [path for stem, plot in PLOTS.items() for path in plot(summaries, out / stem)]
