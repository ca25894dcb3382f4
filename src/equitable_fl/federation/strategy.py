"""The Equitable-FL policy of one phase, independent of what executes it.

A :class:`PhasePlan` says what a phase is (rounds, RNG stream, admitted tiers, training settings);
:class:`EquitableStrategy` applies the policy to it: eligibility of each client against the cost of the
phase's model, the seeded cohort of each round from the eligible clients that are available, masked
sample-weighted FedAvg, and per-round accounting of participants and bytes. Engines
(:mod:`equitable_fl.federation.engine`) only move weights and run clients; they make no policy choice.

Hooks: ``availability(round) → clients online`` (``None``: everyone), ``round_time(round, tasks) →
simulated seconds`` (``None``: not simulated) and ``dynamics`` (``clients.availability``; ``None``: a
static fleet). With dynamics, eligibility is decided again every round on that round's resources, the
cohort is sampled from the eligible clients online at the round's start, and the members that would leave
before finishing are dropped before any training: ``configure_round`` returns tasks for the finishers only,
so no engine trains a client whose update would be thrown away, and ``account`` logs the dropouts (each
was sent the model: bytes down, never up).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from equitable_fl.config import TrainSettings
from equitable_fl.cost import ModelCost
from equitable_fl.dynamics.fleet import FleetDynamics
from equitable_fl.eligibility import decide
from equitable_fl.federation.client import ClientTask, ClientUpdate, State
from equitable_fl.records import RoundRecord
from equitable_fl.resources import ClientProfile

VANILLA_STREAM = 0  # phases use streams 1..K

Availability = Callable[[int], Collection[int]]
RoundTime = Callable[[int, Sequence[ClientTask]], float]


def stream_seed(*keys: int) -> int:
    """A 63-bit seed derived from integer keys (seed, stream, round, client)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0] >> 1)


def sample_clients(
    candidates: Sequence[int], settings: TrainSettings, seed: int, stream: int, rnd: int
) -> list[int]:
    """The round's cohort: ``client_fraction`` of the candidates (at least ``min_clients``), seeded."""
    if not candidates:
        return []
    k = min(len(candidates), max(settings.min_clients, math.ceil(settings.client_fraction * len(candidates))))
    rng = np.random.default_rng([seed, stream, rnd])
    return sorted(int(c) for c in rng.choice(np.asarray(candidates), size=k, replace=False))


