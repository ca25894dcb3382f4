"""Wall-clock speed of the final ticket against the dense model, measured side by side in one process.

Seconds taken from different training jobs do not compare: Snakemake runs jobs in parallel, so a job's
time depends on what ran beside it (a real MNIST run read 0.79× for a ticket that is not slower;
``shared/notes/performance.md``). Here both models train in one process, through the project's own
client step (:func:`~equitable_fl.federation.client.local_train`, the ticket's mask re-applied in place
after every optimiser step as in training), on the same batches and with the same threads. Calls are
interleaved, dense then ticket, then ticket then dense, …, so drift and neighbours' load hit both alike;
warm-up calls are discarded. The speed-up is the median over repetitions of the paired ratio
dense seconds / ticket seconds of two calls made back to back; min and max give the spread.

One timed call trains one model on ``steps`` batches from fixed weights, as one client's local
training in a round does (weights loaded, a fresh optimiser, weights copied out).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from equitable_fl.config import TrainSettings
from equitable_fl.config.validate import schema, validated
from equitable_fl.data.tensors import TensorData
from equitable_fl.device import synchronize
from equitable_fl.federation.client import MaskedParams, local_train

DENSE, TICKET = "dense", "ticket"


@dataclass(frozen=True)
class TimingSettings:
    """How long to measure (config ``compute.timing``; defaults in ``schema.yaml``)."""

    steps: int  # batches per timed call
    repeats: int  # timed calls of each model
    warmup: int  # calls of each model made first and discarded

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TimingSettings:
        sub = schema()["properties"]["compute"]["properties"]["timing"]
        values = validated(cfg, sub, where="compute.timing")
        return cls(**{f.name: int(values[f.name]) for f in dataclasses.fields(cls)})


@dataclass
class Contender:
    """One model as a client trains it: the module, the weights each call starts from, its mask."""

    model: nn.Module
    state: Mapping[str, torch.Tensor]
    masked: MaskedParams

    @property
    def num_params(self) -> int:
        """Parameters the model physically holds (a structured ticket holds fewer than the dense model)."""
        return sum(p.numel() for p in self.model.parameters())


@dataclass(frozen=True)
class SideBySide:
    """Seconds of each timed call (warm-up excluded), in call order, and the samples one call trains."""

    dense_seconds: list[float]
    ticket_seconds: list[float]
    samples_per_call: int

    @property
    def ratios(self) -> list[float]:
        """Dense / ticket seconds of each repetition's pair of calls (> 1: the ticket is faster)."""
        return [d / t for d, t in zip(self.dense_seconds, self.ticket_seconds, strict=True)]

    @property
    def speedup(self) -> float:
        return statistics.median(self.ratios)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.ratios), max(self.ratios)

    def seconds_per_sample(self, name: str) -> float:
        seconds = self.dense_seconds if name == DENSE else self.ticket_seconds
        return statistics.median(seconds) / self.samples_per_call


def interleaved(
    run: Callable[[str], Any],
    names: Sequence[str],
    repeats: int,
    warmup: int = 0,
    *,
    sync: Callable[[], None] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time ``run(name)`` for every name, ``warmup + repeats`` times, reversing the order every repetition.

    Repetition 0 runs ``names`` in order, repetition 1 reversed, and so on; the first ``warmup``
    repetitions are run but not kept. ``sync`` waits for queued device work before each clock reading.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be ≥ 1 and warmup ≥ 0, got {repeats} and {warmup}")
    kept: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + repeats):
        for name in names if i % 2 == 0 else list(reversed(names)):
            sync()
            t0 = clock()
            run(name)
            sync()
            if i >= warmup:
                kept[name].append(clock() - t0)
    return kept


def timing_indices(
    num_train: int, samples: int, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``samples`` training-sample indices drawn by a seeded permutation (repeated if the set is smaller)."""
    if num_train < 1:
        raise ValueError("the prepared dataset has no training samples to time on")
    gen = torch.Generator().manual_seed(int(seed))
    rounds = -(-samples // num_train)
    order = torch.cat([torch.randperm(num_train, generator=gen) for _ in range(rounds)])
    return order[:samples].to(device)


def side_by_side(
    dense: Contender,
    ticket: Contender,
    data: TensorData,
    indices: torch.Tensor,
    settings: TrainSettings,
    timing: TimingSettings,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    step: Callable[..., Any] = local_train,
) -> SideBySide:
    """Train ``dense`` and ``ticket`` on ``indices`` (``timing.steps`` batches) call by call, interleaved.

    Every call of either model gets the same indices and a generator with the same seed, so both see
    the same batches in the same order. ``step`` has :func:`local_train`'s signature (tests wrap it).
    """
    if len(indices) != timing.steps * settings.batch_size:
        raise ValueError(
            f"{len(indices)} indices for {timing.steps} batches of {settings.batch_size}: "
            "draw them with timing_indices(…, steps × batch_size, …)"
        )
    one_pass = dataclasses.replace(settings, local_epochs=1)
    contenders = {DENSE: dense, TICKET: ticket}

    def run(name: str) -> None:
        c = contenders[name]
        step(c.model, c.state, c.masked, data, indices, one_pass, torch.Generator().manual_seed(int(seed)))

    where = torch.device(device)
    seconds = interleaved(
        run, (DENSE, TICKET), timing.repeats, timing.warmup, sync=lambda: synchronize(where)
    )
    return SideBySide(seconds[DENSE], seconds[TICKET], len(indices))
