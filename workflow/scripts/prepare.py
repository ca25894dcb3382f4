"""Snakemake adapter: turn a dataset's raw files into the prepared npz."""

from equitable_fl.stages import data, run_logged

run_logged(
    snakemake.log[0],
    data.prepare,
    dataset=snakemake.wildcards.dataset,
    options=snakemake.params.options,
    raw_dir=snakemake.params.raw_dir,
    out_npz=snakemake.output.npz,
    out_meta=snakemake.output.meta,
    fetched=snakemake.input[0] if snakemake.input else None,
)
