"""Snakemake adapter: split a dataset's training set over the clients."""

from equitable_fl.stages import clients, run_logged

run_logged(
    snakemake.log[0],
    clients.partition,
    npz=snakemake.input.npz,
    meta=snakemake.input.meta,
    seed=int(snakemake.wildcards.seed),
    cfg=snakemake.params.clients,
    out_json=snakemake.output.json,
    out_report=snakemake.output.report,
)
