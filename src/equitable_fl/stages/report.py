"""The final step: all per-cell summaries in, comparison tables and figures out.

Writes ``cells.csv`` / ``cells.md`` (one row per dataset × pruning rate × seed) and ``by_rate.csv`` /
``by_rate.md`` (mean ± std over seeds) to ``tables_dir``, and every figure of
``equitable_fl.report.figures.FIGURES`` as PNG and PDF to ``figures_dir``. Given ``comparison_csv`` (the
table read back from MLflow by ``equitable_fl.tracking.compare``), the accuracy-vs-sparsity figure is drawn
from it, so the report and the cited table show the same numbers.

``cell_figures`` draws the figures of one cell; the workflow logs them to MLflow with that cell's runs.
``sweep_figures`` draws quantities against a swept setting (tier thresholds, Dirichlet α), for a config
whose variants sweep one (:mod:`equitable_fl.sweep`); ``availability_figures`` draws participation and
dropouts, for a config whose variants set ``clients.availability``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from equitable_fl import io
from equitable_fl.report import figures, tables
from equitable_fl.report.figures.availability import write_availability
from equitable_fl.sweep import SweepPoint

CELLS_TITLE = "Equitable-FL vs vanilla FL, per cell (dataset × pruning rate × seed)"
BY_RATE_TITLE = "Equitable-FL vs vanilla FL, per dataset and pruning rate (mean ± std over seeds)"


def build(
    summary_paths: list[str], tables_dir: str, figures_dir: str, comparison_csv: str | None = None
) -> None:
    """Read every cell summary once and write the four tables and all figures from it."""
    summaries = tables.load_summaries(summary_paths)
    out = Path(tables_dir)
    cells, by_rate = tables.cell_table(summaries), tables.grouped_table(summaries)
    tables.write_table(cells, out / "cells.csv", out / "cells.md", CELLS_TITLE)
    tables.write_table(by_rate, out / "by_rate.csv", out / "by_rate.md", BY_RATE_TITLE)
    comparison = pd.read_csv(comparison_csv) if comparison_csv is not None else None
    figures.write_all(summaries, figures_dir, comparison=comparison)


def sweep_figures(summary_paths: list[str], points: list[dict], names: list[str], figures_dir: str) -> None:
    """The sweep figures ``names`` (``equitable_fl.report.figures.SWEEP_PLOTS``) over the variants' points.

    ``points`` are the variants' :class:`~equitable_fl.sweep.SweepPoint` as JSON (the rule's params).
    """
    summaries = tables.load_summaries(summary_paths)
    figures.write_sweeps(summaries, [SweepPoint.from_json(p) for p in points], names, figures_dir)


def cell_figures(summary_path: str, figures_dir: str) -> None:
    """The per-cell figures (accuracy per round, model size, clients per phase) of one summary."""
    figures.write_cell(io.read_json(summary_path), figures_dir)


def availability_figures(summary_paths: list[str], figures_dir: str) -> None:
    """Participation by tier per round, and accuracy and time to target against the dropout rate
    (:mod:`equitable_fl.report.figures.availability`), for a grid whose variants set the availability."""
    write_availability(tables.load_summaries(summary_paths), figures_dir)
