"""The strategy's view of a dynamic fleet: who is online, what each client affords, who drops out.

Given the conditions of a training step's rounds (:mod:`.build`), the drawn client profiles and the
phase's clock, :class:`FleetDynamics` answers, for a global round:

- ``online``: the clients online at the round's start;
- ``profiles_at``: the profiles with that round's resources (relative budgets, for eligibility);
- ``split``: which cohort members finish and which leave before they would (dropouts);
- ``round_seconds``: the round's simulated time on the finishers' devices, as they are that round.

A dropout is decided before any training, from the client's own completion time on its device that round
against the moment it leaves, so an engine never trains a client whose update would be thrown away. The
scheduled round (whose fraction a chain's leaving moment is) lasts as long as the slowest member of the
whole cohort; without a clock every member needs the whole round, so any client that leaves drops out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from equitable_fl.dynamics.conditions import ClientRound, RoundConditions
from equitable_fl.fleet_time import Device, RoundClock, round_seconds
from equitable_fl.resources import ClientProfile


class _Settings(Protocol):
    local_epochs: int


class _Task(Protocol):
    client: int
    settings: _Settings


TaskT = TypeVar("TaskT", bound=_Task)


def scale_device(device: Device, state: ClientRound) -> Device:
    """The device this round: FLOP/s × the compute factor, bytes/s × bandwidth, bytes × storage."""
    if not state.scaled:
        return device
    return dataclasses.replace(
        device,
        flops_per_s=device.flops_per_s * state.compute,
        download_bytes_per_s=device.download_bytes_per_s * state.bandwidth,
        upload_bytes_per_s=device.upload_bytes_per_s * state.bandwidth,
        storage_bytes=device.storage_bytes * state.storage,
    )


def scale_profile(profile: ClientProfile, state: ClientRound) -> ClientProfile:
    """The profile with this round's resources; score and tier stay as the clients step assigned them."""
    if not state.scaled:
        return profile
    return dataclasses.replace(
        profile,
        compute=profile.compute * state.compute,
        storage=profile.storage * state.storage,
        bandwidth=profile.bandwidth * state.bandwidth,
        device=None if profile.device is None else scale_device(profile.device, state),
    )


@dataclass(frozen=True)
class FleetDynamics:
    """A training step's fleet over its global rounds; the strategy's ``dynamics`` hook."""

    conditions: RoundConditions
    profiles: Sequence[ClientProfile]
    clock: RoundClock | None

    def __post_init__(self) -> None:
        for g, states in self.conditions.items():
            if len(states) != len(self.profiles):
                raise ValueError(
                    f"round {g}: conditions for {len(states)} clients but the fleet has {len(self.profiles)}"
                )

    def to_json(self) -> dict[str, Any]:
        """The conditions and the clock, for a process that runs the strategy elsewhere (a Flower
        ServerApp); the profiles are the fleet's, which that process learns from its nodes."""
        return {
            "conditions": {str(g): [dataclasses.asdict(s) for s in st] for g, st in self.conditions.items()},
            "clock": None if self.clock is None else dataclasses.asdict(self.clock),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], profiles: Sequence[ClientProfile]) -> FleetDynamics:
        c = d["clock"]
        clock = None if c is None else RoundClock(**{**c, "devices": [Device(**x) for x in c["devices"]]})
        conditions = {int(g): [ClientRound(**s) for s in st] for g, st in d["conditions"].items()}
        return cls(conditions, list(profiles), clock)

    def states(self, g: int) -> Sequence[ClientRound]:
        if g not in self.conditions:
            raise KeyError(f"no availability conditions for global round {g}: {sorted(self.conditions)[:3]}…")
        return self.conditions[g]

    def online(self, g: int) -> list[int]:
        return [c for c, s in enumerate(self.states(g)) if s.available]

    def profiles_at(self, g: int) -> list[ClientProfile]:
        return [scale_profile(p, s) for p, s in zip(self.profiles, self.states(g), strict=True)]

    def clock_at(self, g: int) -> RoundClock | None:
        if self.clock is None:
            return None
        devices = [scale_device(d, s) for d, s in zip(self.clock.devices, self.states(g), strict=True)]
        return dataclasses.replace(self.clock, devices=devices)

    def split(self, g: int, tasks: Sequence[TaskT]) -> tuple[list[TaskT], list[int]]:
        """The cohort's tasks split into those that finish and the clients that drop out (cohort order)."""
        states = self.states(g)
        clock = self.clock_at(g)
        finish = [t.total for t in clock.client_times(tasks)] if clock is not None else [1.0] * len(tasks)
        scheduled = max(finish, default=0.0)
        kept: list[TaskT] = []
        dropped: list[int] = []
        for task, seconds in zip(tasks, finish, strict=True):
            if states[task.client].leaves_before(seconds, scheduled):
                dropped.append(task.client)
            else:
                kept.append(task)
        return kept, dropped

    def round_seconds(self, g: int, tasks: Sequence[_Task]) -> float:
        """Simulated seconds of round g: its slowest finisher, on the devices as they are that round."""
        clock = self.clock_at(g)
        return 0.0 if clock is None else round_seconds(clock.client_times(tasks))

    def round_time(self, offset: int) -> Callable[[int, Sequence[_Task]], float]:
        """The strategy's ``round_time`` hook for a step whose round 1 is global round ``offset + 1``."""
        return lambda rnd, tasks: self.round_seconds(offset + rnd, tasks)
