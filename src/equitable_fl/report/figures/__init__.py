"""Paper-style figures of the grid: accuracy over rounds and over simulated time, accuracy vs sparsity,
model size, participation.

One module per figure family (``accuracy_round``, ``simulated_time``, ``accuracy_sparsity``,
``model_size``, ``clients``; ``sweeps`` for quantities against a swept setting), so a family can be read
and changed without wading through the others; ``style`` holds the shared look and the one draw-and-save
path, ``summaries`` the shared reading of cell summaries into numbers. This package only wires them
together: the ``FIGURES`` and ``SWEEP_PLOTS`` registries that the workflow's file lists mirror, and the
entry points used by ``equitable_fl.stages.report``.

Nothing here changes global matplotlib state on import or on use: figures are ``Figure`` objects drawn
under a local ``rc_context`` (see :mod:`equitable_fl.report.figures.style`). Every figure is saved as
PNG (150 dpi) and PDF, atomically and without timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from equitable_fl.report.figures.accuracy_round import plot_accuracy_vs_round
from equitable_fl.report.figures.accuracy_sparsity import (
    SparsityPoint,
    plot_accuracy_vs_sparsity,
    plot_accuracy_vs_sparsity_table,
    sparsity_points,
)
from equitable_fl.report.figures.clients import plot_clients_per_phase
from equitable_fl.report.figures.model_size import plot_model_size
from equitable_fl.report.figures.simulated_time import plot_accuracy_vs_simulated_time
from equitable_fl.report.figures.style import save_figure
from equitable_fl.report.figures.summaries import PlotFn, Summary
from equitable_fl.report.figures.sweeps import SWEEP_PLOTS, SweepFn
from equitable_fl.sweep import SweepPoint

__all__ = [
    "CELL_FIGURES",
    "FIGURES",
    "SWEEP_PLOTS",
    "PlotFn",
    "SparsityPoint",
    "Summary",
    "SweepFn",
    "plot_accuracy_vs_round",
    "plot_accuracy_vs_simulated_time",
    "plot_accuracy_vs_sparsity",
    "plot_accuracy_vs_sparsity_table",
    "plot_clients_per_phase",
    "plot_model_size",
    "save_figure",
    "sparsity_points",
    "write_all",
    "write_cell",
    "write_sweeps",
]

FIGURES: dict[str, PlotFn] = {
    "accuracy_vs_round": plot_accuracy_vs_round,
    "accuracy_vs_simulated_time": plot_accuracy_vs_simulated_time,
    "accuracy_vs_sparsity": plot_accuracy_vs_sparsity,
    "model_size": plot_model_size,
    "clients_per_phase": plot_clients_per_phase,
}


# Figures that describe a single cell (one dataset, rate and seed): logged to MLflow with that cell.
CELL_FIGURES = ("accuracy_vs_round", "accuracy_vs_simulated_time", "model_size", "clients_per_phase")


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


def write_sweeps(
    summaries: Sequence[Summary], points: Sequence[SweepPoint], names: Sequence[str], figures_dir: str | Path
) -> list[Path]:
    """The sweep figures ``names`` (keys of ``SWEEP_PLOTS``) as PNG and PDF under ``figures_dir``."""
    unknown = sorted(set(names) - set(SWEEP_PLOTS))
    if unknown:
        raise ValueError(f"unknown sweep figures {unknown}; known: {sorted(SWEEP_PLOTS)}")
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem in names:
        written += SWEEP_PLOTS[stem](summaries, points, out / stem)
    return written


def write_cell(summary: Summary, figures_dir: str | Path) -> list[Path]:
    """The ``CELL_FIGURES`` of one cell, as PNG and PDF under ``figures_dir``."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem in CELL_FIGURES:
        written += FIGURES[stem]([summary], out / stem)
    return written
