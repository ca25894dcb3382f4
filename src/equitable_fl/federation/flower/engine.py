"""``compute.engine: flower``: a training job runs its phase as one Flower run and writes its outputs.

What runs where:

- the training job (a Snakemake job on the submit host) builds the phase's plan and strategy exactly as
  for the in-process engine, then this engine writes the job folder (:mod:`.job`) and the app
  (:mod:`.launch`), runs ``flwr run`` against the SuperLink connection ``compute.flower.connection``,
  waits for the run to finish and reads its result; the stage then writes weights, mask, metrics,
  participation, timing and params.json as it does for every engine;
- the ServerApp (:mod:`.server_app`) runs where the SuperLink runs and must read and write the job
  folder (``compute.flower.workdir``): run the SuperLink on the submit host or on a shared filesystem;
- the ClientApps (:mod:`.client_app`) run on the SuperNodes, each training on its own data with its own
  resources (:mod:`.node`); with ``compute.flower.runtime: simulation`` on Flower's simulated nodes.

Downloads, data preparation and MLflow logging stay on the submit host: only the phases' rounds go
through Flower.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from equitable_fl.config.validate import schema, validated
from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.client import ClientTask, State
from equitable_fl.federation.execution import REFERENCE, Execution
from equitable_fl.federation.flower import launch
from equitable_fl.federation.flower.job import Job, Result, read_result, write_job
from equitable_fl.federation.protocol import PhaseRun
from equitable_fl.federation.strategy import EquitableStrategy
from equitable_fl.modelspec import ModelSpec
from equitable_fl.progress import LOGGER_NAME
from equitable_fl.records import RoundRecord
from equitable_fl.resources import ClientProfile


@dataclass(frozen=True)
class FlowerSettings:
    """Config section ``compute.flower`` (defaults in the schema)."""

    connection: str | None
    runtime: str
    wait_for_nodes_seconds: float
    round_timeout_seconds: float
    workdir: str | None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> FlowerSettings:
        sub = schema()["properties"]["compute"]["properties"]["flower"]
        values = validated(cfg or {}, sub, where="compute.flower")
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})

    def run_timeout(self, rounds: int) -> float:
        """How long a whole run may take: the wait for nodes, the set-up query and every round."""
        return self.wait_for_nodes_seconds + (rounds + 1) * self.round_timeout_seconds + 120.0


class FlowerEngine:
    """Runs a phase's strategy on a Flower federation; ``model_spec`` rebuilds the model on the nodes."""

    def __init__(
        self,
        execution: Execution = REFERENCE,
        model_spec: ModelSpec | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.execution = execution
        self.model_spec = model_spec
        self.settings = FlowerSettings.from_config(settings)

    def run(
        self,
        strategy: EquitableStrategy,
        model: nn.Module,
        start_state: State,
        data: TensorData,
        client_indices: Sequence[torch.Tensor],
        on_round: Callable[[RoundRecord], None] | None = None,
        checkpoint: object = None,  # a Flower run is not resumed mid-phase: a rerun starts it again
    ) -> PhaseRun:
        strategy.check_runnable()
        settings = self.settings
        if settings.connection is None:
            raise ValueError(
                "compute.engine flower needs compute.flower.connection: the name of a SuperLink "
                "connection in $FLWR_HOME/config.toml (README 'Run on real devices with Flower')"
            )
        if self.model_spec is None:
            raise ValueError("the flower engine rebuilds the model on every node: pass model_spec")
        launch.flwr_executable()  # fails now, with the fix, if Flower is not installed
        log = logging.getLogger(LOGGER_NAME)
        plan = strategy.plan
        job = Job(
            plan=plan,
            profiles=list(strategy.profiles),
            client_samples=list(strategy.client_samples),
            model_spec=self.model_spec,
            model_cost=strategy.model_cost,
            dense_cost=strategy.dense_cost,
            execution=self.execution,
            threads=torch.get_num_threads(),
            runtime=settings.runtime,
            wait_for_nodes_seconds=settings.wait_for_nodes_seconds,
            round_timeout_seconds=settings.round_timeout_seconds,
            dynamics=None if strategy.hooks.dynamics is None else strategy.hooks.dynamics.to_json(),
        )
        simulated = f"num-supernodes={len(strategy.profiles)}" if settings.runtime == "simulation" else None
        with tempfile.TemporaryDirectory(prefix="equitable-fl-flower-", dir=settings.workdir) as tmp:
            folder = Path(tmp)
            cpu = {k: v.detach().cpu() for k, v in start_state.items()}
            write_job(folder, job, cpu, strategy.mask, data, [ix.cpu() for ix in client_indices])
            app = launch.write_app(folder / "app")
            run_id = launch.run_app(
                app, settings.connection, folder, simulated, settings.run_timeout(plan.rounds)
            )
            if not (folder / "result.json").is_file():  # the ServerApp writes it last, on success only
                status = launch.run_status(settings.connection, run_id)
                raise launch.FlowerRunError(
                    f"{plan.label}: Flower run {run_id} ended {status.status!r} {status.details}; "
                    "its log is above (lines 'flower | …')"
                )
            log.info("%s: Flower run %d finished", plan.label, run_id)
            reference = {k: v.cpu() for k, v in model.state_dict().items()}
            result, final, snapshots = read_result(folder, reference, plan.snapshot_rounds)
        for failure in result.failures:
            log.warning("%s: %s", plan.label, failure)
        adopt_fleet(strategy, result.profiles)
        self._fill_clock(strategy, result)
        device = next(model.parameters()).device
        for record in result.history:
            if on_round is not None:
                on_round(record)
        return PhaseRun(_to(final, device), result.history, {r: _to(s, device) for r, s in snapshots.items()})

    @staticmethod
    def _fill_clock(strategy: EquitableStrategy, result: Result) -> None:
        """Simulated round times, from the job's clock hook (the ServerApp has no hooks)."""
        round_time = strategy.hooks.round_time
        if round_time is None:
            return
        settings = strategy.plan.settings
        for record, tasks in zip(result.history, result.tasks, strict=True):
            record.simulated_seconds = float(
                round_time(record.round, [ClientTask(c, record.round, s, settings) for c, s in tasks])
            )


def adopt_fleet(strategy: EquitableStrategy, reported: Sequence[ClientProfile]) -> None:
    """Make the job's strategy see the fleet the nodes reported (their node configs), as the ServerApp did.

    The participation record and eligible count the stage writes then match who could really train.
    """
    if list(reported) == list(strategy.profiles):
        return
    changed = sorted(p.client for p, q in zip(reported, strategy.profiles, strict=True) if p != q)
    logging.getLogger(LOGGER_NAME).info(
        "%s: the node configs of clients %s differ from clients.json; the phase used the node configs",
        strategy.plan.label,
        changed,
    )
    seen = dataclasses.replace(strategy, profiles=list(reported))
    strategy.profiles, strategy.participation = seen.profiles, seen.participation


def _to(state: State, device: torch.device) -> State:
    return {k: v.to(device) for k, v in state.items()}
