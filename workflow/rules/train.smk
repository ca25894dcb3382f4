# Training: θ0, the Equitable-FL phases with pruning in between, vanilla FL, and the cell summary.
# Each phase is an ordinary rule; its outputs (weights, mask, metrics, params.json) are its checkpoint.


rule init_model:
    input:
        meta=LAYOUT.meta("{dataset}"),
    output:
        weights=f"{LAYOUT.init_dir(P)}/{L.WEIGHTS}",
        mask=f"{LAYOUT.init_dir(P)}/{L.MASK}",
        card=f"{LAYOUT.init_dir(P)}/{L.MODEL_CARD}",
    log:
        LAYOUT.log("{dataset}/seed{seed}/init"),
    conda:
        ENV
    params:
        model=lambda wc: EXP.model_config(wc.dataset),
    script:
        "../scripts/init_model.py"


# Phase k ≥ 2 of one pruning rate, from the ticket of prune k-1. Phase 1 (below) reuses this rule.
rule phase:
    input:
        unpack(data_inputs),
        unpack(ticket_inputs),
    output:
        **{
            name.split(".")[0]: f"{LAYOUT.phase_dir(P, '{k}')}/{name}"
            for name in L.TRAIN_FILES
        },
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/rate{rate}/phase{k}"),
    conda:
        ENV
    threads: COMPUTE.train_threads
    resources:
        gpu=COMPUTE.gpus,
    params:
        phase=lambda wc: exp_of(wc).phase_slice(int(wc.k), int(wc.seed)),
        job=COMPUTE.job(),
    script:
        "../scripts/train_phase.py"


# Phase 1: dense, shared by every pruning rate; also keeps the rewind point.
use rule phase as phase1 with:
    output:
        **{
            name.split(".")[0]: f"{LAYOUT.phase_dir(P, 1)}/{name}"
            for name in (*L.TRAIN_FILES, L.REWIND)
        },
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/phase1"),
    params:
        phase=lambda wc: exp_of(wc).phase_slice(1, int(wc.seed)),
        job=COMPUTE.job(),


rule prune:
    input:
        unpack(pruned_phase_inputs),
    output:
        mask=f"{LAYOUT.prune_dir(P, '{k}')}/{L.MASK}",
        ticket=f"{LAYOUT.prune_dir(P, '{k}')}/{L.TICKET}",
        card=f"{LAYOUT.prune_dir(P, '{k}')}/{L.MODEL_CARD}",
        report=f"{LAYOUT.prune_dir(P, '{k}')}/{L.SPARSITY}",
        params=f"{LAYOUT.prune_dir(P, '{k}')}/{L.PARAMS}",
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/rate{rate}/prune{k}"),
    conda:
        ENV
    params:
        pruning=lambda wc: exp_of(wc).prune_slice(wc.rate),
    script:
        "../scripts/prune.py"


rule vanilla:
    input:
        unpack(data_inputs),
        weights=f"{LAYOUT.init_dir(P)}/{L.WEIGHTS}",
        mask=f"{LAYOUT.init_dir(P)}/{L.MASK}",
        card=f"{LAYOUT.init_dir(P)}/{L.MODEL_CARD}",
    output:
        **{
            name.split(".")[0]: f"{LAYOUT.vanilla_dir(P)}/{name}"
            for name in L.TRAIN_FILES
            if name != L.MASK
        },
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/vanilla"),
    conda:
        ENV
    threads: COMPUTE.train_threads
    resources:
        gpu=COMPUTE.gpus,
    params:
        vanilla=lambda wc: exp_of(wc).vanilla_slice(int(wc.seed)),
        job=COMPUTE.job(),
    script:
        "../scripts/train_vanilla.py"


rule summarise_cell:
    input:
        unpack(summary_inputs),
    output:
        LAYOUT.summary(P),
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/rate{rate}/summary"),
    conda:
        ENV
    params:
        summary=lambda wc: exp_of(wc).summary_slice(),
    script:
        "../scripts/summarise_cell.py"
