"""Snakemake adapter: the availability figures (participation by tier, accuracy and time vs dropouts)."""

from pathlib import Path

from equitable_fl.stages import report, run_logged

run_logged(
    snakemake.log[0],
    report.availability_figures,
    summary_paths=list(snakemake.input.summaries),
    figures_dir=str(Path(snakemake.output.figures[0]).parent),
)
