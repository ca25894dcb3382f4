"""Snakemake adapter: note that the MLflow store travelled with its results folder (`track` rebuilds it)."""

from pathlib import Path

from equitable_fl.stages import run_logged
from equitable_fl.tracking import relocate

run_logged(
    snakemake.log[0],
    relocate.write_flag,
    results_dir=str(Path(snakemake.output[0]).parent.parent),  # <results_dir>/mlflow/moved-<pair>.json
    out=snakemake.output[0],
)
