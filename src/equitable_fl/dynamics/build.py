"""From ``clients.availability`` to every client's state in every round of a training step.

:func:`round_conditions` is the one entry point: the training stage calls it for its global rounds, the
config check calls :func:`config_problems` so that a bad trace fails before any job runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from equitable_fl.dynamics import fedscale, markov, traces
from equitable_fl.dynamics.conditions import ClientRound, RoundConditions
from equitable_fl.dynamics.fleet import FleetDynamics
from equitable_fl.dynamics.settings import AvailabilityError, AvailabilitySettings, file_digest
from equitable_fl.fleet_time import RoundClock
from equitable_fl.resources import ClientProfile


def _fedscale_states(s: AvailabilitySettings, n: int, rounds: int) -> list[list[ClientRound]]:
    files = s.trace_files()
    loaded = {
        key: fedscale.load_pickle(path, f"clients.availability.trace.{key}") for key, path in files.items()
    }
    paths = [files.get("device_capacity", ""), files.get("behave_trace", "")]
    return fedscale.conditions(
        loaded.get("device_capacity"),
        loaded.get("behave_trace"),
        n,
        rounds,
        float(s.round_seconds or 0),
        paths,
    )


def _process_states(
    s: AvailabilitySettings, seed: int, tiers: Sequence[int], last: int
) -> list[list[ClientRound]]:
    """States of every client over rounds 1..last + 1 before noise (+1: who leaves during round last)."""
    n = len(tiers)
    if s.process == "markov":
        rates = (float(s.on_to_off or 0.0), float(s.off_to_on or 0.0), float(s.tier_factor or 1.0))
        return [[ClientRound(bool(x)) for x in row] for row in markov.chains(seed, tiers, last, *rates)]
    if s.process == "trace" and s.trace_format == "csv":
        return traces.conditions(traces.read_rows(s.trace_files()["path"], n), n, last + 1)
    if s.process == "trace":
        return _fedscale_states(s, n, last + 1)
    return [[ClientRound()] * (last + 1) for _ in range(n)]


def round_conditions(
    settings: AvailabilitySettings, seed: int, tiers: Sequence[int], first: int, last: int
) -> RoundConditions:
    """Every client's :class:`ClientRound` for global rounds ``first..last`` (tiers: one per client).

    A client online at round g whose process has it offline at g + 1 leaves during round g, at a seeded
    uniform moment of it (chain and CSV trace); FedScale traces say when in seconds.
    """
    if last < first or first < 1:
        raise ValueError(f"rounds {first}..{last}: need 1 ≤ first ≤ last")
    states = _process_states(settings, seed, tiers, last)
    out: dict[int, list[ClientRound]] = {g: [] for g in range(first, last + 1)}
    for c, row in enumerate(states):
        moments = markov.leave_moments(seed, c, last)
        compute = markov.noise(seed, c, last, settings.noise_compute, "compute")
        bandwidth = markov.noise(seed, c, last, settings.noise_bandwidth, "bandwidth")
        for g in range(first, last + 1):
            now, after = row[g - 1], row[g]
            # a chain or CSV trace says offline next round: the client leaves during this one
            goes = now.available and not after.available and now.leaves_after_seconds is None
            leaves = float(moments[g - 1]) if goes else None
            out[g].append(
                dataclasses.replace(
                    now,
                    available=now.available,
                    compute=now.compute * float(compute[g - 1]),
                    bandwidth=now.bandwidth * float(bandwidth[g - 1]),
                    leaves_at_fraction=leaves,
                )
            )
    return out


def config_problems(cfg: Mapping[str, Any], where: str = "") -> list[str]:
    """Problems of ``clients.availability`` in a validated config, trace files read and checked."""
    try:
        s = AvailabilitySettings.from_config(cfg["clients"]["availability"])
    except AvailabilityError as exc:
        return [where + str(exc)]
    out: list[str] = []
    key = "clients.availability"
    if s.static:
        return out
    if s.process == "trace":
        out += _trace_problems(s, cfg)
    if s.process == "trace" and s.trace_format == "fedscale" and not cfg["clients"]["resources"]["devices"]:
        out.append(
            f"{key}.trace.format: 'fedscale' times active intervals in simulated seconds and needs "
            "clients.resources.devices (the simulated clock); set it, or use format csv"
        )
    return [where + p for p in out]


def _trace_problems(s: AvailabilitySettings, cfg: Mapping[str, Any]) -> list[str]:
    """The trace files named, present and valid: every bad row reported now, before any job runs."""
    key = "clients.availability.trace"
    if not s.trace_files():
        need = "path" if s.trace_format == "csv" else "device_capacity and/or behave_trace"
        return [f"{key}: format {s.trace_format!r} reads {need}, but none is set; set the trace file(s)"]
    try:
        _process_states(s, 0, [1] * int(cfg["clients"]["count"]), 1)
    except AvailabilityError as exc:
        return [str(exc)]
    return []


def fleet_availability(conditions: RoundConditions) -> np.ndarray:
    """Online flags (rounds × clients) of a conditions table, rounds in order: for tests and figures."""
    return np.array([[c.available for c in conditions[g]] for g in sorted(conditions)])


def fleet_dynamics(
    availability: Mapping[str, Any] | None,
    seed: int,
    profiles: Sequence[ClientProfile],
    clock: RoundClock | None,
    offset: int,
    rounds: int,
) -> FleetDynamics | None:
    """The dynamics of a training step's global rounds ``offset + 1 .. offset + rounds`` (None: static).

    ``availability`` is the step's slice (:meth:`AvailabilitySettings.slice`); trace files are read again
    and their digests compared with the slice's, so a trace edited after the config check fails here.
    """
    settings = AvailabilitySettings.from_config(availability)
    if settings.static:
        return None
    digests = (availability or {}).get("trace", {}).get("sha256", {})
    for key, path in settings.trace_files().items():
        if key in digests and file_digest(path) != digests[key]:
            raise AvailabilityError(
                f"clients.availability.trace.{key}: {path} changed after the workflow started; rerun it"
            )
    tiers = [p.tier for p in profiles]
    conditions = round_conditions(settings, seed, tiers, offset + 1, offset + rounds)
    return FleetDynamics(conditions, profiles, clock)
