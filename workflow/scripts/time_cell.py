"""Snakemake adapter: time θ0's dense model against the cell's final ticket, side by side."""

from equitable_fl.stages import run_logged, timing

run_logged(
    snakemake.log[0],
    timing.time_cell,
    npz=snakemake.input.npz,
    meta=snakemake.input.meta,
    dense_weights=snakemake.input.dense_weights,
    dense_card=snakemake.input.dense_card,
    ticket_weights=snakemake.input.ticket_weights,
    ticket_mask=snakemake.input.ticket_mask,
    ticket_card=snakemake.input.ticket_card,
    params=snakemake.params.timing,
    threads=snakemake.threads,
    device=snakemake.params.device,
    execution=snakemake.params.execution,
    out=snakemake.output[0],
)
