"""Snakemake adapter: the figures of one grid cell (logged to MLflow with its runs)."""

from pathlib import Path

from equitable_fl.stages import report, run_logged

run_logged(
    snakemake.log[0],
    report.cell_figures,
    summary_path=snakemake.input[0],
    figures_dir=str(Path(snakemake.output.figures[0]).parent),
)
