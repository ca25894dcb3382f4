"""Snakemake adapter: summarise one grid cell against vanilla FL."""

from equitable_fl.grid import GridCell
from equitable_fl.stages import run_logged, summary

cell = GridCell.from_wildcards(snakemake.wildcards)
run_logged(
    snakemake.log[0],
    summary.summarise,
    dataset=cell.dataset,
    seed=cell.seed,
    pruning_rate=float(cell.rate),
    variant=cell.variant,
    phase_metrics=list(snakemake.input.metrics),
    phase_timings=list(snakemake.input.timings),
    phase_participation=list(snakemake.input.participation),
    vanilla_metrics=snakemake.input.vanilla_metrics,
    vanilla_timing=snakemake.input.vanilla_timing,
    clients_json=snakemake.input.clients,
    partition_json=snakemake.input.partition,
    measured_json=snakemake.input.measured,
    target_tolerance=float(snakemake.params.summary["target_tolerance"]),
    out_summary=snakemake.output[0],
)
