"""The files between a training job and the ServerApp of its Flower run: a job folder in, a result out.

A Snakemake training job cannot hand Python objects to a ``ServerApp``, which Flower starts in a process
of its own (``flwr-serverapp``, spawned by the SuperLink's SuperExec). The job's engine therefore
writes the phase into a folder that the ServerApp reads (its path is the run config value ``job``):

- ``job.json``: the :class:`PhasePlan`, the fleet as the job knows it (client profiles and sample counts),
  the model spec, the phase and dense model costs, execution (precision, layout), threads and, for a
  dynamic fleet (``clients.availability``), every round's conditions and the simulated clock, so the
  ServerApp's strategy sees who is online, what each affords and who leaves exactly as the job's does;
- ``start.safetensors`` (the phase's starting weights), ``mask.safetensors`` (its ticket's mask);
- ``data.safetensors``: the test split and normaliser for the server's evaluation; for the simulation
  runtime also the training split and every client's sample indices (simulated nodes have no data of
  their own; real SuperNodes load theirs from the files their node config names).

The ServerApp writes back ``result.json`` (rounds, tasks, the fleet the nodes reported, failures),
``final.safetensors`` and ``snapshot-<round>.safetensors``. Every file is written atomically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from equitable_fl import checkpoint, io
from equitable_fl.config import TrainSettings
from equitable_fl.cost import ModelCost
from equitable_fl.data.tensors import Normaliser, TensorData
from equitable_fl.dynamics.fleet import FleetDynamics
from equitable_fl.federation.client import State
from equitable_fl.federation.execution import Execution
from equitable_fl.federation.strategy import EquitableStrategy, PhasePlan, StrategyHooks
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec
from equitable_fl.records import RoundRecord
from equitable_fl.resources import ClientProfile, profiles_from_json

RUNTIMES = ("deployment", "simulation")
_DATA = "flower-data"


@dataclass(frozen=True)
class Job:
    """One phase as a Flower run executes it (``job.json`` plus the tensors beside it)."""

    plan: PhasePlan
    profiles: list[ClientProfile]
    client_samples: list[int]
    model_spec: ModelSpec
    model_cost: ModelCost
    dense_cost: ModelCost
    execution: Execution
    threads: int
    runtime: str
    wait_for_nodes_seconds: float
    round_timeout_seconds: float
    dynamics: dict[str, Any] | None = None  # FleetDynamics.to_json(); None: a static fleet

    def strategy(
        self, mask: Mapping[str, torch.Tensor], profiles: Sequence[ClientProfile]
    ) -> EquitableStrategy:
        """The phase's policy over ``profiles`` (the fleet as the connected nodes reported it)."""
        return EquitableStrategy(
            plan=self.plan,
            profiles=list(profiles),
            client_samples=self.client_samples,
            mask=mask,
            model_cost=self.model_cost,
            dense_cost=self.dense_cost,
            hooks=StrategyHooks(
                dynamics=None if self.dynamics is None else FleetDynamics.from_json(self.dynamics, profiles)
            ),
        )

    def to_json(self) -> dict[str, Any]:
        plan = dataclasses.asdict(self.plan)
        plan["settings"] = self.plan.settings.as_dict()
        return {
            "plan": plan,
            "profiles": [p.as_dict() for p in self.profiles],
            "client_samples": list(self.client_samples),
            "model_spec": self.model_spec.as_dict(),
            "model_cost": self.model_cost.as_dict(),
            "dense_cost": self.dense_cost.as_dict(),
            "execution": self.execution.describe(),
            "threads": self.threads,
            "runtime": self.runtime,
            "wait_for_nodes_seconds": self.wait_for_nodes_seconds,
            "round_timeout_seconds": self.round_timeout_seconds,
            "dynamics": self.dynamics,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Job:
        plan = dict(d["plan"])
        tiers = plan["admitted_tiers"]
        return cls(
            plan=PhasePlan(
                **{
                    **plan,
                    "settings": TrainSettings.from_config(plan["settings"]),
                    "admitted_tiers": None if tiers is None else tuple(tiers),
                    "snapshot_rounds": tuple(plan["snapshot_rounds"]),
                }
            ),
            profiles=profiles_from_json(d["profiles"]),
            client_samples=[int(n) for n in d["client_samples"]],
            model_spec=ModelSpec.from_dict(d["model_spec"]),
            model_cost=ModelCost(**d["model_cost"]),
            dense_cost=ModelCost(**d["dense_cost"]),
            execution=Execution(d["execution"]["precision"], bool(d["execution"]["channels_last"])),
            threads=int(d["threads"]),
            runtime=str(d["runtime"]),
            wait_for_nodes_seconds=float(d["wait_for_nodes_seconds"]),
            round_timeout_seconds=float(d["round_timeout_seconds"]),
            dynamics=d.get("dynamics"),
        )


def write_job(
    folder: Path,
    job: Job,
    start: Mapping[str, torch.Tensor],
    mask: Mapping[str, torch.Tensor],
    data: TensorData,
    client_indices: Sequence[torch.Tensor],
) -> None:
    tensors = {
        "x_test": data.x_test,
        "y_test": data.y_test,
        "mean": data.normalise.mean,
        "std": data.normalise.std,
        "num_classes": torch.tensor(data.num_classes),
    }
    if job.runtime == "simulation":
        tensors |= {"x_train": data.x_train, "y_train": data.y_train}
        tensors |= {f"client.{c}": ix for c, ix in enumerate(client_indices)}
    checkpoint.save_tensors(folder / "data.safetensors", tensors, kind=_DATA)
    checkpoint.save_state(folder / "start.safetensors", start)
    Mask(mask).save(folder / "mask.safetensors")
    io.write_json(folder / "job.json", job.to_json())


def read_job(folder: Path) -> tuple[Job, State, Mask]:
    job = Job.from_json(io.read_json(folder / "job.json"))
    start = checkpoint.load_state(folder / "start.safetensors", job.model_spec.build().state_dict())
    return job, start, Mask.load(folder / "mask.safetensors")


def read_data(folder: Path, client: int | None = None) -> tuple[TensorData, torch.Tensor | None]:
    """The job's data: the test split (server), plus one simulated client's training samples."""
    t = checkpoint.load_tensors(folder / "data.safetensors", kind=_DATA)
    empty = torch.empty(0, dtype=torch.uint8)
    if client is not None and f"client.{client}" not in t:
        raise ValueError(
            f"{folder}: the job carries no training data for client {client}: a deployment SuperNode "
            "names its own data in its node config (prepared, meta, partition; README 'Run on real "
            "devices with Flower')"
        )
    data = TensorData(
        x_train=t.get("x_train", empty),
        y_train=t.get("y_train", empty),
        x_test=t["x_test"],
        y_test=t["y_test"],
        normalise=Normaliser(t["mean"], t["std"]),
        num_classes=int(t["num_classes"]),
    )
    return data, None if client is None else t[f"client.{client}"]


# -- result ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    """What the ServerApp hands back: the phase's rounds and the fleet it saw."""

    history: list[RoundRecord]
    tasks: list[list[tuple[int, int]]]  # per round: (client, seed) of every task sent
    profiles: list[ClientProfile]
    nodes: dict[int, int]  # client → node id
    failures: list[str]
    setup_bytes: int  # the query round's set-up messages (mask, spec), outside the rounds' bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "history": [{**r.metrics(), "train_seconds": r.train_seconds} for r in self.history],
            "tasks": [[list(t) for t in ts] for ts in self.tasks],
            "profiles": [p.as_dict() for p in self.profiles],
            "nodes": {str(c): str(n) for c, n in self.nodes.items()},
            "failures": self.failures,
            "setup_bytes": self.setup_bytes,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Result:
        return cls(
            history=[RoundRecord.from_json(r) for r in d["history"]],
            tasks=[[(int(c), int(s)) for c, s in ts] for ts in d["tasks"]],
            profiles=profiles_from_json(d["profiles"]),
            nodes={int(c): int(n) for c, n in d["nodes"].items()},
            failures=list(d["failures"]),
            setup_bytes=int(d["setup_bytes"]),
        )


def write_result(folder: Path, result: Result, final: State, snapshots: Mapping[int, State]) -> None:
    for rnd, state in snapshots.items():
        checkpoint.save_state(folder / f"snapshot-{rnd}.safetensors", state)
    checkpoint.save_state(folder / "final.safetensors", final)
    io.write_json(folder / "result.json", result.to_json())  # last: its presence means the run finished


def read_result(
    folder: Path, reference: Mapping[str, torch.Tensor], snapshot_rounds: Sequence[int]
) -> tuple[Result, State, dict[int, State]]:
    result = Result.from_json(io.read_json(folder / "result.json"))
    final = checkpoint.load_state(folder / "final.safetensors", reference)
    snapshots = {
        r: checkpoint.load_state(folder / f"snapshot-{r}.safetensors", reference) for r in snapshot_rounds
    }
    return result, final, snapshots
