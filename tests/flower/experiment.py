"""A tiny three-phase Equitable-FL experiment, run with the pipeline's own stage functions on files.

The cell (prepared data, partition, client profiles, θ0) is made by the pipeline's steps; then phase 1,
prune, phase 2, prune, phase 3 run with ``train.phase`` and ``prune.prune_and_rewind`` exactly as the
workflow's scripts call them, on either engine.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl.config import Experiment
from equitable_fl.data import mnist_sample
from equitable_fl.data.prepared import PreparedDataset, save_prepared, stratified_split
from equitable_fl.stages import clients, prune, train

SEED = 3
RATE = 0.5
PHASES = 3


# One client per tier (at this seed), each affording the dense model (resources 1.2-1.6 × its needs):
# a phase's eligible clients are exactly the tiers it admits.
FLEET = {"count": 3, "partition": {"method": "iid"}, "tiers": {"count": 3, "method": "quantile"}}
AFFORD_DENSE = {"distribution": "uniform", "low": 1.2, "high": 1.6, "jitter": 0.1}
TINY_CNN = {"arch": "cnn28", "channels": [4, 8], "hidden": 16}


def experiment(rounds: list[int], availability: dict[str, Any] | None = None) -> Experiment:
    """The tiny experiment with ``rounds[k-1]`` rounds in phase k (phase 1 rewinds to θ0), on a static
    fleet or with ``clients.availability``."""
    cfg: dict[str, Any] = {"pruning": {"rewind_round": 0}, "phases": [{"rounds": r} for r in rounds]}
    cfg["training"] = {"local_epochs": 1, "batch_size": 16, "eval_batch_size": 100}
    cfg["clients"] = {**FLEET, "resources": AFFORD_DENSE}
    if availability is not None:
        cfg["clients"]["availability"] = availability
    cfg["datasets"] = {"mnist-sample": {"model": TINY_CNN}}
    cfg["grid"] = {"datasets": ["mnist-sample"], "pruning_rates": [RATE], "seeds": [SEED]}
    return Experiment.load(cfg)


@dataclass(frozen=True)
class Cell:
    root: Path

    def path(self, name: str) -> str:
        return str(self.root / name)


def make_cell(root: Path, exp: Experiment) -> Cell:
    """300 training and 100 test digits of mnist-sample, split over the clients; θ0 of the tiny CNN."""
    cell = Cell(root)
    images, labels = mnist_sample.load_raw()
    pick = np.random.default_rng(SEED).permutation(len(labels))[:400]
    fit, held_out = stratified_split(labels[pick], 100, seed=SEED)
    splits = {"train": pick[fit], "test": pick[held_out]}
    arrays = {
        f"{xy}_{split}": (images if xy == "x" else labels)[ix] for split, ix in splits.items() for xy in "xy"
    }
    dataset = PreparedDataset(name="mnist-sample", class_names=mnist_sample.CLASS_NAMES, **arrays)
    save_prepared(dataset, cell.path("prepared.npz"), cell.path("meta.json"))
    clients.partition(
        cell.path("prepared.npz"),
        cell.path("meta.json"),
        SEED,
        exp.partition_slice(),
        cell.path("partition.json"),
        cell.path("partition.csv"),
    )
    clients.profiles(SEED, exp.clients_slice(), cell.path("clients.json"))
    names = ("weights.safetensors", "model.json", "mask.safetensors")
    train.init(
        cell.path("meta.json"),
        SEED,
        exp.model_config("mnist-sample"),
        *(cell.path(f"init/{n}") for n in names),
    )
    return cell


def node_configs(cell: Cell, count: int) -> list[str]:
    """Each SuperNode's ``--node-config``, printed by the project's command for it."""
    files = ["--clients", "clients.json", "--partition", "partition.json"]
    files += ["--prepared", "prepared.npz", "--meta", "meta.json"]
    return [
        subprocess.run(
            [
                sys.executable,
                "-m",
                "equitable_fl.federation.flower",
                "node-config",
                *files,
                "--client",
                str(c),
            ],
            cwd=cell.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for c in range(count)
    ]


def run_phases(
    cell: Cell, exp: Experiment, out: Path, engine: str, flower: dict[str, Any] | None = None
) -> Path:
    """Phase 1, prune, phase 2, prune, phase 3 into ``out/phase<k>`` (and ``out/prune<k>``)."""
    weights, mask, card = cell.path("init/weights.safetensors"), cell.path("init/mask.safetensors"), None
    for k in range(1, PHASES + 1):
        folder = out / f"phase{k}"
        names = {"weights": "weights.safetensors", "metrics": "metrics.json", "mask": "mask.safetensors"}
        names |= {"participation": "participation.json", "timing": "timing.json", "params": "params.json"}
        outputs = train.TrainingOutputs(
            **{key: str(folder / n) for key, n in names.items()},
            rewind=str(folder / "rewind.safetensors") if k == 1 else None,
        )
        train.phase(
            npz=cell.path("prepared.npz"),
            meta=cell.path("meta.json"),
            partition_json=cell.path("partition.json"),
            clients_json=cell.path("clients.json"),
            card=card or cell.path("init/model.json"),
            dense_card=cell.path("init/model.json"),
            start_weights=weights,
            start_mask=mask,
            params=exp.phase_slice(k, SEED),
            threads=1,
            out=outputs,
            device="cpu",
            engine=engine,
            execution={"precision": "fp32", "channels_last": False},
            flower=flower,
        )
        if k == PHASES:
            return out
        ticket = out / f"prune{k}"
        prune.prune_and_rewind(
            trained_weights=outputs.weights,
            trained_mask=outputs.mask,
            trained_card=card or cell.path("init/model.json"),
            rewind_weights=str(out / "phase1" / "rewind.safetensors"),
            params=exp.prune_slice(RATE),
            out_mask=str(ticket / "mask.safetensors"),
            out_ticket=str(ticket / "weights.safetensors"),
            out_card=str(ticket / "model.json"),
            out_report=str(ticket / "report.json"),
            out_params=str(ticket / "params.json"),
        )
        weights, mask, card = (
            str(ticket / n) for n in ("weights.safetensors", "mask.safetensors", "model.json")
        )
    return out
