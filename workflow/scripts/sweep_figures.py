"""Snakemake adapter: figures against the settings the config's variants sweep (thresholds, α)."""

from pathlib import Path

from equitable_fl.stages import report, run_logged

run_logged(
    snakemake.log[0],
    report.sweep_figures,
    summary_paths=list(snakemake.input.summaries),
    points=list(snakemake.params.points),
    names=list(snakemake.params.names),
    figures_dir=str(Path(snakemake.output.figures[0]).parent),
)
