"""Snakemake adapter: log every finished grid cell to MLflow, exactly once (the serialised `track` rule)."""

from pathlib import Path

from equitable_fl.stages import run_logged
from equitable_fl.tracking import log_cells

run_logged(
    snakemake.log[0],
    log_cells.track,
    cells=list(snakemake.params.cells),
    results_dir=str(Path(snakemake.output[0]).parent.parent),  # <results_dir>/mlflow/logged.json
    source_dir=snakemake.scriptdir,
    out_logged=snakemake.output[0],
)
