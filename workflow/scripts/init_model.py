"""Snakemake adapter: draw θ0 and write the model card."""

from equitable_fl.stages import run_logged, train

run_logged(
    snakemake.log[0],
    train.init,
    meta=snakemake.input.meta,
    seed=int(snakemake.wildcards.seed),
    model_cfg=snakemake.params.model,
    out_weights=snakemake.output.weights,
    out_card=snakemake.output.card,
    out_mask=snakemake.output.mask,
)
