"""Snakemake adapter: train the dense vanilla FL baseline."""

from equitable_fl.grid import GridCell
from equitable_fl.stages import run_logged, train

cell = GridCell.from_wildcards(snakemake.wildcards)
run_logged(
    snakemake.log[0],
    train.vanilla,
    job=f"vanilla FL of {cell.label}",
    npz=snakemake.input.npz,
    meta=snakemake.input.meta,
    partition_json=snakemake.input.partition,
    clients_json=snakemake.input.clients,
    card=snakemake.input.card,
    init_weights=snakemake.input.weights,
    init_mask=snakemake.input.mask,
    params=snakemake.params.vanilla,
    threads=snakemake.threads,
    **snakemake.params.job,
    out=train.TrainingOutputs(**dict(snakemake.output.items())),
)
