"""Snakemake adapter: train one Equitable-FL phase (phase 1 also writes the rewind point)."""

from equitable_fl.grid import GridCell
from equitable_fl.stages import run_logged, train

cell = GridCell.from_wildcards(snakemake.wildcards)
run_logged(
    snakemake.log[0],
    train.phase,
    job=f"phase {snakemake.params.phase['phase']} of {cell.label}",
    npz=snakemake.input.npz,
    meta=snakemake.input.meta,
    partition_json=snakemake.input.partition,
    clients_json=snakemake.input.clients,
    card=snakemake.input.card,
    dense_card=snakemake.input.dense_card,
    start_weights=snakemake.input.weights,
    start_mask=snakemake.input.mask,
    params=snakemake.params.phase,
    threads=snakemake.threads,
    **snakemake.params.job,
    out=train.TrainingOutputs(**dict(snakemake.output.items())),
)
