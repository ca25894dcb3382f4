"""Every output path of the workflow, named once (no torch, no matplotlib: rules import it).

Rules, tracking and reports ask this module for paths instead of spelling file names again. Paths are
built for a :class:`~equitable_fl.grid.GridCell`; a cell whose fields are Snakemake wildcards
(:data:`PATTERN`) gives the rule patterns. For a concrete cell, the variant segment of each step's path
comes from :meth:`Experiment.step_variant`: a variant shares every output whose settings it does not
change, so a threshold sweep reuses the data, the partition and θ0.

Layout under ``results_dir`` (``<v>`` is ``""`` or ``<variant>/``)::

    data/<dataset>/{fetched.json, prepared.npz, meta.json}
    clients/<v>seed<s>/clients.json
    <dataset>/<v>seed<s>/{partition.json, partition.csv}
    <dataset>/seed<s>/init/{weights, mask}.safetensors, model.json
    <dataset>/<v>seed<s>/phase1/                      (shared by every rate)
    <dataset>/<v>seed<s>/rate<p>/prune<k>/, phase<k>/ (k ≥ 2)
    <dataset>/<v>seed<s>/vanilla/
    <dataset>/<v>seed<s>/rate<p>/summary.json, measured.json, figures/
    tables/, figures/, mlflow/, logs/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from equitable_fl.grid import GridCell, variant_dir

if TYPE_CHECKING:
    from equitable_fl.config import Experiment

# A cell whose fields are Snakemake wildcards: paths built from it are rule patterns.
PATTERN: Any = GridCell(dataset="{dataset}", seed="{seed}", rate="{rate}", variant="{vdir}")  # type: ignore[arg-type]

# Files of a training step (phase or vanilla), prune step and the init step.
WEIGHTS, MASK, REWIND, TICKET = (
    "weights.safetensors",
    "mask.safetensors",
    "rewind.safetensors",
    "ticket.safetensors",
)
METRICS, PARTICIPATION, TIMING, PARAMS = "metrics.json", "participation.json", "timing.json", "params.json"
MODEL_CARD, SPARSITY = "model.json", "sparsity.json"
TRAIN_FILES = (WEIGHTS, MASK, METRICS, PARTICIPATION, TIMING, PARAMS)

CELL_FIGURES = ("accuracy_vs_round", "accuracy_vs_simulated_time", "model_size", "clients_per_phase")
GRID_FIGURES = (
    "accuracy_vs_round",
    "accuracy_vs_simulated_time",
    "accuracy_vs_sparsity",
    "model_size",
    "clients_per_phase",
)
# Figures against a swept setting (equitable_fl.sweep), drawn only for a config whose variants sweep it.
SWEEP_FIGURES = {
    "thresholds": (
        "sweep_accuracy_vs_thresholds",
        "sweep_coverage_vs_thresholds",
        "sweep_cost_vs_thresholds",
    ),
    "alpha": ("sweep_accuracy_gap_vs_alpha",),
}
# Figures of clients that come and go (equitable_fl.report.figures.availability), drawn only for a config
# in which some variant sets a dynamic clients.availability.
AVAILABILITY_FIGURES = ("availability_participation", "availability_vs_dropout_rate")
FIGURE_FORMATS = ("png", "pdf")


def _number(k: int | str) -> int | None:
    """A phase number, or None for the ``{k}`` wildcard of a rule pattern."""
    return int(k) if str(k).isdigit() else None


@dataclass(frozen=True)
class Layout:
    """Paths under one results folder; ``experiment`` resolves which outputs a variant shares."""

    root: str
    experiment: Experiment | None = None

    # -- which variant segment a step's path carries -----------------------------------------------
    def _v(self, cell: GridCell, step: str, k: int | None = None) -> str:
        if cell is PATTERN or cell.variant == "{vdir}":
            return "{vdir}"
        if not cell.variant or self.experiment is None:
            return variant_dir(cell.variant)
        return variant_dir(self.experiment.for_variant(cell.variant).step_variant(step, k))

    def _base(self, cell: GridCell, step: str, k: int | None = None) -> str:
        return f"{self.root}/{cell.dataset}/{self._v(cell, step, k)}seed{cell.seed}"

    # -- data ----------------------------------------------------------------------------------------
    def data_dir(self, dataset: str) -> str:
        return f"{self.root}/data/{dataset}"

    def fetched(self, dataset: str) -> str:
        return f"{self.data_dir(dataset)}/fetched.json"

    def prepared(self, dataset: str) -> str:
        return f"{self.data_dir(dataset)}/prepared.npz"

    def meta(self, dataset: str) -> str:
        return f"{self.data_dir(dataset)}/meta.json"

    # -- clients and partition -----------------------------------------------------------------------
    def clients(self, cell: GridCell) -> str:
        return f"{self.root}/clients/{self._v(cell, 'clients')}seed{cell.seed}/clients.json"

    def partition(self, cell: GridCell, ext: str = "json") -> str:
        return f"{self._base(cell, 'partition')}/partition.{ext}"

    # -- training ------------------------------------------------------------------------------------
    def init_dir(self, cell: GridCell) -> str:
        return f"{self.root}/{cell.dataset}/seed{cell.seed}/init"

    def phase_dir(self, cell: GridCell, k: int | str) -> str:
        """Phase 1 is shared by every pruning rate; later phases belong to one rate (``k`` may be "{k}")."""
        if str(k) == "1":
            return f"{self._base(cell, 'phase', 1)}/phase1"
        return f"{self._base(cell, 'phase', _number(k))}/rate{cell.rate}/phase{k}"

    def prune_dir(self, cell: GridCell, k: int | str) -> str:
        """The ticket made after phase ``k``."""
        return f"{self._base(cell, 'prune', _number(k))}/rate{cell.rate}/prune{k}"

    def vanilla_dir(self, cell: GridCell) -> str:
        return f"{self._base(cell, 'vanilla')}/vanilla"

    def ticket_start(self, cell: GridCell, k: int) -> dict[str, str]:
        """What phase ``k`` starts from: weights, mask and model card of θ0 (phase 1) or of prune ``k-1``,
        and θ0's card (``dense_card``), the dense model every ticket is measured against."""
        init = self.init_dir(cell)
        dense_card = f"{init}/{MODEL_CARD}"
        if int(k) == 1:
            return {
                "weights": f"{init}/{WEIGHTS}",
                "mask": f"{init}/{MASK}",
                "card": dense_card,
                "dense_card": dense_card,
            }
        d = self.prune_dir(cell, int(k) - 1)
        return {
            "weights": f"{d}/{TICKET}",
            "mask": f"{d}/{MASK}",
            "card": f"{d}/{MODEL_CARD}",
            "dense_card": dense_card,
        }

    # -- per cell --------------------------------------------------------------------------------------
    def cell_dir(self, cell: GridCell) -> str:
        return f"{self._base(cell, 'summary')}/rate{cell.rate}"

    def summary(self, cell: GridCell) -> str:
        return f"{self.cell_dir(cell)}/summary.json"

    def measured(self, cell: GridCell) -> str:
        """The cell's side-by-side timing of θ0's dense model against the final ticket."""
        return f"{self.cell_dir(cell)}/measured.json"

    def cell_figure(self, cell: GridCell, name: str, ext: str = "png") -> str:
        return f"{self.cell_dir(cell)}/figures/{name}.{ext}"

    def phase_files(self, cell: GridCell, name: str) -> list[str]:
        n = self.experiment.num_phases if self.experiment else 0
        return [f"{self.phase_dir(cell, k)}/{name}" for k in range(1, n + 1)]

    # -- over the grid ---------------------------------------------------------------------------------
    def table(self, name: str) -> str:
        return f"{self.root}/tables/{name}"

    def figure(self, name: str, ext: str = "png") -> str:
        return f"{self.root}/figures/{name}.{ext}"

    def mlflow_dir(self) -> str:
        return f"{self.root}/mlflow"

    def logged(self) -> str:
        return f"{self.mlflow_dir()}/logged.json"

    def log(self, name: str) -> str:
        return f"{self.root}/logs/{name}.log"
