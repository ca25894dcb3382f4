# Obtaining datasets: fetch raw files (datasets that are not embedded), prepare the npz.


rule fetch:
    output:
        marker=f"{R}/data/{{dataset}}/fetched.json",
    log:
        f"{R}/logs/fetch/{{dataset}}.log",
    retries: 1
    conda:
        ENV
    params:
        options=dataset_options,
        raw_dir=lambda wc: f"{R}/data/{wc.dataset}/raw",
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
            None if registry.get(wc.dataset).embedded else f"{R}/data/{wc.dataset}/raw"
        ),
    script:
        "../scripts/prepare.py"
