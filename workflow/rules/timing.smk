# The per-cell timing step: θ0's dense model and the cell's final ticket (the final phase's weights and
# mask on the card that phase started from) trained side by side in one process: interleaved, same
# batches, same threads. measured.json's median paired ratio is the cell's measured wall-clock speed-up;
# times of different training jobs are not compared (jobs run in parallel).


rule time_cell:
    input:
        npz=LAYOUT.prepared("{dataset}"),
        meta=LAYOUT.meta("{dataset}"),
        dense_weights=f"{LAYOUT.init_dir(P)}/{L.WEIGHTS}",
        dense_card=f"{LAYOUT.init_dir(P)}/{L.MODEL_CARD}",
        ticket_weights=lambda wc: f"{LAYOUT.phase_dir(cell_of(wc), exp_of(wc).num_phases)}/{L.WEIGHTS}",
        ticket_mask=lambda wc: f"{LAYOUT.phase_dir(cell_of(wc), exp_of(wc).num_phases)}/{L.MASK}",
        ticket_card=lambda wc: LAYOUT.ticket_start(cell_of(wc), exp_of(wc).num_phases)[
            "card"
        ],
    output:
        LAYOUT.measured(P),
    log:
        LAYOUT.log("{dataset}/{vdir}seed{seed}/rate{rate}/time_cell"),
    conda:
        ENV
    threads: COMPUTE.train_threads
    resources:
        gpu=COMPUTE.gpus,
    params:
        # compute.timing, the final phase's training settings (batch size, SGD) and the seed
        timing=lambda wc: {
            "timing": EXP.cfg["compute"]["timing"],
            "training": exp_of(wc).training_slice(exp_of(wc).num_phases),
            "seed": int(wc.seed),
        },
        device=COMPUTE.device,
        execution=COMPUTE.execution(),
    script:
        "../scripts/time_cell.py"
