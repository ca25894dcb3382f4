"""Paper-style figures of the grid: accuracy over rounds, accuracy vs sparsity, model size, participation.

Figures are built on ``matplotlib.figure.Figure`` objects directly (no ``pyplot``), under a local
``rc_context``, so plotting never changes global matplotlib state for the caller and holds no figure
registry that could leak memory in a long Snakemake run. Every figure is saved as PNG (150 dpi) and PDF,
each written to a temporary file beside its destination and renamed into place, with timestamp and
software metadata removed so that re-running on the same summaries gives (nearly) the same bytes.

Accuracies are plotted in %, sizes in MB (10^6 bytes), rounds as global communication rounds counted
across all phases (so the x axis is comparable with vanilla FL's rounds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless and deterministic; the report never needs an interactive backend

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from equitable_fl import io
from equitable_fl.report import tables

Summary = Mapping[str, Any]
PlotFn = Callable[[Sequence[Summary], str | Path], list[Path]]

DPI = 150
PANEL_W, PANEL_H = 4.6, 3.3
VANILLA_COLOR = "0.15"
VANILLA_FILL = "0.6"
MAX_CLIENT_PANELS = 3
MIN_FIG_W = 6.4

RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,  # embed TrueType so text stays selectable and editable
}

_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


# ----------------------------------------------------------------------------------------------------
# Helpers


def _phase_colors(n: int) -> list[Any]:
    """Distinct colours per phase from a qualitative map (tab10 skipping grey, kept for vanilla)."""
    cmap = matplotlib.colormaps["tab10"]
    picks = [0, 1, 2, 3, 4, 5, 6, 8, 9]
    return [cmap(picks[i % len(picks)]) for i in range(max(n, 1))]


def _rate_colors(rates: Sequence[float]) -> dict[float, Any]:
    """Sequential colours by pruning rate: lighter (yellower) means more aggressive pruning."""
    cmap = matplotlib.colormaps["viridis"]
    n = len(rates)
    return {r: cmap(0.15 + 0.7 * (i / max(n - 1, 1))) for i, r in enumerate(sorted(rates))}


def _tier_colors(tiers: Sequence[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["Set2"]
    return {t: cmap(i % cmap.N) for i, t in enumerate(tiers)}


def _grid(summaries: Sequence[Summary]) -> dict[str, dict[float, list[Summary]]]:
    """dataset → pruning rate → summaries sorted by seed."""
    if not summaries:
        raise ValueError("no summaries to plot")
    grid: dict[str, dict[float, list[Summary]]] = defaultdict(lambda: defaultdict(list))
    for s in summaries:
        grid[str(s["dataset"])][float(s["pruning_rate"])].append(s)
    return {
        d: {r: sorted(cells, key=lambda s: s.get("seed", 0)) for r, cells in sorted(by_rate.items())}
        for d, by_rate in sorted(grid.items())
    }


def _num(value: Any) -> float:
    """Float or NaN, so plotting code can aggregate with nan-aware numpy functions."""
    if value is None or isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _nanstat(values: Sequence[float], fn: Callable[[np.ndarray], Any]) -> float:
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(fn(arr)) if arr.size else float("nan")


def _mean(values: Sequence[float]) -> float:
    return _nanstat(values, np.mean)


def _rate_label(rate: float) -> str:
    return f"pruning rate {rate:g}"


def _seeds_label(cells: Sequence[Summary]) -> str:
    n = len(cells)
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _new_figure(
    rows: int, cols: int, *, width: float = PANEL_W, height: float = PANEL_H
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout grid; at least ``MIN_FIG_W`` wide so a shared legend fits under one panel."""
    fig = Figure(figsize=(max(width * cols, MIN_FIG_W), height * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _figure_legend(fig: Figure, handles: list[Any], labels: list[str], col_width: float = 2.3) -> None:
    """One legend below all panels, wrapped into as many columns as the figure width allows."""
    if not labels:
        return
    ncols = max(1, min(len(labels), int(fig.get_figwidth() // col_width)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)


def save_figure(fig: Figure, out_stem: str | Path) -> list[Path]:
    """Write ``<out_stem>.png`` (150 dpi) and ``<out_stem>.pdf`` atomically; return both paths."""
    stem = Path(out_stem)
    written = []
    for ext in ("png", "pdf"):
        dest = stem.parent / f"{stem.name}.{ext}"
        with io.atomic_path(dest) as tmp:
            fig.savefig(tmp, format=ext, dpi=DPI, metadata=_METADATA[ext])
        written.append(dest)
    return written


def _render(out_stem: str | Path, draw: Callable[[], Figure]) -> list[Path]:
    """Build and save a figure inside a local rc context, so style never leaks to the caller."""
    with matplotlib.rc_context(RC):
        fig = draw()
        return save_figure(fig, out_stem)


# ----------------------------------------------------------------------------------------------------
# Accuracy vs round


def _curve_band(curves: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[np.ndarray, ...]:
    """Rounds and mean / min / max accuracy (%) over seeds, aligned on global round."""
    by_round: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            acc = _num(point.get("accuracy"))
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
        ax.plot(r, m, color=VANILLA_COLOR, lw=1.3, ls="-", label="vanilla FL (dense)", zorder=3)
        if multi:
            ax.fill_between(r, lo, hi, color=VANILLA_FILL, alpha=0.25, lw=0, zorder=1)
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


def _data_ylim(ax: Axes) -> tuple[float, float]:
    """Min and max y over the plotted lines (the band patches are within them by construction)."""
    ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.array([])
    if finite.size == 0:
        return 0.0, 100.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def _curve(obj: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The ``curve`` list of a summary or of its ``vanilla`` part; empty when absent."""
    return list((obj or {}).get("curve") or [])


def plot_accuracy_vs_round(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Test accuracy per global round: Equitable-FL coloured by phase against vanilla FL, per cell.

    Rows are datasets and columns pruning rates; with several seeds the line is the mean and the shaded
    band spans min to max over seeds. Dashed lines mark where the server pruned and new tiers joined.
    """
    grid = _grid(summaries)
    rates = sorted({r for by_rate in grid.values() for r in by_rate})
    max_phases = max(len(s.get("phases") or []) for s in summaries)
    colors = _phase_colors(max_phases)

    def draw() -> Figure:
        fig, axes = _new_figure(len(grid), len(rates), width=5.0, height=3.4)
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
                ax.set_title(f"{dataset}, {_rate_label(rate)} ({_seeds_label(cells)})")
        handles, labels = _collect_legend(axes)
        if any(len(c) > 1 for by_rate in grid.values() for c in by_rate.values()):
            handles.append(Patch(color=VANILLA_FILL, alpha=0.35))
            labels.append("min–max over seeds")
        _figure_legend(fig, handles, labels)
        fig.suptitle("Accuracy per round: Equitable-FL (phases) vs vanilla FL")
        return fig

    return _render(out_stem, draw)


def _collect_legend(axes: np.ndarray) -> tuple[list[Any], list[str]]:
    """Unique legend entries over all panels (phases may differ by panel), in first-seen order."""
    seen: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen)


# ----------------------------------------------------------------------------------------------------
# Accuracy vs sparsity


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
    return _num(record.get(column))


def _std0(value: float) -> float:
    return 0.0 if np.isnan(value) else value


def sparsity_points(table: pd.DataFrame) -> dict[str, list[SparsityPoint]]:
    """dataset → points sorted by pruning rate, from a per-rate table.

    The table is ``comparison.csv`` (read from MLflow) in the workflow, or ``by_rate.csv`` built from
    summaries: both have ``dataset``, ``pruning_rate``, ``n_seeds`` and ``<metric>_mean`` / ``_std`` for
    ``sparsity_pct``, ``accuracy_eqfl`` and ``accuracy_vanilla``. These are exactly the plotted numbers.
    """
    if table.empty:
        raise ValueError("no rows to plot")
    points: dict[str, list[SparsityPoint]] = defaultdict(list)
    for rec in table.sort_values(["dataset", "pruning_rate"], kind="stable").to_dict(orient="records"):
        points[str(rec["dataset"])].append(
            SparsityPoint(
                rate=float(rec["pruning_rate"]),
                n_seeds=int(rec["n_seeds"]),
                sparsity=_cell(rec, "sparsity_pct_mean"),
                sparsity_std=_std0(_cell(rec, "sparsity_pct_std")),
                accuracy=_cell(rec, "accuracy_eqfl_mean"),
                accuracy_std=_std0(_cell(rec, "accuracy_eqfl_std")),
                vanilla=_cell(rec, "accuracy_vanilla_mean"),
                vanilla_std=_std0(_cell(rec, "accuracy_vanilla_std")),
            )
        )
    return dict(points)


def plot_accuracy_vs_sparsity(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Accuracy vs sparsity from cell summaries, through the same per-rate table as ``by_rate.csv``."""
    if not summaries:
        raise ValueError("no summaries to plot")
    return plot_accuracy_vs_sparsity_table(tables.grouped_table(summaries), out_stem)


def plot_accuracy_vs_sparsity_table(table: pd.DataFrame, out_stem: str | Path) -> list[Path]:
    """Final accuracy against final sparsity, one point per pruning rate (mean ± std over seeds).

    Vanilla FL is dense, so it is a horizontal line (the mean over rates of its per-rate mean, which are
    the same seeds' runs) with a ± std band, and the distance of each point below it is the accuracy cost
    of that sparsity. The workflow passes ``comparison.csv`` so that the figure shows the tabled numbers.
    """
    by_dataset = sparsity_points(table)

    def draw() -> Figure:
        fig, axes = _new_figure(1, len(by_dataset), width=4.6, height=3.6)
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
            vm = _mean([p.vanilla for p in points])
            vs = _mean([p.vanilla_std for p in points])
            vs = 0.0 if np.isnan(vs) else vs
            if not np.isnan(vm):
                ax.axhline(vm, color=VANILLA_COLOR, lw=1.2, ls="--", label="vanilla FL, dense (mean ± std)")
                if vs > 0:
                    ax.axhspan(vm - vs, vm + vs, color=VANILLA_FILL, alpha=0.25, lw=0)
            n_seeds = max(p.n_seeds for p in points)
            ax.set_title(f"{dataset} ({n_seeds} seed{'s' if n_seeds > 1 else ''} per rate)")
            ax.set_xlabel("final sparsity (% of weights pruned)")
            ax.set_ylabel("final test accuracy (%)")
            ax.set_xlim(-2.0, 102.0)  # sparsity is a share of weights: always show the whole 0–100 % range
            _pad_ylim(ax, [*ys, vm], [*yerr, vs])
            ax.legend(loc="lower left")
        fig.suptitle("Accuracy vs sparsity of the final Equitable-FL model")
        return fig

    return _render(out_stem, draw)


def _pad_ylim(ax: Axes, values: Sequence[float], errs: Sequence[float]) -> None:
    """Fit the y axis to the data with margin, so small accuracy gaps stay visible."""
    lows = [v - e for v, e in zip(values, errs, strict=True) if not np.isnan(v)]
    highs = [v + e for v, e in zip(values, errs, strict=True) if not np.isnan(v)]
    if not lows:
        return
    lo, hi = min(lows), max(highs)
    pad = max(0.5, 0.25 * (hi - lo))
    ax.set_ylim(max(0.0, lo - 2 * pad), min(101.0, hi + pad))  # extra room below for the legend


# ----------------------------------------------------------------------------------------------------
# Model size per phase


def plot_model_size(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Encoded (sparse) size of the global model per phase, one bar per pruning rate.

    The dashed line is the dense float32 size; the percentage over each bar is the size reduction
    against it (negative in phase 1, where the sparse encoding's index overhead slightly exceeds dense).
    """
    grid = _grid(summaries)
    all_rates = sorted({r for by_rate in grid.values() for r in by_rate})
    rate_colors = _rate_colors(all_rates)

    def draw() -> Figure:
        fig, axes = _new_figure(1, len(grid), width=5.2, height=3.8)
        for ax, (dataset, by_rate) in zip(axes[0], grid.items(), strict=True):
            n_phases = max(len(s.get("phases") or []) for cells in by_rate.values() for s in cells)
            rates = list(by_rate)
            width = 0.8 / max(len(rates), 1)
            dense_mb: list[float] = []
            top = 0.0
            for k, rate in enumerate(rates):
                cells = by_rate[rate]
                heights, reductions = [], []
                for ph in range(n_phases):
                    rows = [(s.get("phases") or [])[ph] for s in cells if len(s.get("phases") or []) > ph]
                    heights.append(_mean([_num(p.get("encoded_bytes")) / 1e6 for p in rows]))
                    reductions.append(_mean([_num(p.get("size_reduction_pct")) for p in rows]))
                    dense_mb += [_num(p.get("dense_bytes")) / 1e6 for p in rows]
                x = np.arange(n_phases) + (k - (len(rates) - 1) / 2) * width
                bars = ax.bar(x, heights, width * 0.95, color=rate_colors[rate], label=_rate_label(rate))
                labels = ["n/a" if np.isnan(v) else f"{v:.1f}%" for v in reductions]
                ax.bar_label(
                    bars,
                    labels=labels,
                    padding=2,
                    fontsize=6.5,
                    rotation=90 if len(rates) > 3 else 0,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
                    zorder=4,
                )
                top = max(top, *(h for h in heights if not np.isnan(h)), 0.0)
            dense = _mean(dense_mb)
            if not np.isnan(dense):
                ax.axhline(dense, color=VANILLA_COLOR, ls="--", lw=1.1, label="dense fp32 model")
                ax.annotate(
                    f"dense fp32: {dense:.2f} MB",
                    (1.0, dense),
                    xycoords=("axes fraction", "data"),
                    xytext=(-2, 3),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color=VANILLA_COLOR,
                )
                top = max(top, dense)
            ax.set_ylim(0, top * (1.25 if len(rates) > 3 else 1.12) if top > 0 else 1)
            ax.set_xticks(np.arange(n_phases), [f"phase {ph + 1}" for ph in range(n_phases)])
            ax.set_ylabel("encoded model size (MB, 10$^6$ bytes)")
            ax.set_xlabel("training phase (server prunes between phases)")
            ax.set_title(dataset)
            ax.grid(axis="x", visible=False)
        _figure_legend(fig, *_collect_legend(axes))
        fig.suptitle("Encoded size of the global model per phase\n(bar labels: size reduction vs dense fp32)")
        return fig

    return _render(out_stem, draw)


# ----------------------------------------------------------------------------------------------------
# Clients per phase


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
        took = np.array([_num((p.get("took_part_by_tier") or {}).get(tier)) for p in phases] + [0.0])
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
            elig = _num((p.get("eligible_by_tier") or {}).get(tier))
            took = _num((p.get("took_part_by_tier") or {}).get(tier))
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
    excluded = np.nan_to_num(np.array([_num(p.get("excluded_by_budget")) for p in phases] + [0.0]))
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
    v = _num(vanilla.get("clients_took_part"))
    if not np.isnan(v):
        ax.bar(
            x[-1:],
            [v],
            0.6,
            color=VANILLA_COLOR,
            alpha=0.8,
            label=f"vanilla FL: took part ({vanilla.get('participation', 'n/a')})",
        )
        bottoms[-1] += v
    totals = [_num(p.get("clients_took_part")) for p in phases] + [v]
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
    grid = _grid(summaries)
    tiers = _tiers(summaries)
    tier_colors = _tier_colors(tiers)
    panels = {d: _client_panels(by_rate) for d, by_rate in grid.items()}
    cols = max(len(p) for p in panels.values())

    def draw() -> Figure:
        fig, axes = _new_figure(len(panels), cols, width=4.4, height=3.4)
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
                ax.set_title(f"{dataset}, {_rate_label(rate)} ({only}seed {summary.get('seed', 'n/a')})")
        handles, labels = _collect_legend(axes)
        _figure_legend(fig, handles, labels, col_width=2.6)
        fig.suptitle("Clients per phase by tier")
        return fig

    return _render(out_stem, draw)


# ----------------------------------------------------------------------------------------------------
# Registry

FIGURES: dict[str, PlotFn] = {
    "accuracy_vs_round": plot_accuracy_vs_round,
    "accuracy_vs_sparsity": plot_accuracy_vs_sparsity,
    "model_size": plot_model_size,
    "clients_per_phase": plot_clients_per_phase,
}


# Figures that describe a single cell (one dataset, rate and seed): logged to MLflow with that cell.
CELL_FIGURES = ("accuracy_vs_round", "model_size", "clients_per_phase")


def write_all(
    summaries: Sequence[Summary], figures_dir: str | Path, comparison: pd.DataFrame | None = None
) -> list[Path]:
    """Write every figure in ``FIGURES`` as ``<figures_dir>/<stem>.png`` and ``.pdf``; return the paths.

    With ``comparison`` (the per-rate table read from MLflow), accuracy vs sparsity is drawn from that
    table instead of from the summaries, so the figure shows the cited numbers.
    """
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem, plot in FIGURES.items():
        if stem == "accuracy_vs_sparsity" and comparison is not None:
            written += plot_accuracy_vs_sparsity_table(comparison, out / stem)
        else:
            written += plot(summaries, out / stem)
    return written


def write_cell(summary: Summary, figures_dir: str | Path) -> list[Path]:
    """The ``CELL_FIGURES`` of one cell, as PNG and PDF under ``figures_dir``."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem in CELL_FIGURES:
        written += FIGURES[stem]([summary], out / stem)
    return written
