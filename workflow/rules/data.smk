# Obtaining datasets: one fetch rule per downloadable dataset (verified raw files under data_dir),
# then `prepare` turns raw files (or an embedded dataset) into the versioned npz under results.


for _name in FETCHABLE:

    rule:
        name:
            f"fetch_{_name.replace('-', '_')}"
        output:
            marker=ensure(f"{R}/data/{_name}/fetched.json", non_empty=True),
        log:
            f"{R}/logs/fetch/{_name}.log",
        retries: config["fetch"]["retries"]
        # downloads run where Snakemake runs (on a cluster: the login node, which has the network)
        localrule: True
        conda:
            ENV
        params:
            dataset=_name,
            options=fetch_params(_name),
            raw_dir=f"{DATA_DIR}/raw/{_name}",
        script:
            "../scripts/fetch.py"


rule prepare:
    input:
        prepare_inputs,
    output:
        npz=f"{R}/data/{{dataset}}/prepared.npz",
        meta=f"{R}/data/{{dataset}}/meta.json",
    log:
        f"{R}/logs/prepare/{{dataset}}.log",
    conda:
        ENV
    params:
        options=dataset_options,
        raw_dir=lambda wc: (
            None
            if registry.get(wc.dataset).embedded
            else f"{DATA_DIR}/raw/{wc.dataset}"
        ),
    script:
        "../scripts/prepare.py"
