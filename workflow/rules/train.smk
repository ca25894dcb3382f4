# Training: θ0, the Equitable-FL phases with pruning in between, vanilla FL, and the cell summary.
# Each phase is an ordinary rule; its outputs (weights, mask, metrics) are its checkpoint.


rule init_model:
    input:
        meta=f"{R}/data/{{dataset}}/meta.json",
    output:
        weights=f"{CELL}/init/weights.safetensors",
        mask=f"{CELL}/init/mask.safetensors",
        card=f"{CELL}/init/model.json",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/init.log",
    conda:
        ENV
    params:
        model=lambda wc: config["datasets"][wc.dataset]["model"],
    script:
        "../scripts/init_model.py"


rule phase1:
    input:
        npz=f"{R}/data/{{dataset}}/prepared.npz",
        meta=f"{R}/data/{{dataset}}/meta.json",
        partition=f"{CELL}/partition.json",
        clients=f"{R}/clients/seed{{seed}}/clients.json",
        card=f"{CELL}/init/model.json",
        weights=f"{CELL}/init/weights.safetensors",
        mask=f"{CELL}/init/mask.safetensors",
    output:
        weights=f"{CELL}/phase1/weights.safetensors",
        mask=f"{CELL}/phase1/mask.safetensors",
        rewind=f"{CELL}/phase1/rewind.safetensors",
        metrics=f"{CELL}/phase1/metrics.json",
        participation=f"{CELL}/phase1/participation.json",
        timing=f"{CELL}/phase1/timing.json",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/phase1.log",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        gpu=TRAIN_GPUS,
    params:
        phase=lambda wc: eqcfg.phase_slice(config, 1, int(wc.seed)),
        device=DEVICE,
    script:
        "../scripts/train_phase.py"


rule prune:
    input:
        unpack(pruned_phase_inputs),
    output:
        mask=f"{RATE_CELL}/prune{{k}}/mask.safetensors",
        ticket=f"{RATE_CELL}/prune{{k}}/ticket.safetensors",
        report=f"{RATE_CELL}/prune{{k}}/sparsity.json",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/rate{{rate}}/prune{{k}}.log",
    conda:
        ENV
    params:
        pruning=lambda wc: eqcfg.prune_slice(config, float(wc.rate)),
    script:
        "../scripts/prune.py"


rule phase:
    input:
        unpack(ticket_inputs),
        npz=f"{R}/data/{{dataset}}/prepared.npz",
        meta=f"{R}/data/{{dataset}}/meta.json",
        partition=f"{CELL}/partition.json",
        clients=f"{R}/clients/seed{{seed}}/clients.json",
        card=f"{CELL}/init/model.json",
    output:
        weights=f"{RATE_CELL}/phase{{k}}/weights.safetensors",
        mask=f"{RATE_CELL}/phase{{k}}/mask.safetensors",
        metrics=f"{RATE_CELL}/phase{{k}}/metrics.json",
        participation=f"{RATE_CELL}/phase{{k}}/participation.json",
        timing=f"{RATE_CELL}/phase{{k}}/timing.json",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/rate{{rate}}/phase{{k}}.log",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        gpu=TRAIN_GPUS,
    params:
        phase=lambda wc: eqcfg.phase_slice(config, int(wc.k), int(wc.seed)),
        device=DEVICE,
    script:
        "../scripts/train_phase.py"


rule vanilla:
    input:
        npz=f"{R}/data/{{dataset}}/prepared.npz",
        meta=f"{R}/data/{{dataset}}/meta.json",
        partition=f"{CELL}/partition.json",
        clients=f"{R}/clients/seed{{seed}}/clients.json",
        card=f"{CELL}/init/model.json",
        weights=f"{CELL}/init/weights.safetensors",
        mask=f"{CELL}/init/mask.safetensors",
    output:
        weights=f"{CELL}/vanilla/weights.safetensors",
        metrics=f"{CELL}/vanilla/metrics.json",
        participation=f"{CELL}/vanilla/participation.json",
        timing=f"{CELL}/vanilla/timing.json",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/vanilla.log",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        gpu=TRAIN_GPUS,
    params:
        vanilla=lambda wc: eqcfg.vanilla_slice(config, int(wc.seed)),
        device=DEVICE,
    script:
        "../scripts/train_vanilla.py"


rule summarise_cell:
    input:
        metrics=lambda wc: cell_phase_files(wc, "metrics.json"),
        timings=lambda wc: cell_phase_files(wc, "timing.json"),
        participation=lambda wc: cell_phase_files(wc, "participation.json"),
        vanilla_metrics=f"{CELL}/vanilla/metrics.json",
        vanilla_timing=f"{CELL}/vanilla/timing.json",
        clients=f"{R}/clients/seed{{seed}}/clients.json",
    output:
        f"{RATE_CELL}/summary.json",
    log:
        f"{R}/logs/{{dataset}}/seed{{seed}}/rate{{rate}}/summary.log",
    conda:
        ENV
    params:
        summary=config["summary"],
    script:
        "../scripts/summarise_cell.py"
