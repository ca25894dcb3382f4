# The workflow lives in workflow/Snakefile. A plain `include:` would drop its `rule all` as the default
# target (Snakemake restores the includer's default after an include), so include it keeping its target.
workflow.include("workflow/Snakefile", overwrite_default_target=True)
