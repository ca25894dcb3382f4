"""The final step: all per-cell summaries in, comparison tables and figures out.

Writes ``cells.csv`` / ``cells.md`` (one row per dataset × pruning rate × seed) and ``by_rate.csv`` /
``by_rate.md`` (mean ± std over seeds) to ``tables_dir``, and every figure of
``equitable_fl.report.figures.FIGURES`` as PNG and PDF to ``figures_dir``. Given ``comparison_csv`` (the
table read back from MLflow by ``equitable_fl.tracking.compare``), the accuracy-vs-sparsity figure is drawn
from it, so the report and the cited table show the same numbers.

``cell_figures`` draws the figures of one cell; the workflow logs them to MLflow with that cell's runs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from equitable_fl import io
from equitable_fl.report import figures, tables

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


def cell_figures(summary_path: str, figures_dir: str) -> None:
    """The per-cell figures (accuracy per round, model size, clients per phase) of one summary."""
    figures.write_cell(io.read_json(summary_path), figures_dir)
