"""Snakemake adapter: fetch and verify a dataset's raw files."""

from equitable_fl.stages import data, run_logged

run_logged(
    snakemake.log[0],
    data.fetch,
    dataset=snakemake.params.dataset,
    options=snakemake.params.options,
    raw_dir=snakemake.params.raw_dir,
    done_marker=snakemake.output.marker,
    kind=snakemake.params.get("kind"),
)
