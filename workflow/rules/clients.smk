# Simulated clients: their resources, scores and tiers, and their shards of each dataset.


rule clients:
    output:
        LAYOUT.clients(P),
    log:
        LAYOUT.log("clients/{vdir}seed{seed}"),
    conda:
        ENV
    params:
        clients=lambda wc: exp_of(wc).clients_slice(),
    script:
        "../scripts/clients.py"


rule partition:
    input:
        npz=LAYOUT.prepared("{dataset}"),
        meta=LAYOUT.meta("{dataset}"),
    output:
        json=LAYOUT.partition(P),
        report=LAYOUT.partition(P, "csv"),
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/partition"),
    conda:
        ENV
    params:
        clients=lambda wc: exp_of(wc).partition_slice(),
    script:
        "../scripts/partition.py"
