"""Who a SuperNode is: its client id, its resources and its data, all from its node config.

A real device states what it has when its SuperNode starts (``flower-supernode … --node-config "…"``):

=================  ==========================================================================
key                meaning
=================  ==========================================================================
``client-id``      the client of the fleet this device is (0 … clients.count − 1)
``compute``        compute, storage and bandwidth in the units of ``clients.json``: multiples of
``storage``        what the dense model needs (1.0 affords it exactly); eligibility checks the
``bandwidth``      phase model's cost against them
``tier``           the device's tier (1 = strongest)
``score``          optional heterogeneity score (default: the least of the three resources)
``prepared``       the prepared dataset (``prepared.npz``) and its ``meta.json`` …
``meta``
``partition``      … and ``partition.json``: the node trains on the samples listed for its client
``threads``        optional: CPU threads for local training (default: the training job's)
=================  ==========================================================================

Flower's simulation runtime gives each simulated node only ``partition-id``: that node is client
``partition-id`` of the job's fleet, with the job's profile and data.

Nothing here imports Flower or PyTorch at module level: a SuperNode answers the set-up query (who am I)
without loading either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equitable_fl.resources import RESOURCE_NAMES, ClientProfile

PROFILE_KEYS = ("client-id", *RESOURCE_NAMES, "tier")
DATA_KEYS = ("prepared", "meta", "partition")
SIMULATED = "partition-id"  # Flower's own key on simulated nodes


class NodeConfigError(ValueError):
    """A SuperNode's node config does not say who it is, what it has or where its data is."""


@dataclass(frozen=True)
class NodeIdentity:
    client: int
    resources: dict[str, float] | None  # compute, storage, bandwidth, score; None: the job's profile
    tier: int | None
    data: dict[str, str] | None  # prepared, meta, partition; None: the job's data (simulation)
    threads: int | None = None

    def profile(self, fallback: ClientProfile) -> ClientProfile:
        """This node's profile; the job's row keeps what a node config cannot state (the clock's device)."""
        if self.resources is None or self.tier is None:
            return fallback
        return ClientProfile(
            self.client,
            self.resources["compute"],
            self.resources["storage"],
            self.resources["bandwidth"],
            self.resources["score"],
            self.tier,
            fallback.device,
        )

    def to_record(self) -> dict[str, Any]:
        """The answer to the set-up query (a Flower ``ConfigRecord``'s content)."""
        out: dict[str, Any] = {"client-id": self.client}
        if self.resources is not None and self.tier is not None:
            out |= {**self.resources, "tier": self.tier}
        return out

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> NodeIdentity:
        resources = {k: float(rec[k]) for k in (*RESOURCE_NAMES, "score")} if "tier" in rec else None
        return cls(int(rec["client-id"]), resources, int(rec["tier"]) if "tier" in rec else None, None)


def identify(node_config: Mapping[str, Any]) -> NodeIdentity:
    """Read a node config; a deployment node must give every profile and data key."""
    if "client-id" not in node_config and SIMULATED in node_config:
        return NodeIdentity(int(node_config[SIMULATED]), None, None, None)
    missing = [k for k in (*PROFILE_KEYS, *DATA_KEYS) if k not in node_config]
    if missing:
        raise NodeConfigError(
            f"the node config of this SuperNode lacks {missing}; start it with --node-config "
            "\"client-id=… compute=… storage=… bandwidth=… tier=… prepared='…' meta='…' partition='…'\" "
            "(README 'Run on real devices with Flower')"
        )
    values = {k: float(node_config[k]) for k in RESOURCE_NAMES}
    bad = {k: v for k, v in values.items() if not (math.isfinite(v) and v > 0)}
    if bad:
        raise NodeConfigError(f"node config resources must be positive numbers, got {bad}")
    values["score"] = float(node_config.get("score", min(values.values())))
    threads = node_config.get("threads")
    return NodeIdentity(
        client=int(node_config["client-id"]),
        resources=values,
        tier=int(node_config["tier"]),
        data={k: str(node_config[k]) for k in DATA_KEYS},
        threads=None if threads is None else int(threads),
    )


def node_config_line(profile: ClientProfile, prepared: str, meta: str, partition: str) -> str:
    """The ``--node-config`` value that makes a SuperNode client ``profile.client`` with these files."""
    values: dict[str, Any] = {
        "client-id": profile.client,
        **{k: getattr(profile, k) for k in RESOURCE_NAMES},
        "score": profile.score,
        "tier": profile.tier,
    }
    paths = {"prepared": prepared, "meta": meta, "partition": partition}
    for key, path in paths.items():
        if '"' in path:
            raise NodeConfigError(
                f"{key} path {path!r} contains a double quote, which a node config cannot hold"
            )
    # repr() of a float is its shortest exact form, so the node reads back the very same number
    return " ".join(
        [
            *(f"{k}={v!r}" for k, v in values.items()),
            *(f'{k}="{Path(p).resolve()}"' for k, p in paths.items()),
        ]
    )


def load_node_data(identity: NodeIdentity) -> tuple[Any, Any]:
    """The node's own data (deployment): the prepared dataset and its client's sample indices."""
    import torch

    from equitable_fl import io
    from equitable_fl.data.prepared import load_prepared
    from equitable_fl.data.tensors import TensorData
    from equitable_fl.partition import from_json

    if identity.data is None:
        raise NodeConfigError("this node has no data files in its node config")
    paths = identity.data
    parts = from_json(io.read_json(paths["partition"])["clients"])
    if not 0 <= identity.client < len(parts):
        raise NodeConfigError(
            f"client-id {identity.client} is not in {paths['partition']}, "
            f"which has clients 0…{len(parts) - 1}"
        )
    data = TensorData.from_prepared(load_prepared(paths["prepared"], paths["meta"]))
    return data, torch.from_numpy(parts[identity.client])
