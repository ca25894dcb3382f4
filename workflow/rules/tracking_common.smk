# Helpers of rules/tracking.smk: which files each grid cell's MLflow runs are built from, and the config
# slice their params are resolved from. Paths come from the same templates and helpers as the rules.
from types import SimpleNamespace

from equitable_fl.tracking import store as tracking_store


def tracking_cells():
    """Per cell, the files its MLflow runs are built from (paths from the same helpers as the rules)."""
    cells = []
    for dataset in DATASETS:
        for seed in SEEDS:
            cell = CELL.format(dataset=dataset, seed=seed)
            npz = f"{R}/data/{dataset}/prepared.npz"
            cells.append(
                {
                    "method": "vanilla",
                    "dataset": dataset,
                    "seed": seed,
                    "dataset_file": npz,
                    **{
                        name: f"{cell}/vanilla/{name}.{ext}"
                        for name, ext in [
                            ("metrics", "json"),
                            ("participation", "json"),
                            ("timing", "json"),
                            ("weights", "safetensors"),
                        ]
                    },
                }
            )
            for rate in RATES:
                wc = SimpleNamespace(dataset=dataset, seed=seed, rate=rate)
                rate_cell = RATE_CELL.format(dataset=dataset, seed=seed, rate=rate)
                phases = []
                for k in range(1, NUM_PHASES + 1):
                    d = phase_dir(wc, k)
                    phases.append(
                        {
                            "phase": k,
                            "metrics": f"{d}/metrics.json",
                            "participation": f"{d}/participation.json",
                            "timing": f"{d}/timing.json",
                            "weights": f"{d}/weights.safetensors",
                            "mask": f"{d}/mask.safetensors",
                            "rewind": f"{d}/rewind.safetensors" if k == 1 else None,
                            "sparsity": (
                                f"{rate_cell}/prune{k - 1}/sparsity.json"
                                if k > 1
                                else None
                            ),
                        }
                    )
                cells.append(
                    {
                        "method": "equitable-fl",
                        "dataset": dataset,
                        "seed": seed,
                        "pruning_rate": rate,
                        "dataset_file": npz,
                        "summary": f"{rate_cell}/summary.json",
                        "figures": [
                            f"{rate_cell}/figures/{name}.png" for name in CELL_FIGURES
                        ],
                        "phases": phases,
                    }
                )
    return cells


def tracking_inputs():
    """Every file named in tracking_cells(), once: the track job runs after all of them exist."""
    labels = {"method", "dataset", "seed", "pruning_rate", "phase"}
    files = []

    def add(value):
        if isinstance(value, dict):
            for key, v in value.items():
                if key not in labels:
                    add(v)
        elif isinstance(value, list):
            for v in value:
                add(v)
        elif value is not None and value not in files:
            files.append(value)

    for cell in tracking_cells():
        add(cell)
    return files


def tracking_config():
    """The settings a cell's params are resolved from (compute threads are not an experiment setting)."""
    keys = (
        "clients",
        "training",
        "phases",
        "pruning",
        "eligibility",
        "vanilla",
        "summary",
    )
    return {
        "datasets": {d: config["datasets"][d] for d in DATASETS},
        **{k: config[k] for k in keys},
    }
