"""Steps that create and train models: θ0, one Equitable-FL phase, and the vanilla FL baseline.

A training stage only loads files, builds the phase plan and its strategy, picks the engine
(``compute.engine``) and writes results; the policy is in :mod:`equitable_fl.federation.strategy`.
Every step writes the config slice it ran with (``params.json``) beside its outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from equitable_fl import checkpoint, cost, io
from equitable_fl.allocator import retain_freed_memory
from equitable_fl.config import TrainSettings, slice_json
from equitable_fl.config.workers import WORKERS_KEY, resolve_workers
from equitable_fl.data.prepared import load_prepared
from equitable_fl.data.tensors import TensorData
from equitable_fl.device import resolve_device
from equitable_fl.dynamics.build import fleet_dynamics
from equitable_fl.federation.engine import PhaseRun, get_engine
from equitable_fl.federation.execution import Execution
from equitable_fl.federation.resume import RoundCheckpoint, resume_key
from equitable_fl.federation.strategy import VANILLA_STREAM, EquitableStrategy, PhasePlan, StrategyHooks
from equitable_fl.fleet_time import RoundClock
from equitable_fl.hardware import capabilities
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, measure_cost, model_card
from equitable_fl.partition import from_json
from equitable_fl.progress import LOGGER_NAME, RoundProgress
from equitable_fl.records import PhaseRecord, TimingRecord
from equitable_fl.resources import ClientProfile, profiles_from_json


def init(
    meta: str, seed: int, model_cfg: dict[str, Any], out_weights: str, out_card: str, out_mask: str
) -> None:
    """Draw θ0 for (dataset, seed) and write the model card and the all-ones starting mask.

    Every conv and linear weight is in the mask; the pruning settings decide how fast each shrinks
    (``output_rate_factor: 0`` keeps the output layer dense).
    """
    info = io.read_json(meta)
    spec = ModelSpec.from_config(model_cfg, tuple(info["input_shape"]), len(info["class_names"]))
    model = spec.init(int(seed))
    state = model.state_dict()
    mask = Mask.ones_like(state, spec.prunable(model))
    checkpoint.save_state(out_weights, state)
    mask.save(out_mask)
    io.write_json(out_card, model_card(spec, model, mask))


@dataclass
class Fleet:
    """The simulated clients a training step sees: their data shards and their resource profiles."""

    data: TensorData
    client_indices: list[torch.Tensor]
    profiles: list[ClientProfile]


def load_fleet(npz: str, meta: str, partition_json: str, clients_json: str, where: torch.device) -> Fleet:
    data = TensorData.from_prepared(load_prepared(npz, meta), where)
    parts = from_json(io.read_json(partition_json)["clients"])
    profiles = profiles_from_json(io.read_json(clients_json)["clients"])
    if len(parts) != len(profiles):
        raise ValueError(
            f"{partition_json} has {len(parts)} clients but {clients_json} has {len(profiles)}; "
            "both come from clients.count: rerun the partition and clients steps"
        )
    return Fleet(data, [torch.from_numpy(p).to(where) for p in parts], profiles)


@dataclass
class TrainingOutputs:
    """Where a training step writes; ``mask`` and ``rewind`` only for Equitable-FL phases."""

    weights: str
    metrics: str
    participation: str
    timing: str
    params: str
    mask: str | None = None
    rewind: str | None = None


def _run(
    plan: PhasePlan,
    *,
    fleet: Fleet,
    spec: ModelSpec,
    dense_spec: ModelSpec,
    start: dict[str, torch.Tensor],
    mask: Mask,
    engine: str,
    execution: Execution,
    where: torch.device,
    checkpoint: RoundCheckpoint | None = None,
    phase: int | None = None,
    participation_mode: str | None = None,
    flower: dict[str, Any] | None = None,
    workers: int = 0,
    availability: dict[str, Any] | None = None,
) -> tuple[PhaseRun, PhaseRecord, dict[str, Any]]:
    """Build the strategy for ``plan`` and run it on the engine; return the run and its records."""
    model = spec.build().to(where)
    mask.check_fits(model.state_dict())
    # the dense model of θ0's shape: budgets, sizes and FLOP speed-ups are relative to it
    dense = model if dense_spec == spec else dense_spec.build().to(where)
    dense_ref = dense.state_dict()
    model_cost, size = measure_cost(model, spec, start, mask, dense)
    dense_cost, _ = measure_cost(
        dense, dense_spec, dense_ref, Mask.ones_like(dense_ref, dense_spec.prunable(dense))
    )
    # the simulated clock (every round's simulated_seconds): dense kernels run every weight the model holds
    clock = RoundClock.for_fleet(
        [p.device for p in fleet.profiles],
        [len(ix) for ix in fleet.client_indices],
        payload_bytes=int(model_cost.storage_bytes),
        model_flops_per_sample=cost.train_flops(cost.layer_costs(model, spec.input_shape)),
        surviving_flops_per_sample=model_cost.train_flops_per_sample,
    )
    # clients.availability: who is online, with what resources, and who leaves mid-round (None: static)
    offset = plan.global_round_offset
    dynamics = fleet_dynamics(availability, plan.seed, fleet.profiles, clock, offset, plan.rounds)
    round_time = clock if dynamics is None or clock is None else dynamics.round_time(offset)
    strategy = EquitableStrategy(
        plan=plan,
        profiles=fleet.profiles,
        client_samples=[len(ix) for ix in fleet.client_indices],
        mask=mask,
        model_cost=model_cost,
        dense_cost=dense_cost,
        hooks=StrategyHooks(round_time=round_time, dynamics=dynamics),
    )
    logging.getLogger(LOGGER_NAME).info(
        "%s: %d rounds on the %s engine, sparsity %.4f, %d of %d clients eligible",
        plan.label,
        plan.rounds,
        engine,
        size.sparsity,
        len(strategy.eligible),
        len(fleet.profiles),
    )
    # the Flower engine rebuilds the model on every node (its spec) and reads compute.flower
    options = {"model_spec": spec, "settings": flower} if engine == "flower" else {"workers": workers}
    with RoundProgress(plan.label, plan.rounds) as progress:
        run = get_engine(engine, execution, **options).run(
            strategy,
            model,
            start,
            fleet.data,
            fleet.client_indices,
            on_round=lambda r: progress.round_done(r.round, len(r.clients), r.accuracy, r.loss),
            checkpoint=checkpoint,
        )
    record = PhaseRecord.from_rounds(
        label=plan.label,
        offset=plan.global_round_offset,
        admitted_tiers=None if plan.admitted_tiers is None else list(plan.admitted_tiers),
        eligible_clients=len(strategy.eligible),
        size=size,
        history=run.history,
        phase=phase,
        participation=participation_mode,
    )
    return run, record, strategy.took_part(run.history)


def _write(
    out: TrainingOutputs,
    run: PhaseRun,
    record: PhaseRecord,
    participation: dict[str, Any],
    params: dict,
    threads: int,
    execution: Execution,
    workers: int = 0,
) -> None:
    checkpoint.save_state(out.weights, run.state)
    io.write_json(out.participation, participation)
    how = {**execution.describe(), "workers": workers}
    timing = TimingRecord.from_rounds(run.history, threads, capabilities().line(), how)
    io.write_json(out.timing, timing.to_json())
    io.write_json(out.metrics, record.to_json())
    io.write_text(out.params, slice_json(params))


def _round_checkpoint(
    out: TrainingOutputs, every: int, params: dict[str, Any], ex: Execution, n_workers: int, *inputs: str
) -> RoundCheckpoint:
    """Where a training job keeps its round checkpoints: beside its outputs, keyed by all it depends on.

    The key holds the threads each client trains on (1 in worker processes): fp32 bits depend on them,
    so a job resumed with another ``train_threads`` or ``compute.workers`` starts over rather than mix
    rounds trained at different thread counts.
    """
    arithmetic_threads = 1 if n_workers else torch.get_num_threads()
    key = resume_key(
        {"params": params, "execution": ex.describe(), "threads_per_client": arithmetic_threads}, *inputs
    )
    return RoundCheckpoint(Path(out.weights).parent / ".round-checkpoint", int(every), key)


def _setup(
    threads: int, device: str, engine: str, execution: dict[str, Any] | None, workers: str | int
) -> tuple[torch.device, Execution, int]:
    """Threads, device, execution and worker processes (0: none) for a job, checked before any file."""
    get_engine(engine)  # an unknown compute.engine fails here
    allocator = retain_freed_memory()  # a bad EQUITABLE_FL_ALLOCATOR fails here, before any file
    torch.set_num_threads(max(1, int(threads)))
    where = resolve_device(device)
    settings = {"precision": "fp32", "channels_last": False, **(execution or {})}
    ex = Execution.resolve(settings["precision"], settings["channels_last"], where)
    if engine != "inprocess" and workers not in ("auto", 1):
        raise ValueError(
            f"{WORKERS_KEY}: {workers!r} applies to compute.engine inprocess only (this job uses {engine}, "
            "whose nodes train on their own threads); set compute.workers to auto or 1"
        )
    n_workers = resolve_workers(workers, threads, where) if engine == "inprocess" else 0
    log = logging.getLogger(LOGGER_NAME)
    log.info("machine: %s", capabilities().line())
    log.info(allocator)
    log.info(
        "training on %s with %d CPU thread(s)%s, %s, %s layout",
        where,
        torch.get_num_threads(),
        f" as {n_workers} worker processes × 1 thread" if n_workers else "",
        ex.precision,
        "channels_last" if ex.channels_last else "contiguous",
    )
    return where, ex, n_workers


def phase(
    *,
    npz: str,
    meta: str,
    partition_json: str,
    clients_json: str,
    card: str,
    start_weights: str,
    start_mask: str,
    params: dict[str, Any],
    threads: int,
    out: TrainingOutputs,
    device: str = "cpu",
    engine: str = "inprocess",
    dense_card: str | None = None,
    execution: dict[str, Any] | None = None,
    checkpoint_every: int = 0,
    flower: dict[str, Any] | None = None,
    workers: str | int = "auto",
) -> None:
    """Train one Equitable-FL phase from its ticket; phase 1 also keeps the rewind point.

    ``card`` is the model card of the ticket the phase starts from (θ0's for phase 1), ``dense_card``
    θ0's: a structured ticket is a physically smaller model, measured against the dense one.
    """
    if out.mask is None:
        raise ValueError("an Equitable-FL phase writes its mask: TrainingOutputs.mask is required")
    # phase 1 keeps the weights after round pruning.rewind_round (range-checked with the config)
    rewind_round = int(params["rewind_round"]) if out.rewind is not None else None
    where, ex, n_workers = _setup(threads, device, engine, execution, workers)
    spec = ModelSpec.from_dict(io.read_json(card))
    fleet = load_fleet(npz, meta, partition_json, clients_json, where)
    start = checkpoint.load_state(start_weights, spec.build().state_dict())
    mask = Mask.load(start_mask)
    k = int(params["phase"])
    plan = PhasePlan(
        label=f"phase {k}",
        seed=int(params["seed"]),
        stream=k,
        rounds=int(params["rounds"]),
        settings=TrainSettings.from_config(params["training"]),
        admitted_tiers=tuple(params["tiers"]),
        check_budget=bool(params["check_budget"]),
        global_round_offset=int(params["global_round_offset"]),
        snapshot_rounds=() if rewind_round is None else (int(rewind_round),),
    )
    dense_spec = spec if dense_card is None else ModelSpec.from_dict(io.read_json(dense_card))
    inputs = (npz, partition_json, clients_json, card, start_weights, start_mask)
    ckpt = _round_checkpoint(out, checkpoint_every, params, ex, n_workers, *inputs)
    run, record, participation = _run(
        plan,
        fleet=fleet,
        spec=spec,
        dense_spec=dense_spec,
        start=start,
        mask=mask,
        engine=engine,
        execution=ex,
        where=where,
        checkpoint=ckpt,
        phase=k,
        flower=flower,
        workers=n_workers,
        availability=params.get("availability"),
    )
    mask.save(out.mask)
    if out.rewind is not None and rewind_round is not None:
        checkpoint.save_state(out.rewind, run.snapshots[int(rewind_round)])
    _write(out, run, record, participation, params, threads, ex, n_workers)
    ckpt.clear()


def vanilla(
    *,
    npz: str,
    meta: str,
    partition_json: str,
    clients_json: str,
    card: str,
    init_weights: str,
    init_mask: str,
    params: dict[str, Any],
    threads: int,
    out: TrainingOutputs,
    device: str = "cpu",
    engine: str = "inprocess",
    execution: dict[str, Any] | None = None,
    checkpoint_every: int = 0,
    flower: dict[str, Any] | None = None,
    workers: str | int = "auto",
) -> None:
    """Dense FedAvg baseline: all clients (or only those that afford the dense model)."""
    where, ex, n_workers = _setup(threads, device, engine, execution, workers)
    spec = ModelSpec.from_dict(io.read_json(card))
    fleet = load_fleet(npz, meta, partition_json, clients_json, where)
    start = checkpoint.load_state(init_weights, spec.build().state_dict())
    dense = Mask.load(init_mask)
    if dense.density != 1.0:
        raise ValueError(f"{init_mask} is not dense; vanilla FL starts from the all-ones mask")
    mode = params["participation"]
    plan = PhasePlan(
        label="vanilla",
        seed=int(params["seed"]),
        stream=VANILLA_STREAM,
        rounds=int(params["rounds"]),
        settings=TrainSettings.from_config(params["training"]),
        admitted_tiers=None,
        check_budget=mode == "fits_dense",
    )
    ckpt = _round_checkpoint(
        out, checkpoint_every, params, ex, n_workers, npz, partition_json, clients_json, card, init_weights
    )
    run, record, participation = _run(
        plan,
        fleet=fleet,
        spec=spec,
        dense_spec=spec,
        start=start,
        mask=dense,
        engine=engine,
        execution=ex,
        where=where,
        checkpoint=ckpt,
        participation_mode=mode,
        flower=flower,
        workers=n_workers,
        availability=params.get("availability"),
    )
    _write(out, run, record, participation, params, threads, ex, n_workers)
    ckpt.clear()
