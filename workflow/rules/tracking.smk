# Experiment tracking: every finished cell logged to MLflow exactly once, and the comparison tables read
# back from it. See docs/tracking.md.
#
# Concurrency: training jobs never touch MLflow. One serialised job (`track`: one process, resource
# mlflow_db=1, a file lock) logs all cells after training, so SQLite sees a single writer. Cells whose
# outputs are unchanged are skipped by content hash, so rerunning it never duplicates runs.
include: "tracking_common.smk"


rule track:
    input:
        tracking_inputs(),
    output:
        LAYOUT.logged(),
    log:
        LAYOUT.log("track"),
    localrule: True
    conda:
        ENV
    threads: 1
    resources:
        mlflow_db=1,
    params:
        cells=tracking_cells(),
        store=lambda wc: tracking_store.describe(R),
    script:
        "../scripts/track.py"


rule compare:
    input:
        LAYOUT.logged(),
    output:
        csv=report(
            LAYOUT.table("comparison.csv"),
            caption="../report/comparison.rst",
            category="Tables",
        ),
        md=LAYOUT.table("comparison.md"),
    log:
        LAYOUT.log("compare"),
    localrule: True
    conda:
        ENV
    threads: 1
    resources:
        mlflow_db=1,
    params:
        grid={
            "datasets": DATASETS,
            "pruning_rates": RATES,
            "seeds": SEEDS,
            "variants": VARIANTS,
        },
        store=lambda wc: tracking_store.describe(R),
    script:
        "../scripts/compare.py"
