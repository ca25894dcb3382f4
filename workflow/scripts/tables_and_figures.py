"""Snakemake adapter: build the grid's tables and figures from the cell summaries and the MLflow table."""

from pathlib import Path

from equitable_fl.stages import report, run_logged

run_logged(
    snakemake.log[0],
    report.build,
    summary_paths=list(snakemake.input.summaries),
    tables_dir=str(Path(snakemake.output.cells).parent),
    figures_dir=str(Path(snakemake.output.figures[0]).parent),
    comparison_csv=snakemake.input.comparison,
)
