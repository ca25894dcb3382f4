# Obtaining datasets: one fetch rule per downloadable dataset (verified raw files under data_dir),
# then `prepare` turns raw files (or an embedded dataset) into the versioned npz under results.


for _name in FETCHABLE:

    rule:
        name:
            f"fetch_{_name.replace('-', '_')}"
        output:
            marker=ensure(LAYOUT.fetched(_name), non_empty=True),
        log:
            LAYOUT.log(f"fetch/{_name}"),
        retries: EXP.fetch_retries
        # downloads run where Snakemake runs (on a cluster: the login node, which has the network)
        localrule: True
        conda:
            ENV
        params:
            **kind_params(_name),
            dataset=_name,
            options=fetch_params(_name),
            raw_dir=f"{DATA_DIR}/raw/{_name}",
        script:
            "../scripts/fetch.py"


rule prepare:
    input:
        prepare_inputs,
    output:
        npz=LAYOUT.prepared("{dataset}"),
        meta=LAYOUT.meta("{dataset}"),
    log:
        LAYOUT.log("prepare/{dataset}"),
    conda:
        ENV
    params:
        options=lambda wc: EXP.dataset_options(wc.dataset),
        raw_dir=lambda wc: (
            None
            if EXP.dataset_spec(wc.dataset).embedded
            else f"{DATA_DIR}/raw/{wc.dataset}"
        ),
    script:
        "../scripts/prepare.py"
