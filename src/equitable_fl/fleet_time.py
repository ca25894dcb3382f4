"""The fleet's clock: every client's device in units, and how long a federated round takes on them.

Resources in :mod:`equitable_fl.resources` are relative budgets ("1.0 affords the dense model"); they
decide eligibility and stay as they are. A :class:`Device` gives the same client units: FLOP/s of
sustained training, download and upload bytes/s, storage bytes. The units come from device classes
(``clients.resources.devices.classes``, weakest first, each with a fleet ``share`` and reference numbers;
defaults and their sources in ``config/README.md``, "Simulated time"). Each quantity is the class
references interpolated log-linearly at the client's rank in the matching relative resource (FLOP/s by
compute, bandwidth by bandwidth, storage by storage): a client ranked in the middle of a class's share
gets exactly that class's reference; clients beyond the weakest or strongest class's middle get that
class's numbers. Why ranks: a client with more relative compute never gets fewer FLOP/s, class shares
hold for any fleet size, and the units need no random draw of their own (they follow from the seeded
resources), so every existing draw, and with it eligibility, stays bit-identical. ``device_class`` is the
class that the client's heterogeneity score falls in.

Round time follows FedScale's completion-time model (``client_metadata.py``: compute + bytes / bandwidth):
each participant downloads the phase's payload, trains its samples (local epochs × shard size) and uploads
the payload; the round lasts as long as its slowest participant. Training FLOPs are billed as the kernels
run them: with dense kernels (``sparse_kernels: false``, the default) a masked model costs the FLOPs of
every weight it holds, so sparsity saves no compute; with sparse kernels only surviving weights count. A
physically smaller (structured) ticket holds fewer weights, so it is cheaper either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

import numpy as np

# Each device quantity and the relative resource whose rank places a client between class references.
QUANTITIES = {
    "flops_per_s": "compute",
    "download_bytes_per_s": "bandwidth",
    "upload_bytes_per_s": "bandwidth",
    "storage_bytes": "storage",
}


class DeviceConfigError(ValueError):
    """The ``clients.resources.devices`` section is invalid."""


@dataclass(frozen=True)
class Device:
    """One client's hardware in units: what the simulated clock charges it for."""

    device_class: str
    flops_per_s: float
    download_bytes_per_s: float
    upload_bytes_per_s: float
    storage_bytes: float
    sparse_kernels: bool = False


@dataclass(frozen=True)
class ClientTime:
    """Seconds one participant spends in a round: download, local training, upload."""

    download: float
    train: float
    upload: float

    @property
    def total(self) -> float:
        return self.download + self.train + self.upload


def _rank_quantiles(values: np.ndarray) -> np.ndarray:
    """Mid-rank of each value in (0, 1): ties share one quantile, so equal resources get equal devices."""
    ordered = np.sort(values)
    below = np.searchsorted(ordered, values, side="left")
    upto = np.searchsorted(ordered, values, side="right")
    return (below + upto) / (2.0 * len(values))


def _classes(cfg: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], np.ndarray]:
    """The classes and their cumulative shares (normalised to end at 1), checked weakest first."""
    classes = list(cfg.get("classes") or [])
    if not classes:
        raise DeviceConfigError("clients.resources.devices.classes: at least one device class is needed")
    shares = np.array([float(c["share"]) for c in classes])
    if np.any(shares <= 0):
        raise DeviceConfigError(f"clients.resources.devices.classes: every share must be > 0, got {shares}")
    for q in QUANTITIES:
        refs = [float(c[q]) for c in classes]
        if any(r <= 0 for r in refs) or any(b < a for a, b in pairwise(refs)):
            raise DeviceConfigError(
                f"clients.resources.devices.classes: {q} must be > 0 and must not decrease from one class to "
                f"the next (list classes weakest first), got {refs}"
            )
    return classes, np.cumsum(shares) / shares.sum()


def draw_devices(
    relative: Mapping[str, np.ndarray], scores: np.ndarray, cfg: Mapping[str, Any]
) -> list[Device]:
    """Every client's :class:`Device` from its relative resources (by name) and heterogeneity score."""
    classes, cum = _classes(cfg)
    middles = cum - np.diff(np.concatenate([[0.0], cum])) / 2.0
    columns = {}
    for q, resource in QUANTITIES.items():
        log_refs = np.log([float(c[q]) for c in classes])
        u = _rank_quantiles(np.asarray(relative[resource], dtype=float))
        columns[q] = np.exp(np.interp(u, middles, log_refs))
    labels = np.searchsorted(cum[:-1], _rank_quantiles(np.asarray(scores, dtype=float)), side="right")
    sparse = bool(cfg.get("sparse_kernels", False))
    return [
        Device(
            device_class=str(classes[int(k)]["name"]),
            sparse_kernels=sparse,
            **{q: float(column[i]) for q, column in columns.items()},
        )
        for i, k in enumerate(labels)
    ]


def billed_flops_per_sample(model_flops: float, surviving_flops: float, sparse_kernels: bool) -> float:
    """Training FLOPs per sample a device pays: every weight of the model with dense kernels."""
    return float(surviving_flops if sparse_kernels else model_flops)


def client_time(
    device: Device, payload_bytes: float, samples: float, model_flops: float, surviving_flops: float
) -> ClientTime:
    """One participant's round: payload / download rate, samples × billed FLOPs / FLOP/s, payload / upload."""
    flops = billed_flops_per_sample(model_flops, surviving_flops, device.sparse_kernels)
    return ClientTime(
        download=payload_bytes / device.download_bytes_per_s,
        train=samples * flops / device.flops_per_s,
        upload=payload_bytes / device.upload_bytes_per_s,
    )


def round_seconds(times: Iterable[ClientTime]) -> float:
    """The round lasts as long as its slowest participant; a round with nobody in it takes no time."""
    return max((t.total for t in times), default=0.0)


class _Settings(Protocol):
    local_epochs: int


class _Task(Protocol):
    client: int
    settings: _Settings


@dataclass(frozen=True)
class RoundClock:
    """The strategy's ``round_time`` hook for one phase: seconds of a round from its client tasks.

    Every task it is given is charged: with a dynamic fleet (``clients.availability``) the strategy gives
    it the cohort members that finished, on their devices as they are that round
    (:class:`equitable_fl.dynamics.fleet.FleetDynamics`). ``samples`` is each client's shard size,
    trained ``local_epochs`` times.
    """

    devices: Sequence[Device]
    samples: Sequence[int]
    payload_bytes: float
    model_flops_per_sample: float
    surviving_flops_per_sample: float

    @classmethod
    def for_fleet(
        cls,
        devices: Sequence[Device | None],
        samples: Sequence[int],
        *,
        payload_bytes: float,
        model_flops_per_sample: float,
        surviving_flops_per_sample: float,
    ) -> RoundClock | None:
        """The clock of a fleet, or None when its clients have no devices (a clients.json from before)."""
        if not devices or any(d is None for d in devices):
            return None
        return cls(
            [d for d in devices if d is not None],
            list(samples),
            payload_bytes,
            model_flops_per_sample,
            surviving_flops_per_sample,
        )

    def client_times(self, tasks: Sequence[_Task]) -> list[ClientTime]:
        return [
            client_time(
                self.devices[t.client],
                self.payload_bytes,
                self.samples[t.client] * t.settings.local_epochs,
                self.model_flops_per_sample,
                self.surviving_flops_per_sample,
            )
            for t in tasks
        ]

    def __call__(self, rnd: int, tasks: Sequence[_Task]) -> float:
        return round_seconds(self.client_times(tasks))
