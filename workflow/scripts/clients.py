"""Snakemake adapter: draw client resources, scores and tiers."""

from equitable_fl.stages import clients, run_logged

run_logged(
    snakemake.log[0],
    clients.profiles,
    seed=int(snakemake.wildcards.seed),
    cfg=snakemake.params.clients,
    out_json=snakemake.output[0],
)
