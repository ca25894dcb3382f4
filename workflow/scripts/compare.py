"""Snakemake adapter: the Equitable-FL vs vanilla comparison tables, read back from MLflow."""

from equitable_fl.stages import run_logged
from equitable_fl.tracking import compare

run_logged(
    snakemake.log[0],
    compare.build,
    results_dir=snakemake.params.results_dir,
    grid=dict(snakemake.params.grid),
    out_csv=snakemake.output.csv,
    out_md=snakemake.output.md,
)
