"""Snakemake adapter: the Equitable-FL vs vanilla comparison tables, read back from MLflow."""

from pathlib import Path

from equitable_fl.stages import run_logged
from equitable_fl.tracking import compare

run_logged(
    snakemake.log[0],
    compare.build,
    results_dir=str(Path(snakemake.input[0]).parent.parent),  # <results_dir>/mlflow/logged.json
    grid=dict(snakemake.params.grid),
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
    out_html=snakemake.output.html,
    out_headline=snakemake.output.headline,
)