def fedavg(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> State:
    """Weighted mean of client states (weights: sample counts), summed in a fixed order in float64."""
    if not states:
        raise ValueError("fedavg needs at least one client state")
    total = float(sum(weights))
    out: State = {}
    for name in states[0]:
        acc = torch.zeros_like(states[0][name], dtype=torch.float64)
        for s, w in zip(states, weights, strict=True):
            acc.add_(s[name].to(torch.float64), alpha=w / total)
        out[name] = acc.to(states[0][name].dtype)
    return out


@dataclass(frozen=True)
class PhasePlan:
    """What one training step is: the seam between a stage (files, config) and a strategy."""

    label: str
    seed: int
    stream: int
    rounds: int
    settings: TrainSettings
    admitted_tiers: tuple[int, ...] | None  # None admits every tier (vanilla FL)
    check_budget: bool
    global_round_offset: int = 0
    snapshot_rounds: tuple[int, ...] = ()


@dataclass
class StrategyHooks:
    availability: Availability | None = None
    round_time: RoundTime | None = None
    dynamics: FleetDynamics | None = None


@dataclass
class EquitableStrategy:
    """Policy of one phase; engines call ``configure_round`` → clients → ``aggregate`` → ``account``."""

    plan: PhasePlan
    profiles: Sequence[ClientProfile]
    client_samples: Sequence[int]
    mask: Mapping[str, torch.Tensor]
    model_cost: ModelCost
    dense_cost: ModelCost
    hooks: StrategyHooks = field(default_factory=StrategyHooks)

    def __post_init__(self) -> None:
        if len(self.client_samples) != len(self.profiles):
            raise ValueError(
                f"{len(self.client_samples)} client partitions but {len(self.profiles)} client profiles: "
                "both come from clients.count; rerun the partition and clients steps"
            )
        self.participation: dict[str, Any] = decide(
            self.profiles,
            None if self.plan.admitted_tiers is None else list(self.plan.admitted_tiers),
            self.model_cost,
            self.dense_cost,
            self.plan.check_budget,
        )
        self._pruned: dict[str, torch.Tensor] = {}
        self._dropouts: dict[int, list[int]] = {}  # round → cohort members that left before finishing

    @property
    def eligible(self) -> list[int]:
        return list(self.participation["eligible"])

    @property
    def payload_bytes(self) -> int:
        """Bytes of one model transfer (the sparse encoding of the phase's model), each way."""
        return int(self.model_cost.storage_bytes)

    def check_runnable(self) -> None:
        if not self.eligible:
            raise RuntimeError(
                f"{self.plan.label}: no client is eligible for this phase: loosen the tier thresholds or the "
                "resources, or disable eligibility.check_budget"
            )

    # -- configure_train ------------------------------------------------------------------------------
    def _global(self, rnd: int) -> int:
        return self.plan.global_round_offset + rnd

    def available(self, rnd: int) -> Collection[int] | None:
        """Clients online at the round's start: the dynamics' and the availability hook's, both if set."""
        hook = None if self.hooks.availability is None else self.hooks.availability(rnd)
        if self.hooks.dynamics is None:
            return hook
        online = self.hooks.dynamics.online(self._global(rnd))
        if hook is None:
            return online
        connected = set(hook)
        return [c for c in online if c in connected]

    def eligible_at(self, rnd: int) -> list[int]:
        """Eligible clients of round ``rnd``: the phase's verdict, or re-decided on the round's resources."""
        if self.hooks.dynamics is None:
            return self.eligible
        p = self.plan
        verdict = decide(
            self.hooks.dynamics.profiles_at(self._global(rnd)),
            None if p.admitted_tiers is None else list(p.admitted_tiers),
            self.model_cost,
            self.dense_cost,
            p.check_budget,
        )
        return list(verdict["eligible"])

    def cohort(self, rnd: int, available: Collection[int] | None = None) -> list[int]:
        """Seeded sample of the eligible clients that are available (``None``: all are)."""
        eligible = self.eligible_at(rnd)
        if available is None:
            candidates = eligible
        else:
            online = set(available)
            candidates = [c for c in eligible if c in online]
        return sample_clients(candidates, self.plan.settings, self.plan.seed, self.plan.stream, rnd)

    def configure_round(self, rnd: int, available: Collection[int] | None = None) -> list[ClientTask]:
        """The round's tasks, one per cohort member that will finish, each with its own training seed."""
        p = self.plan
        tasks = [
            ClientTask(c, rnd, stream_seed(p.seed, p.stream, rnd, c), p.settings)
            for c in self.cohort(rnd, available)
        ]
        if self.hooks.dynamics is None:
            return tasks
        kept, self._dropouts[rnd] = self.hooks.dynamics.split(self._global(rnd), tasks)
        return kept

    def dropouts(self, rnd: int) -> list[int]:
        """Cohort members of round ``rnd`` that left before finishing (set by ``configure_round``)."""
        return list(self._dropouts.get(rnd, []))

    # -- aggregate_train ------------------------------------------------------------------------------
    def aggregate(self, updates: Sequence[ClientUpdate], current: State) -> State:
        """Sample-weighted FedAvg of the updates, pruned weights set back to exactly zero.

        A round in which no client trained (nobody eligible was available) keeps ``current``.
        """
        if not updates:
            return current
        state = fedavg([u.state for u in updates], [u.num_examples for u in updates])
        for name, m in self.mask.items():
            if name not in self._pruned:
                self._pruned[name] = ~m.bool().to(state[name].device)
            state[name].masked_fill_(self._pruned[name], 0.0)
        return state

    def account(
        self,
        rnd: int,
        tasks: Sequence[ClientTask],
        updates: Sequence[ClientUpdate],
        accuracy: float,
        loss: float,
        train_seconds: float = 0.0,
    ) -> RoundRecord:
        """The round's record: participants, samples trained, bytes each way, evaluation, dropouts.

        Dropouts were sent the model (bytes down) and sent nothing back.
        """
        weights = [u.num_examples for u in updates]
        dropouts = self.dropouts(rnd)
        record = RoundRecord(
            round=rnd,
            global_round=self.plan.global_round_offset + rnd,
            clients=[u.client for u in updates],
            samples=int(sum(weights)) * self.plan.settings.local_epochs,
            accuracy=accuracy,
            loss=loss,
            train_loss=(
                float(np.average([u.train_loss for u in updates], weights=weights)) if updates else None
            ),
            bytes_down=self.payload_bytes * (len(tasks) + len(dropouts)),
            bytes_up=self.payload_bytes * len(updates),
            train_seconds=train_seconds,
            dropouts=None if self.hooks.dynamics is None else dropouts,
        )
        if self.hooks.round_time is not None:
            record.simulated_seconds = float(self.hooks.round_time(rnd, tasks))
        return record

    def took_part(self, history: Sequence[RoundRecord]) -> dict[str, Any]:
        """The participation record of the phase: eligibility verdicts plus who actually trained.

        With dynamics, ``eligible_by_round`` maps each global round to the clients eligible on that round's
        resources (what the cohort was drawn from, before availability): ``eligible`` is the verdict on the
        drawn resources. Re-decided here from the dynamics, which are a function of the round, so a phase
        resumed from a round checkpoint writes the same record.
        """
        took_part = sorted({c for r in history for c in r.clients})
        out = {**self.participation, "took_part": took_part}
        if self.hooks.dynamics is not None:
            out["eligible_by_round"] = {str(r.global_round): self.eligible_at(r.round) for r in history}
        if self.plan.admitted_tiers is not None:  # vanilla FL's record is tier-blind, as its eligibility
            tiers = {p.client: p.tier for p in self.profiles}
            out["took_part_by_tier"] = {
                str(t): sum(tiers[c] == t for c in took_part) for t in sorted(set(tiers.values()))
            }
        return out
