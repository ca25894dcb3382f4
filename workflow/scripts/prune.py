"""Snakemake adapter: prune the trained global model and rewind the survivors into a ticket."""

from equitable_fl.grid import GridCell
from equitable_fl.stages import prune, run_logged

cell = GridCell.from_wildcards(snakemake.wildcards)
run_logged(
    snakemake.log[0],
    prune.prune_and_rewind,
    job=f"pruning after phase {snakemake.wildcards.k} of {cell.label}",
    trained_weights=snakemake.input.weights,
    trained_mask=snakemake.input.mask,
    trained_card=snakemake.input.card,
    rewind_weights=snakemake.input.rewind,
    params=snakemake.params.pruning,
    out_mask=snakemake.output.mask,
    out_ticket=snakemake.output.ticket,
    out_card=snakemake.output.card,
    out_report=snakemake.output.report,
    out_params=snakemake.output.params,
)
