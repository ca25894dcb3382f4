"""Simulated client resources, heterogeneity scores and tiers.

Every client gets compute, storage and bandwidth, expressed as multiples of what the *dense* model
needs (1.0 = exactly affords the dense model; 0.4 = affords 40% of its FLOPs, bytes or traffic).
A device's three resources are correlated: a base capacity is drawn from the configured distribution
and each resource is that capacity times an independent jitter factor, as phones of one class tend to be
weak or strong on all three. The heterogeneity score is the minimum of the three after normalising each
by its largest value over the clients; tiers (1 = strongest) come from thresholds on the score.
With ``resources.devices`` set (the schema's default), every client also gets a device in units (FLOP/s,
bytes/s, bytes) for the simulated clock, placed by these resources (:mod:`equitable_fl.fleet_time`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from equitable_fl.fleet_time import Device, draw_devices

RESOURCE_NAMES = ("compute", "storage", "bandwidth")


class ResourceConfigError(ValueError):
    """The resources or tiers section of the config is invalid."""


@dataclass(frozen=True)
class ClientProfile:
    client: int
    compute: float
    storage: float
    bandwidth: float
    score: float
    tier: int
    device: Device | None = None  # units for the simulated clock; None in a clients.json from before

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.device is None:
            out.pop("device")
        return out


UNIFORM_DEFAULTS = {"low": 0.25, "high": 1.6}


def uniform_bounds(cfg: dict[str, Any]) -> tuple[float, float]:
    """``low`` and ``high`` of the uniform distribution (documented defaults 0.25 and 1.6)."""
    return float(cfg.get("low", UNIFORM_DEFAULTS["low"])), float(cfg.get("high", UNIFORM_DEFAULTS["high"]))


def sample_resources(num_clients: int, seed: int, cfg: dict[str, Any]) -> np.ndarray:
    """Array (num_clients × 3) of compute, storage, bandwidth drawn with a local generator."""
    rng = np.random.default_rng([seed, 0xC11E])
    dist = cfg.get("distribution", "uniform")
    if dist == "uniform":
        low, high = uniform_bounds(cfg)
        if not 0 < low < high:
            raise ResourceConfigError(f"resources: need 0 < low < high, got low={low}, high={high}")
        base = rng.uniform(low, high, size=num_clients)
    elif dist == "lognormal":
        base = rng.lognormal(float(cfg.get("mu", 0.0)), float(cfg.get("sigma", 0.5)), size=num_clients)
    else:
        raise ResourceConfigError(f"resources.distribution must be 'uniform' or 'lognormal', got {dist!r}")
    jitter = float(cfg.get("jitter", 0.15))
    if not 0 <= jitter < 1:
        raise ResourceConfigError(f"resources.jitter must be in [0, 1), got {jitter}")
    factors = rng.uniform(1 - jitter, 1 + jitter, size=(num_clients, len(RESOURCE_NAMES)))
    return base[:, None] * factors


def heterogeneity_scores(values: np.ndarray) -> np.ndarray:
    """Min over resources of each resource normalised by its maximum over clients (in (0, 1])."""
    return (values / values.max(axis=0, keepdims=True)).min(axis=1)


def tier_thresholds(cfg: dict[str, Any]) -> list[float]:
    """The thresholds a ``tiers`` section uses: its own, or equal quantile splits when it names none."""
    count = int(cfg["count"])
    thresholds = cfg.get("thresholds")
    if thresholds is None:
        if cfg.get("method", "quantile") != "quantile":
            raise ResourceConfigError("tiers.thresholds is required when tiers.method is 'absolute'")
        thresholds = [k / count for k in range(1, count)]
    return [float(t) for t in thresholds]


def assign_tiers(scores: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Tier per client, 1 = highest scores. Thresholds are score quantiles or absolute scores."""
    count = int(cfg["count"])
    method = cfg.get("method", "quantile")
    thresholds = tier_thresholds(cfg)
    if any(b <= a for a, b in pairwise(thresholds)):
        raise ResourceConfigError(
            f"tiers.thresholds: {thresholds} is not in strictly increasing order; allowed: strictly "
            f"increasing values, e.g. {sorted(set(thresholds))} (thresholds are never sorted for you)"
        )
    if len(thresholds) != count - 1:
        raise ResourceConfigError(f"tiers: {count} tiers need {count - 1} thresholds, got {len(thresholds)}")
    if method == "quantile":
        if not all(0 < t < 1 for t in thresholds):
            raise ResourceConfigError(f"tiers: quantile thresholds must lie in (0, 1), got {thresholds}")
        cuts = np.quantile(scores, thresholds)
    elif method == "absolute":
        cuts = np.asarray(thresholds)
    else:
        raise ResourceConfigError(f"tiers.method must be 'quantile' or 'absolute', got {method!r}")
    # number of cuts a score reaches: 0 → weakest tier (count), count-1 → tier 1
    above = np.searchsorted(cuts, scores, side="right")
    return (count - above).astype(int)


def build_profiles(
    num_clients: int, seed: int, resources_cfg: dict[str, Any], tiers_cfg: dict[str, Any]
) -> list[ClientProfile]:
    values = sample_resources(num_clients, seed, resources_cfg)
    scores = heterogeneity_scores(values)
    tiers = assign_tiers(scores, tiers_cfg)
    devices: list[Device | None] = [None] * num_clients
    if resources_cfg.get("devices") is not None:
        relative = {name: values[:, k] for k, name in enumerate(RESOURCE_NAMES)}
        devices = list(draw_devices(relative, scores, resources_cfg["devices"]))
    return [
        ClientProfile(i, float(v[0]), float(v[1]), float(v[2]), float(s), int(t), d)
        for i, (v, s, t, d) in enumerate(zip(values, scores, tiers, devices, strict=True))
    ]


def profiles_from_json(rows: list[dict[str, Any]]) -> list[ClientProfile]:
    return [
        ClientProfile(**{**row, "device": Device(**row["device"]) if row.get("device") else None})
        for row in rows
    ]
