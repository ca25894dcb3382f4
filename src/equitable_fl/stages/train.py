"""Steps that create and train models: θ0, one Equitable-FL phase, and the vanilla FL baseline."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from equitable_fl import checkpoint, cost, io
from equitable_fl.data.prepared import load_prepared
from equitable_fl.data.tensors import TensorData
from equitable_fl.device import resolve_device
from equitable_fl.eligibility import decide
from equitable_fl.fedavg import RoundRecord, TrainSettings, run_rounds
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, measure_cost
from equitable_fl.partition import from_json
from equitable_fl.progress import LOGGER_NAME, RoundProgress
from equitable_fl.resources import profiles_from_json

VANILLA_STREAM = 0  # phases use streams 1..K


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
    layers = cost.layer_costs(model, spec.input_shape)
    checkpoint.save_state(out_weights, state)
    mask.save(out_mask)
    io.write_json(
        out_card,
        {
            **spec.as_dict(),
            "prunable": list(mask),
            "params": cost.parameter_count(state),
            "dense_bytes": cost.dense_bytes(state),
            "forward_flops_per_sample": cost.forward_flops(layers),
            "train_flops_per_sample": cost.train_flops(layers),
            "layers": [vars(layer) for layer in layers],
        },
    )


@dataclass
class _Context:
    """Everything a training step loads before its first round."""

    spec: ModelSpec
    model: torch.nn.Module
    data: TensorData
    client_indices: list[torch.Tensor]
    profiles: list[Any]


def _load_context(
    npz: str, meta: str, partition_json: str, clients_json: str, model_card: str, threads: int, device: str
) -> _Context:
    torch.set_num_threads(max(1, int(threads)))
    where = resolve_device(device)
    spec = ModelSpec.from_dict(io.read_json(model_card))
    data = TensorData.from_prepared(load_prepared(npz, meta), where)
    parts = from_json(io.read_json(partition_json)["clients"])
    profiles = profiles_from_json(io.read_json(clients_json)["clients"])
    if len(parts) != len(profiles):
        raise ValueError(
            f"{partition_json} has {len(parts)} clients but {clients_json} has {len(profiles)}; "
            "both come from clients.count: rerun the partition and clients steps"
        )
    logging.getLogger(LOGGER_NAME).info(
        "training on %s with %d CPU thread(s)", where, torch.get_num_threads()
    )
    indices = [torch.from_numpy(p).to(where) for p in parts]
    return _Context(spec, spec.build().to(where), data, indices, profiles)


def _timing(history: list[RoundRecord], threads: int) -> dict[str, Any]:
    seconds = [r.train_seconds for r in history]
    samples = [r.samples for r in history]
    return {
        "threads": int(threads),
        "train_seconds_per_round": seconds,
        "samples_per_round": samples,
        "train_seconds_total": sum(seconds),
        "seconds_per_sample": sum(seconds) / max(sum(samples), 1),
    }


def _train(
    ctx: _Context,
    *,
    label: str,
    start: dict[str, torch.Tensor],
    mask: Mask,
    admitted_tiers: list[int] | None,
    check_budget: bool,
    rounds: int,
    settings: TrainSettings,
    seed: int,
    stream: int,
    offset: int,
    snapshot_rounds: tuple[int, ...] = (),
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    state_ref = ctx.model.state_dict()
    mask.check_fits(state_ref)
    ones = Mask.ones_like(state_ref, list(mask))
    model_cost, size = measure_cost(ctx.model, ctx.spec, start, mask)
    dense_cost, _ = measure_cost(ctx.model, ctx.spec, state_ref, ones)
    participation = decide(ctx.profiles, admitted_tiers, model_cost, dense_cost, check_budget)
    log = logging.getLogger(LOGGER_NAME)
    log.info(
        "%s: %d rounds, sparsity %.4f, %d of %d clients eligible",
        label,
        rounds,
        size["sparsity"],
        len(participation["eligible"]),
        len(ctx.profiles),
    )
    with RoundProgress(label, rounds) as progress:
        result = run_rounds(
            model=ctx.model,
            start_state=start,
            mask=mask,
            data=ctx.data,
            client_indices=ctx.client_indices,
            eligible=participation["eligible"],
            rounds=rounds,
            settings=settings,
            seed=seed,
            stream=stream,
            global_round_offset=offset,
            payload_bytes=int(model_cost.storage_bytes),
            snapshot_rounds=snapshot_rounds,
            on_round=lambda r: progress.round_done(r.round, len(r.clients), r.accuracy, r.loss),
        )
    took_part = sorted({c for r in result.history for c in r.clients})
    participation["took_part"] = took_part
    tiers = {p.client: p.tier for p in ctx.profiles}
    participation["took_part_by_tier"] = {
        str(t): sum(tiers[c] == t for c in took_part) for t in sorted(set(tiers.values()))
    }
    last = result.history[-1]
    metrics = {
        "label": label,
        "rounds": rounds,
        "global_round_offset": offset,
        "admitted_tiers": admitted_tiers,
        "eligible_clients": len(participation["eligible"]),
        "clients_took_part": len(took_part),
        **size,
        "final_accuracy": last.accuracy,
        "final_loss": last.loss,
        "best_accuracy": max(r.accuracy for r in result.history),
        "bytes_communicated": sum(r.bytes_down + r.bytes_up for r in result.history),
        "history": [r.metrics() for r in result.history],
    }
    return result, metrics, participation


def phase(
    *,
    npz: str,
    meta: str,
    partition_json: str,
    clients_json: str,
    model_card: str,
    start_weights: str,
    start_mask: str,
    params: dict[str, Any],
    threads: int,
    out_weights: str,
    out_mask: str,
    out_metrics: str,
    out_participation: str,
    out_timing: str,
    out_rewind: str | None = None,
    device: str = "cpu",
) -> None:
    """Train one Equitable-FL phase from its ticket; phase 1 also keeps the rewind point."""
    ctx = _load_context(npz, meta, partition_json, clients_json, model_card, threads, device)
    start = checkpoint.load_state(start_weights, ctx.model.state_dict())
    mask = Mask.load(start_mask)
    k = int(params["phase"])
    rewind_round = int(params.get("rewind_round", 0))
    if out_rewind is not None and not 0 <= rewind_round <= int(params["rounds"]):
        raise ValueError(
            f"pruning.rewind_round {rewind_round} must be within phase 1's 0..{params['rounds']} rounds"
        )
    result, metrics, participation = _train(
        ctx,
        label=f"phase {k}",
        start=start,
        mask=mask,
        admitted_tiers=list(params["tiers"]),
        check_budget=bool(params["check_budget"]),
        rounds=int(params["rounds"]),
        settings=TrainSettings.from_config(params["training"]),
        seed=int(params["seed"]),
        stream=k,
        offset=int(params["global_round_offset"]),
        snapshot_rounds=(rewind_round,) if out_rewind is not None else (),
    )
    metrics["phase"] = k
    checkpoint.save_state(out_weights, result.state)
    mask.save(out_mask)
    if out_rewind is not None:
        checkpoint.save_state(out_rewind, result.snapshots[rewind_round])
    io.write_json(out_participation, participation)
    io.write_json(out_timing, _timing(result.history, threads))
    io.write_json(out_metrics, metrics)


def vanilla(
    *,
    npz: str,
    meta: str,
    partition_json: str,
    clients_json: str,
    model_card: str,
    init_weights: str,
    init_mask: str,
    params: dict[str, Any],
    threads: int,
    out_weights: str,
    out_metrics: str,
    out_participation: str,
    out_timing: str,
    device: str = "cpu",
) -> None:
    """Dense FedAvg baseline: all clients (or only those that afford the dense model)."""
    ctx = _load_context(npz, meta, partition_json, clients_json, model_card, threads, device)
    start = checkpoint.load_state(init_weights, ctx.model.state_dict())
    dense = Mask.load(init_mask)
    if dense.density != 1.0:
        raise ValueError(f"{init_mask} is not dense; vanilla FL starts from the all-ones mask")
    participation_mode = params["participation"]
    if participation_mode not in ("all", "fits_dense"):
        raise ValueError(f"vanilla.participation must be 'all' or 'fits_dense', got {participation_mode!r}")
    result, metrics, participation = _train(
        ctx,
        label="vanilla",
        start=start,
        mask=dense,
        admitted_tiers=None,
        check_budget=participation_mode == "fits_dense",
        rounds=int(params["rounds"]),
        settings=TrainSettings.from_config(params["training"]),
        seed=int(params["seed"]),
        stream=VANILLA_STREAM,
        offset=0,
    )
    metrics["participation"] = participation_mode
    checkpoint.save_state(out_weights, result.state)
    io.write_json(out_participation, participation)
    io.write_json(out_timing, _timing(result.history, threads))
    io.write_json(out_metrics, metrics)
