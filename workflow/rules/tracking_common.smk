# Helpers of rules/tracking.smk: which files each grid cell's MLflow runs are built from. Paths come from
# equitable_fl.layout, cells from equitable_fl.grid; settings from the params.json each step wrote.
from equitable_fl.tracking import relocate as tracking_relocate
from equitable_fl.tracking import store as tracking_store


def _context(exp, dataset):
    """What a cell's params say beyond the step slices: the dataset's options, model and clients."""
    return {
        "data": {"options": exp.dataset_options(dataset)},
        "model": exp.model_config(dataset),
        "clients": {**exp.clients_slice(), **exp.partition_slice()},
        # the base section; each phase's params hold the settings it trained with
        "training": exp.training_slice(),
    }


def _train_files(d, names):
    return {name.split(".")[0]: f"{d}/{name}" for name in names}


def tracking_cells():
    """Per cell, the files its MLflow runs are built from."""
    specs = []
    for dataset in DATASETS:
        for variant in VARIANTS:
            exp = EXP.for_variant(variant)
            for seed in SEEDS:
                shared = GridCell(dataset, seed, None, variant)
                specs.append(
                    {
                        "cell": vars(shared),
                        "dataset_file": LAYOUT.prepared(dataset),
                        "context": _context(exp, dataset),
                        **_train_files(
                            LAYOUT.vanilla_dir(shared),
                            [n for n in L.TRAIN_FILES if n != L.MASK],
                        ),
                    }
                )
                for rate in RATES:
                    cell = shared.with_rate(rate)
                    phases = []
                    for k in range(1, NUM_PHASES + 1):
                        files = _train_files(LAYOUT.phase_dir(cell, k), L.TRAIN_FILES)
                        if k == 1:
                            files["rewind"] = f"{LAYOUT.phase_dir(cell, 1)}/{L.REWIND}"
                        else:
                            prune = LAYOUT.prune_dir(cell, k - 1)
                            files["sparsity"] = f"{prune}/{L.SPARSITY}"
                            files["prune_params"] = f"{prune}/{L.PARAMS}"
                        phases.append({"phase": k, **files})
                    specs.append(
                        {
                            "cell": vars(cell),
                            "dataset_file": LAYOUT.prepared(dataset),
                            "context": _context(exp, dataset),
                            "summary": LAYOUT.summary(cell),
                            "figures": [
                                LAYOUT.cell_figure(cell, n) for n in L.CELL_FIGURES
                            ],
                            "phases": phases,
                        }
                    )
    return specs


def tracking_inputs():
    """Every file named in tracking_cells(), once: the track job runs after all of them exist."""
    skip = {"cell", "context", "phase"}
    files = []

    def add(value):
        if isinstance(value, dict):
            for key, v in value.items():
                if key not in skip:
                    add(v)
        elif isinstance(value, list):
            for v in value:
                add(v)
        elif value is not None and value not in files:
            files.append(value)

    for spec in tracking_cells():
        add(spec)
    return files


def store_moved_flag():
    """While the MLflow store points at another folder's artifacts (a copied, moved or pulled results
    folder), one more input for `all` that makes `track` run and rebuild it; else none.
    """
    return tracking_relocate.flags(R)


def store_moved_flags():
    """`track`'s: the current flag and those of earlier relocations (a stable set of inputs)."""
    return tracking_relocate.flags(R, earlier=True)
