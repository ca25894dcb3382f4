# Simulated clients: their resources, scores and tiers, and their shards of each dataset.


rule clients:
    output:
        f"{R}/clients/seed{{seed}}/clients.json",
    log:
        f"{R}/logs/clients/seed{{seed}}.log",
    conda:
        ENV
    params:
        clients=lambda wc: {
            k: config["clients"][k] for k in ("count", "resources", "tiers")
        },
    script:
        "../scripts/clients.py"


rule partition:
    input:
        npz=f"{R}/data/{{dataset}}/prepared.npz",
        meta=f"{R}/data/{{dataset}}/meta.json",
    output:
        json=f"{CELL}/partition.json",
        report=f"{CELL}/partition.csv",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/partition.log",
    conda:
        ENV
    params:
        clients=lambda wc: {k: config["clients"][k] for k in ("count", "partition")},
    script:
        "../scripts/partition.py"
