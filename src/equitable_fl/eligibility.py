"""Who may join a phase: tier admission checked against what the phase's model really costs.

A client's budgets are its resources times the dense model's cost (see :mod:`equitable_fl.resources`).
The phase model's cost is measured: storage is the length of its sparse encoding, compute its
training FLOPs per sample counting surviving weights only, and traffic the bytes of one download plus
one upload per round. A client joins only if its tier is admitted *and* every cost fits its budget;
otherwise the record says why not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from equitable_fl.cost import ModelCost
from equitable_fl.resources import ClientProfile

# resource name → ModelCost field it pays for
_PAYS_FOR = {
    "storage": "storage_bytes",
    "compute": "train_flops_per_sample",
    "bandwidth": "transfer_bytes_per_round",
}


def decide(
    profiles: Sequence[ClientProfile],
    admitted_tiers: Sequence[int] | None,
    model_cost: ModelCost,
    dense_cost: ModelCost,
    check_budget: bool = True,
) -> dict[str, Any]:
    """Eligibility record: per client the verdict and reasons, plus the eligible ids.

    ``admitted_tiers`` None admits every tier (the vanilla baseline); its rows then carry no tier, since
    one vanilla run serves every variant that moves only the tier thresholds (see ``Experiment.lineage``).
    """
    clients = []
    eligible = []
    for p in sorted(profiles, key=lambda prof: prof.client):
        reasons = []
        if admitted_tiers is not None and p.tier not in admitted_tiers:
            reasons.append(f"tier {p.tier} not admitted in this phase (admits {sorted(admitted_tiers)})")
        if check_budget:
            for resource, field in _PAYS_FOR.items():
                need = getattr(model_cost, field)
                budget = getattr(p, resource) * getattr(dense_cost, field)
                if need > budget:
                    reasons.append(f"{resource}: model needs {need:.4g} {field}, budget is {budget:.4g}")
        if not reasons:
            eligible.append(p.client)
        row: dict[str, Any] = {"client": p.client, "eligible": not reasons, "reasons": reasons}
        if admitted_tiers is not None:
            row["tier"] = p.tier
        clients.append(row)
    return {
        "admitted_tiers": None if admitted_tiers is None else sorted(admitted_tiers),
        "check_budget": check_budget,
        "model_cost": model_cost.as_dict(),
        "dense_cost": dense_cost.as_dict(),
        "eligible": eligible,
        "clients": clients,
    }
