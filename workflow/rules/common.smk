# Config validation, grid, paths and per-rule config slices. Everything here runs before any job.
from snakemake.utils import validate

from equitable_fl import config as eqcfg
from equitable_fl.data import registry

validate(config, schema="../schemas/config.schema.yaml")
eqcfg.check(config)

R = config["results_dir"]
DATA_DIR = config["data_dir"]
DATASETS = config["grid"]["datasets"]
SEEDS = [int(s) for s in config["grid"]["seeds"]]
RATES = [eqcfg.rate_label(r) for r in config["grid"]["pruning_rates"]]
NUM_PHASES = len(config["phases"])
TRAIN_THREADS = int(config["compute"]["train_threads"])
DEVICE = config["compute"]["device"]
# GPUs a training job asks the scheduler for (SLURM's `gpu` resource); 0 unless CUDA is configured
TRAIN_GPUS = 1 if DEVICE.startswith("cuda") else 0
# downloadable datasets get a fetch rule each; only those in the grid are ever run
FETCHABLE = [n for n in DATASETS if not registry.get(n).embedded]

CELL = f"{R}/{{dataset}}/seed{{seed}}"
RATE_CELL = f"{CELL}/rate{{rate}}"
ENV = "../envs/equitable-fl.yaml"
FIGURES = [
    "accuracy_vs_round",
    "accuracy_vs_sparsity",
    "model_size",
    "clients_per_phase",
]


wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    seed="[0-9]+",
    rate="[0-9][0-9.e-]*",
    k="[0-9]+",


def dataset_options(wildcards):
    return config["datasets"][wildcards.dataset].get("options", {})


def fetch_params(name):
    """A dataset's loader options, with the folder for hand-downloaded files filled in."""
    options = dict(config["datasets"].get(name, {}).get("options", {}))
    options.setdefault("manual_dir", f"{DATA_DIR}/manual/{name}")
    return options


def prepare_inputs(wildcards):
    if registry.get(wildcards.dataset).embedded:
        return []
    return f"{R}/data/{wildcards.dataset}/fetched.json"


def phase_dir(wildcards, k):
    """Phase 1 is shared by every pruning rate; later phases belong to one rate."""
    k = int(k)
    if k == 1:
        return f"{R}/{wildcards.dataset}/seed{wildcards.seed}/phase1"
    return f"{R}/{wildcards.dataset}/seed{wildcards.seed}/rate{wildcards.rate}/phase{k}"


def ticket_inputs(wildcards):
    """Phase k ≥ 2 starts from the ticket that pruning after phase k-1 produced."""
    prune = f"{R}/{wildcards.dataset}/seed{wildcards.seed}/rate{wildcards.rate}/prune{int(wildcards.k) - 1}"
    return {
        "weights": f"{prune}/ticket.safetensors",
        "mask": f"{prune}/mask.safetensors",
    }


def pruned_phase_inputs(wildcards):
    d = phase_dir(wildcards, wildcards.k)
    cell = f"{R}/{wildcards.dataset}/seed{wildcards.seed}"
    return {
        "weights": f"{d}/weights.safetensors",
        "mask": f"{d}/mask.safetensors",
        "rewind": f"{cell}/phase1/rewind.safetensors",
    }


def cell_phase_files(wildcards, name):
    return [f"{phase_dir(wildcards, k)}/{name}" for k in range(1, NUM_PHASES + 1)]


def summary_files():
    return expand(f"{RATE_CELL}/summary.json", dataset=DATASETS, seed=SEEDS, rate=RATES)


def final_outputs():
    return [
        *summary_files(),
        f"{R}/tables/cells.csv",
        f"{R}/tables/by_rate.csv",
        *expand(f"{R}/figures/{{name}}.{{ext}}", name=FIGURES, ext=["png", "pdf"]),
        f"{R}/mlflow/logged.json",
        f"{R}/tables/comparison.csv",
        f"{R}/tables/comparison.md",
    ]
