"""The look shared by every figure, and the one way figures are drawn and saved.

Style is applied only while a figure is drawn and saved (:func:`render` wraps both in a local
``matplotlib.rc_context``), and figures are plain ``matplotlib.figure.Figure`` objects (no ``pyplot``).
So importing or calling anything here never changes global matplotlib state for the caller (no backend
switch, no rcParams update) and no figure registry can leak memory in a long Snakemake run: PNG and PDF
are written by matplotlib's per-format canvases whatever the global backend is.

Saving strips timestamp and software metadata and writes through a temporary file renamed into place,
so re-running on the same summaries gives (nearly) the same bytes and never leaves a half-written file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from equitable_fl import io

DPI = 150
PANEL_W, PANEL_H = 4.6, 3.3
VANILLA_COLOR = "0.15"
VANILLA_FILL = "0.6"
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


def phase_colors(n: int) -> list[Any]:
    """Distinct colours per phase from a qualitative map (tab10 skipping grey, kept for vanilla)."""
    cmap = matplotlib.colormaps["tab10"]
    picks = [0, 1, 2, 3, 4, 5, 6, 8, 9]
    return [cmap(picks[i % len(picks)]) for i in range(max(n, 1))]


def rate_colors(rates: Sequence[float]) -> dict[float, Any]:
    """Sequential colours by pruning rate: lighter (yellower) means more aggressive pruning."""
    cmap = matplotlib.colormaps["viridis"]
    n = len(rates)
    return {r: cmap(0.15 + 0.7 * (i / max(n - 1, 1))) for i, r in enumerate(sorted(rates))}


def tier_colors(tiers: Sequence[str]) -> dict[str, Any]:
    """Qualitative colours per tier, stable for a given sorted tier list."""
    cmap = matplotlib.colormaps["Set2"]
    return {t: cmap(i % cmap.N) for i, t in enumerate(tiers)}


def new_figure(
    rows: int, cols: int, *, width: float = PANEL_W, height: float = PANEL_H
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout grid; at least ``MIN_FIG_W`` wide so a shared legend fits under one panel."""
    fig = Figure(figsize=(max(width * cols, MIN_FIG_W), height * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def collect_legend(axes: np.ndarray) -> tuple[list[Any], list[str]]:
    """Unique legend entries over all panels (phases may differ by panel), in first-seen order."""
    seen: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen)


def figure_legend(fig: Figure, handles: list[Any], labels: list[str], col_width: float = 2.3) -> None:
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


def render(out_stem: str | Path, draw: Callable[[], Figure]) -> list[Path]:
    """Build and save a figure inside a local rc context, so style never leaks to the caller."""
    with matplotlib.rc_context(RC):
        fig = draw()
        return save_figure(fig, out_stem)
