# Experiment tracking: every finished cell logged to MLflow exactly once, and the comparison tables read
# back from it. See docs/tracking.md.
#
# Concurrency: training jobs never touch MLflow. One serialised job (`track`: one process, resource
# mlflow_db=1, a file lock) logs all cells after training, so SQLite sees a single writer. Cells whose
# outputs are unchanged are skipped by content hash, so rerunning it never duplicates runs.
include: "tracking_common.smk"


# Only while the store is stale (tracking.relocate): its flag, named after the old and new artifact
# roots, makes `track` run and rebuild the store.
rule store_moved:
    output:
        tracking_relocate.flag_path(R),
    log:
        LAYOUT.log("store_moved-{pair}"),
    wildcard_constraints:
        pair="[0-9a-f]{12}",
    localrule: True
    conda:
        ENV
    threads: 1
    script:
        "../scripts/store_moved.py"


rule track:
    input:
        tracking_inputs(),
        store_moved_flags(),
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
        csv=LAYOUT.table("comparison.csv"),
        md=LAYOUT.table("comparison.md"),
        html=report(
            LAYOUT.table("comparison.html"),
            caption="../report/comparison.rst",
            category="Tables",
            labels={
                "table": "Equitable-FL vs vanilla FL",
                "rows": "dataset × pruning rate",
            },
        ),
        headline=LAYOUT.table("headline.rst"),
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
