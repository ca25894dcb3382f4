"""The final step: all per-cell summaries in, comparison tables and figures out.

Writes ``cells.csv`` / ``cells.md`` (one row per dataset × pruning rate × seed) and ``by_rate.csv`` /
``by_rate.md`` (mean ± std over seeds) to ``tables_dir``, and every figure of
``equitable_fl.report.figures.FIGURES`` as PNG and PDF to ``figures_dir``.
"""

from __future__ import annotations

from pathlib import Path

from equitable_fl.report import figures, tables

CELLS_TITLE = "Equitable-FL vs vanilla FL, per cell (dataset × pruning rate × seed)"
BY_RATE_TITLE = "Equitable-FL vs vanilla FL, per dataset and pruning rate (mean ± std over seeds)"


def build(summary_paths: list[str], tables_dir: str, figures_dir: str) -> None:
    """Read every cell summary once and write the four tables and all figures from it."""
    summaries = tables.load_summaries(summary_paths)
    out = Path(tables_dir)
    cells, by_rate = tables.cell_table(summaries), tables.grouped_table(summaries)
    tables.write_table(cells, out / "cells.csv", out / "cells.md", CELLS_TITLE)
    tables.write_table(by_rate, out / "by_rate.csv", out / "by_rate.md", BY_RATE_TITLE)
    figures.write_all(summaries, figures_dir)
