"""Snakemake adapter: summarise one grid cell against vanilla FL."""

from equitable_fl.stages import run_logged, summary

run_logged(
    snakemake.log[0],
    summary.summarise,
    dataset=snakemake.wildcards.dataset,
    seed=int(snakemake.wildcards.seed),
    pruning_rate=float(snakemake.wildcards.rate),
    phase_metrics=list(snakemake.input.metrics),
    phase_timings=list(snakemake.input.timings),
    phase_participation=list(snakemake.input.participation),
    vanilla_metrics=snakemake.input.vanilla_metrics,
    vanilla_timing=snakemake.input.vanilla_timing,
    clients_json=snakemake.input.clients,
    target_tolerance=float(snakemake.params.summary["target_tolerance"]),
    out_summary=snakemake.output[0],
)
