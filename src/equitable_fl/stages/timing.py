"""The per-cell timing step: θ0's dense model against the cell's final ticket, side by side in one process.

It writes ``measured.json`` (:class:`~equitable_fl.records.SideBySideTiming`), whose median paired
ratio is the cell's ``wallclock_speedup``; how it is measured is in :mod:`equitable_fl.timing`. The
ticket is the model the final phase trained: built from the card that phase started from (physically
smaller than θ0's for a structured ticket), with the final phase's weights and mask.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

import torch

from equitable_fl import checkpoint, io
from equitable_fl.allocator import retain_freed_memory
from equitable_fl.config import TrainSettings
from equitable_fl.data.prepared import load_prepared
from equitable_fl.data.tensors import TensorData
from equitable_fl.device import resolve_device
from equitable_fl.federation.client import MaskedParams, local_train
from equitable_fl.federation.execution import REFERENCE, Execution
from equitable_fl.hardware import capabilities
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec
from equitable_fl.progress import LOGGER_NAME
from equitable_fl.records import SideBySideTiming
from equitable_fl.timing import DENSE, TICKET, Contender, TimingSettings, side_by_side, timing_indices


def load_contender(
    card: str, weights: str, mask: str | None, where: torch.device, execution: Execution = REFERENCE
) -> tuple[Contender, Mask]:
    """The model of ``card`` with ``weights`` in ``execution``'s layout; ``mask`` (None: all kept)
    re-applied after every optimiser step, as in training."""
    spec = ModelSpec.from_dict(io.read_json(card))
    model = execution.prepare(spec.build().to(where))
    state = {k: v.to(where) for k, v in checkpoint.load_state(weights, model.state_dict()).items()}
    kept = Mask.load(mask) if mask is not None else Mask.ones_like(state, spec.prunable(model))
    kept.check_fits(state)
    return Contender(model, state, MaskedParams(model, kept)), kept


def _note(side: SideBySideTiming) -> str:
    shape = (
        "the same shapes as the dense model, its pruned weights held at zero: dense kernels, "
        "so expect about 1.0×"
        if side.ticket_params == side.dense_params
        else f"a physically smaller model ({side.ticket_params:,} of {side.dense_params:,} parameters)"
    )
    return (
        f"seconds per training sample of θ0's dense model / of the final ticket ({shape}; "
        f"{100 * side.ticket_density:.1f}% of its prunable weights kept), both trained by local_train "
        f"in one process on the same {side.steps} batches of {side.batch_size}, interleaved call by call "
        f"with alternating order, {side.threads} thread(s) on {side.device}, "
        f"{side.execution['precision']}{' channels_last' if side.execution['channels_last'] else ''}; "
        f"median of {side.repeats} paired calls after {side.warmup} warm-up"
    )


def time_cell(
    *,
    npz: str,
    meta: str,
    dense_weights: str,
    dense_card: str,
    ticket_weights: str,
    ticket_mask: str,
    ticket_card: str,
    params: dict[str, Any],
    threads: int,
    out: str,
    device: str = "cpu",
    execution: dict[str, Any] | None = None,
) -> SideBySideTiming:
    """Time the dense model and the final ticket side by side; write ``measured.json``.

    ``params`` holds ``timing`` (``compute.timing``), ``training`` (the final phase's training settings:
    batch size, SGD options) and ``seed`` (which samples make the batches). ``threads``, ``device`` and
    ``execution`` (precision and layout) are the training jobs' own.
    """
    timing = TimingSettings.from_config(params["timing"])
    settings = TrainSettings.from_config(params["training"])
    allocator = retain_freed_memory()  # dense and ticket alike: the ratio is the kernels', not malloc's
    torch.set_num_threads(max(1, int(threads)))
    where = resolve_device(device)
    requested = {"precision": "fp32", "channels_last": False, **(execution or {})}
    ex = Execution.resolve(requested["precision"], requested["channels_last"], where)
    hardware = capabilities()
    log = logging.getLogger(LOGGER_NAME)
    log.info("machine: %s", hardware.line())
    log.info(allocator)
    dense, _ = load_contender(dense_card, dense_weights, None, where, ex)
    ticket, ticket_kept = load_contender(ticket_card, ticket_weights, ticket_mask, where, ex)
    data = TensorData.from_prepared(load_prepared(npz, meta), where)
    samples = timing.steps * settings.batch_size
    indices = timing_indices(len(data.y_train), samples, int(params["seed"]), where)
    log.info(
        "timing dense (%d parameters) against the ticket (%d, density %.4f): %d warm-up + %d calls of "
        "%d batches of %d each, %d thread(s) on %s, %s",
        dense.num_params,
        ticket.num_params,
        ticket_kept.density,
        timing.warmup,
        timing.repeats,
        timing.steps,
        settings.batch_size,
        torch.get_num_threads(),
        where,
        ex.describe(),
    )
    step = functools.partial(local_train, execution=ex)
    seed = int(params["seed"])
    result = side_by_side(dense, ticket, data, indices, settings, timing, seed=seed, device=where, step=step)
    low, high = result.spread
    side = SideBySideTiming(
        note="",
        wallclock_speedup=result.speedup,
        wallclock_speedup_min=low,
        wallclock_speedup_max=high,
        dense_seconds_per_sample=result.seconds_per_sample(DENSE),
        ticket_seconds_per_sample=result.seconds_per_sample(TICKET),
        dense_seconds=result.dense_seconds,
        ticket_seconds=result.ticket_seconds,
        samples_per_call=result.samples_per_call,
        batch_size=settings.batch_size,
        steps=timing.steps,
        repeats=timing.repeats,
        warmup=timing.warmup,
        threads=torch.get_num_threads(),
        device=str(where),
        execution=ex.describe(),
        dense_params=dense.num_params,
        ticket_params=ticket.num_params,
        ticket_density=ticket_kept.density,
        hardware=hardware.line(),
        capabilities=hardware.as_dict(),
    )
    side = dataclasses.replace(side, note=_note(side))
    log.info("wall-clock speed-up %.3f× (min %.3f, max %.3f)", side.wallclock_speedup, low, high)
    io.write_json(out, side.to_json())
    return side
