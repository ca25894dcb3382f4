"""Snakemake adapter: train one Equitable-FL phase (phase 1 also writes the rewind point)."""

from equitable_fl.stages import run_logged, train

run_logged(
    snakemake.log[0],
    train.phase,
    npz=snakemake.input.npz,
    meta=snakemake.input.meta,
    partition_json=snakemake.input.partition,
    clients_json=snakemake.input.clients,
    model_card=snakemake.input.card,
    start_weights=snakemake.input.weights,
    start_mask=snakemake.input.mask,
    params=snakemake.params.phase,
    threads=snakemake.threads,
    device=snakemake.params.device,
    out_weights=snakemake.output.weights,
    out_mask=snakemake.output.mask,
    out_metrics=snakemake.output.metrics,
    out_participation=snakemake.output.participation,
    out_timing=snakemake.output.timing,
    out_rewind=snakemake.output.get("rewind"),
)
