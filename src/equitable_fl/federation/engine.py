"""Engines execute a phase's strategy; they hold no policy. Chosen by ``compute.engine``.

The in-process engine simulates every client inside the training job, one after the other, with one
reused model: it is today's fastest path on a CPU (``shared/notes/performance.md``). Its loop is the
strategy's protocol, the same one a Flower deployment runs:

    for each round r:
        tasks   = strategy.configure_round(r, strategy.available(r))      # ServerApp: configure_train
        updates = [train_client(model, state, …, task) for task in tasks]  # ClientApp: @app.train
        state   = strategy.aggregate(updates, state)                       # ServerApp: aggregate_train
        acc     = evaluate(model, state, …)                                # ServerApp: evaluate_fn
        record  = strategy.account(r, tasks, updates, acc, …)

With ``workers`` ≥ 2 (``compute.workers``, resolved by the stage) the cohort is trained in that many
forked processes of one thread each (:class:`~equitable_fl.federation.workers.WorkerPool`), started
when the phase starts and stopped when it ends or fails; aggregation, evaluation, accounting and
checkpoints stay here, so the results are those of the serial engine at one thread, bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from equitable_fl.data.tensors import TensorData
from equitable_fl.device import synchronize
from equitable_fl.federation.client import (
    ClientTask,
    ClientUpdate,
    MaskedParams,
    State,
    evaluate,
    train_client,
)
from equitable_fl.federation.execution import REFERENCE, Execution
from equitable_fl.federation.protocol import Engine, PhaseRun
from equitable_fl.federation.resume import RoundCheckpoint
from equitable_fl.federation.strategy import EquitableStrategy
from equitable_fl.federation.workers import WorkerPool
from equitable_fl.progress import LOGGER_NAME
from equitable_fl.records import RoundRecord

CohortTrainer = Callable[[State, Sequence[ClientTask]], list[ClientUpdate]]


class InProcessEngine:
    """Every client of the cohort trained in this job: in cohort order on one reused model, or in
    ``workers`` (≥ 2) worker processes of one thread each; ``worker_pids`` are the last run's workers."""

    def __init__(self, execution: Execution = REFERENCE, workers: int = 0) -> None:
        self.execution = execution
        self.workers = int(workers)
        self.worker_pids: tuple[int, ...] = ()

    @contextlib.contextmanager
    def _cohort_trainer(
        self,
        model: nn.Module,
        masked: MaskedParams,
        data: TensorData,
        client_indices: Sequence[torch.Tensor],
        template: State,
    ) -> Iterator[CohortTrainer]:
        """How a round's tasks are trained: here, one after the other, or by a pool alive meanwhile."""
        ex = self.execution
        self.worker_pids = ()
        if self.workers < 2:
            yield lambda state, tasks: [
                train_client(model, state, masked, data, client_indices[t.client], t, ex) for t in tasks
            ]
            return
        with WorkerPool(self.workers, model, masked, data, client_indices, template, ex) as pool:
            self.worker_pids = pool.pids
            yield pool.train

    def run(
        self,
        strategy: EquitableStrategy,
        model: nn.Module,
        start_state: Mapping[str, torch.Tensor],
        data: TensorData,
        client_indices: Sequence[torch.Tensor],
        on_round: Callable[[RoundRecord], None] | None = None,
        checkpoint: RoundCheckpoint | None = None,
    ) -> PhaseRun:
        strategy.check_runnable()
        plan = strategy.plan
        device = next(model.parameters()).device
        ex = self.execution
        model = ex.prepare(model)
        masked = MaskedParams(model, strategy.mask)
        state: State = {k: v.detach().to(device).clone() for k, v in start_state.items()}
        history: list[RoundRecord] = []
        snapshots: dict[int, State] = {}
        if 0 in plan.snapshot_rounds:
            snapshots[0] = {k: v.clone() for k, v in state.items()}
        first = 1
        resumed = checkpoint.load(state) if checkpoint is not None else None
        if resumed is not None:
            state = {k: v.to(device) for k, v in resumed.state.items()}
            history, snapshots = resumed.history, resumed.snapshots
            first = resumed.round + 1
            logging.getLogger(LOGGER_NAME).info("%s: resuming after round %d", plan.label, resumed.round)
        with self._cohort_trainer(model, masked, data, client_indices, state) as train_cohort:
            for rnd in range(first, plan.rounds + 1):
                tasks = strategy.configure_round(rnd, strategy.available(rnd))
                synchronize(device)
                t0 = time.perf_counter()
                updates = train_cohort(state, tasks)
                synchronize(device)
                train_seconds = time.perf_counter() - t0
                state = strategy.aggregate(updates, state)
                accuracy, loss = evaluate(model, state, data, plan.settings.eval_batch_size, ex)
                record = strategy.account(rnd, tasks, updates, accuracy, loss, train_seconds)
                history.append(record)
                if rnd in plan.snapshot_rounds:
                    snapshots[rnd] = {k: v.clone() for k, v in state.items()}
                if checkpoint is not None and checkpoint.due(rnd, plan.rounds):
                    checkpoint.save(rnd, state, history, snapshots)
                if on_round is not None:
                    on_round(record)
        return PhaseRun(state, history, snapshots)


def _flower(execution: Execution, **options: Any) -> Engine:
    # imported on use; it drives Flower through its command line and never imports flwr itself
    from equitable_fl.federation.flower.engine import FlowerEngine

    return FlowerEngine(execution, **options)


ENGINES: dict[str, Callable[..., Engine]] = {"inprocess": InProcessEngine, "flower": _flower}


def get_engine(name: str, execution: Execution = REFERENCE, **options: Any) -> Engine:
    """The engine ``name`` (``compute.engine``) with its own ``options`` (flower: model_spec, settings)."""
    if name not in ENGINES:
        raise ValueError(f"compute.engine {name!r} is not available; choose one of {sorted(ENGINES)}")
    return ENGINES[name](execution, **options)
