"""Splitting a training set over simulated clients.

Partitioners are pure functions of the labels and a seed: they build their own
``numpy.random.Generator`` and never touch global RNG state. The result maps client id → sorted
sample indices and is written once as an artifact together with a per-client report.
"""

from __future__ import annotations

import inspect
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


def _shards_per_class(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` shards apportioned to classes by size (largest remainder), at least one per class.

    Deterministic (ties go to the lower class index); a class never gets more shards than samples.
    """
    quota = counts * total / counts.sum()
    alloc = np.maximum(1, np.floor(quota)).astype(int)
    while alloc.sum() > total:  # the floor of 1 gave small classes more than their quota
        over = np.where(alloc > 1, alloc - quota, -np.inf)
        alloc[int(np.argmax(over))] -= 1
    while alloc.sum() < total:
        short = np.where(alloc < counts, quota - alloc, -np.inf)
        alloc[int(np.argmax(short))] += 1
    return alloc


@_register("shards")
def shards(labels: np.ndarray, num_clients: int, seed: int, shards_per_client: int = 2) -> Partition:
    """Pathological label skew (McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks
    from Decentralized Data", §3): sort by label, cut into ``num_clients × shards_per_client`` shards,
    deal each client ``shards_per_client`` of them at random.

    Shards are cut inside each class (a class of n samples gets a share of the shards proportional to n,
    at least one), so no shard straddles two labels and a client holds at most ``shards_per_client``
    labels, whatever the class sizes; the paper's MNIST split (200 shards of 300) is the balanced case.
    Every sample goes to exactly one client. The order inside a class and the dealing are seeded.
    """
    spc = int(shards_per_client)
    classes, counts = np.unique(labels, return_counts=True)
    total = num_clients * spc
    if spc < 1:
        raise PartitionError(f"shards_per_client must be ≥ 1, got {shards_per_client}")
    if not len(classes) <= total <= len(labels):
        raise PartitionError(
            f"{num_clients} clients × shards_per_client {spc} = {total} shards, but shards need "
            f"{len(classes)} ≤ shards ≤ {len(labels)} (one class each, at least one sample each); "
            f"choose shards_per_client between {-(-len(classes) // num_clients)} and "
            f"{len(labels) // num_clients}"
        )
    rng = np.random.default_rng([seed, 0x5AAD])
    pieces: list[np.ndarray] = []
    for cls, n_shards in zip(classes, _shards_per_class(counts, total), strict=True):
        pieces += np.array_split(rng.permutation(np.flatnonzero(labels == cls)), n_shards)
    dealt = rng.permutation(total).reshape(num_clients, spc)
    return [np.sort(np.concatenate([pieces[k] for k in row])) for row in dealt]


def method_options(method: str) -> dict[str, Any]:
    """The options partitioner ``method`` takes, with their defaults (the config documents these)."""
    params = list(inspect.signature(PARTITIONERS[method]).parameters.values())[3:]
    return {p.name: p.default for p in params}


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
