"""Splitting a training set over simulated clients.

Partitioners are pure functions of the labels and a seed: they build their own
``numpy.random.Generator`` and never touch global RNG state. The result maps client id → sorted
sample indices and is written once as an artifact together with a per-client report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Partition = list[np.ndarray]
PARTITIONERS: dict[str, Callable[..., Partition]] = {}


class PartitionError(ValueError):
    """A partition cannot be built with the requested settings."""


def _register(name: str) -> Callable[[Callable[..., Partition]], Callable[..., Partition]]:
    def deco(fn: Callable[..., Partition]) -> Callable[..., Partition]:
        PARTITIONERS[name] = fn
        return fn

    return deco


@_register("iid")
def iid(labels: np.ndarray, num_clients: int, seed: int) -> Partition:
    """Shuffle and deal samples into ``num_clients`` near-equal shards."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    return [np.sort(part) for part in np.array_split(perm, num_clients)]


@_register("dirichlet")
def dirichlet(
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    alpha: float = 0.5,
    min_samples: int = 10,
    max_tries: int = 100,
) -> Partition:
    """Label skew: each class is spread over clients by proportions drawn from Dirichlet(α).

    Small α gives each client few classes. Draws are repeated (same generator) until every client
    holds at least ``min_samples`` samples, as in the common FL benchmark implementations.
    """
    if alpha <= 0:
        raise PartitionError(f"dirichlet alpha must be > 0, got {alpha}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(max_tries):
        shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for cls in classes:
            idx = rng.permutation(np.flatnonzero(labels == cls))
            props = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(props) * len(idx)).astype(int)[:-1]
            for client, part in enumerate(np.split(idx, cuts)):
                shards[client].append(part)
        parts = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(p) for p in parts) >= min_samples:
            return parts
    raise PartitionError(
        f"no Dirichlet(α={alpha}) draw gave every one of {num_clients} clients ≥ {min_samples} samples "
        f"in {max_tries} tries; raise alpha, lower min_samples or use fewer clients"
    )


def make_partition(labels: np.ndarray, num_clients: int, seed: int, method: str, **options: Any) -> Partition:
    if method not in PARTITIONERS:
        raise PartitionError(f"unknown partition method {method!r}; choose one of {sorted(PARTITIONERS)}")
    if not 1 <= num_clients <= len(labels):
        raise PartitionError(f"cannot split {len(labels)} samples over {num_clients} clients")
    parts = PARTITIONERS[method](np.asarray(labels), num_clients, seed, **options)
    if any(len(p) == 0 for p in parts):
        raise PartitionError(f"{method} partition left a client with no samples; use fewer clients")
    return parts


def partition_report(labels: np.ndarray, parts: Partition, num_classes: int) -> list[dict[str, Any]]:
    """Per client: sample count, class histogram and number of distinct classes."""
    rows = []
    for client, idx in enumerate(parts):
        hist = np.bincount(labels[idx], minlength=num_classes)
        rows.append(
            {
                "client": client,
                "samples": len(idx),
                "classes": int((hist > 0).sum()),
                "class_counts": hist.tolist(),
            }
        )
    return rows


def to_json(parts: Partition) -> dict[str, list[int]]:
    return {str(c): p.tolist() for c, p in enumerate(parts)}


def from_json(obj: dict[str, list[int]]) -> Partition:
    return [np.asarray(obj[str(c)], dtype=np.int64) for c in range(len(obj))]
