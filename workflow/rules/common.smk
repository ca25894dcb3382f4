# Config read once (schema with defaults, semantic checks, typed settings), the grid, and paths.
# Everything here runs before any job. Paths come from equitable_fl.layout; rules never spell them.
from snakemake.utils import validate

from equitable_fl import layout as L
from equitable_fl.config import Experiment
from equitable_fl.data import registry
from equitable_fl.grid import GridCell
from equitable_fl.sweep import sweep_points, swept_axes

# Experiment.load first: its messages name the key, the value and what is allowed
EXP = Experiment.load(config)
validate(config, schema="../schemas/config.schema.yaml")
LAYOUT = L.Layout(EXP.results_dir, EXP)
P = L.PATTERN  # the wildcard cell: paths built from it are rule patterns

R = EXP.results_dir
DATA_DIR = EXP.data_dir
DATASETS = EXP.datasets
SEEDS = EXP.seeds
RATES = EXP.rates
VARIANTS = EXP.variants
NUM_PHASES = EXP.num_phases
COMPUTE = EXP.compute
# downloadable datasets get a fetch rule each; only those in the grid are ever run
FETCHABLE = [n for n in DATASETS if not EXP.dataset_spec(n).embedded]
ENV = "../envs/equitable-fl.yaml"
# what the variants sweep (tier thresholds, Dirichlet α), and the figures drawn against it
SWEEP_POINTS = sweep_points(EXP)
SWEEP_NAMES = [n for axis in swept_axes(SWEEP_POINTS) for n in L.SWEEP_FIGURES[axis]]


wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    seed="[0-9]+",
    rate="[0-9][0-9.e-]*",
    k="[0-9]+",
    vdir="(|[A-Za-z][A-Za-z0-9_-]*/)",


def cell_of(wildcards):
    """The grid cell a job works on."""
    return GridCell.from_wildcards(wildcards)


def exp_of(wildcards):
    """The experiment (base or variant) a job belongs to."""
    return EXP.for_variant(cell_of(wildcards).variant)


def fetch_params(name):
    """A dataset's loader options, with the folder for hand-downloaded files filled in."""
    options = EXP.dataset_options(name)
    options.setdefault("manual_dir", f"{DATA_DIR}/manual/{name}")
    return options


def kind_params(name):
    """A fetch rule's ``kind`` param, only for a dataset the registry does not know (built-ins need
    none); the fetch step records it in its marker, where the prepare step reads it."""
    return {} if registry.default_kind(name) else {"kind": EXP.dataset_kind(name)}


def prepare_inputs(wildcards):
    if EXP.dataset_spec(wildcards.dataset).embedded:
        return []
    return LAYOUT.fetched(wildcards.dataset)


def data_inputs(wildcards):
    """What every training step reads: the prepared data, the partition and the clients."""
    cell = cell_of(wildcards)
    return {
        "npz": LAYOUT.prepared(cell.dataset),
        "meta": LAYOUT.meta(cell.dataset),
        "partition": LAYOUT.partition(cell),
        "clients": LAYOUT.clients(cell),
    }


def ticket_inputs(wildcards):
    """Phase 1 starts from θ0, phase k ≥ 2 from the ticket pruning after phase k-1 produced."""
    return LAYOUT.ticket_start(cell_of(wildcards), int(wildcards.get("k", 1)))


def pruned_phase_inputs(wildcards):
    cell, k = cell_of(wildcards), int(wildcards.k)
    d = LAYOUT.phase_dir(cell, k)
    return {
        "weights": f"{d}/{L.WEIGHTS}",
        "mask": f"{d}/{L.MASK}",
        "card": LAYOUT.ticket_start(cell, k)["card"],
        "rewind": f"{LAYOUT.phase_dir(cell, 1)}/{L.REWIND}",
    }


def summary_inputs(wildcards):
    cell = cell_of(wildcards)
    van = LAYOUT.vanilla_dir(cell)
    return {
        "metrics": LAYOUT.phase_files(cell, L.METRICS),
        "timings": LAYOUT.phase_files(cell, L.TIMING),
        "participation": LAYOUT.phase_files(cell, L.PARTICIPATION),
        "vanilla_metrics": f"{van}/{L.METRICS}",
        "vanilla_timing": f"{van}/{L.TIMING}",
        "clients": LAYOUT.clients(cell),
        "partition": LAYOUT.partition(cell),
        "measured": LAYOUT.measured(cell),
    }


def cells():
    """Every Equitable-FL cell of the grid."""
    return [
        GridCell(d, s, r, v)
        for d in DATASETS
        for v in VARIANTS
        for s in SEEDS
        for r in RATES
    ]


def summary_files():
    return [LAYOUT.summary(c) for c in cells()]


def availability_outputs():
    """The availability figures, for a config whose base or a variant sets a dynamic
    clients.availability (rules/availability.smk)."""
    if all(EXP.for_variant(v).availability_slice() is None for v in VARIANTS):
        return []
    return [
        LAYOUT.figure(n, e) for n in L.AVAILABILITY_FIGURES for e in L.FIGURE_FORMATS
    ]


def final_outputs():
    return [
        *summary_files(),
        LAYOUT.table("cells.csv"),
        LAYOUT.table("by_rate.csv"),
        *[LAYOUT.figure(n, e) for n in L.GRID_FIGURES for e in L.FIGURE_FORMATS],
        *[LAYOUT.figure(n, e) for n in SWEEP_NAMES for e in L.FIGURE_FORMATS],
        *availability_outputs(),
        LAYOUT.logged(),
        LAYOUT.table("comparison.csv"),
        LAYOUT.table("comparison.md"),
    ]
