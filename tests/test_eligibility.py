"""Eligibility: tier admission and resource budgets against the measured cost of a phase's model."""

from __future__ import annotations

import pytest

from equitable_fl.eligibility import ModelCost, decide
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, measure_cost
from equitable_fl.pruning import PruneSettings, prune
from equitable_fl.resources import ClientProfile

DENSE = ModelCost(storage_bytes=1000.0, train_flops_per_sample=2000.0, transfer_bytes_per_round=4000.0)
HALF = ModelCost(storage_bytes=500.0, train_flops_per_sample=1000.0, transfer_bytes_per_round=2000.0)


def profile(client: int, tier: int = 1, compute: float = 1.0, storage: float = 1.0, bandwidth: float = 1.0):
    return ClientProfile(
        client, compute, storage, bandwidth, score=min(compute, storage, bandwidth), tier=tier
    )


def verdict(record: dict, client: int) -> dict:
    (row,) = [c for c in record["clients"] if c["client"] == client]
    return row


def test_tier_not_admitted_is_excluded_with_tier_reason() -> None:
    profiles = [profile(0, tier=1), profile(1, tier=2), profile(2, tier=3)]
    record = decide(profiles, [1, 2], HALF, DENSE)
    assert record["eligible"] == [0, 1]
    row = verdict(record, 2)
    assert row["eligible"] is False
    assert row["tier"] == 3
    assert len(row["reasons"]) == 1
    assert "tier 3" in row["reasons"][0]
    assert "not admitted" in row["reasons"][0]
    assert verdict(record, 0)["reasons"] == [] and verdict(record, 1)["reasons"] == []


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("storage", "storage_bytes"),
        ("compute", "train_flops_per_sample"),
        ("bandwidth", "transfer_bytes_per_round"),
    ],
)
def test_each_resource_over_budget_excludes_naming_it(resource: str, field: str) -> None:
    # 0.49 × dense is just short of the half-size model in this one resource only
    weak = profile(0, **{resource: 0.49})
    record = decide([weak, profile(1)], [1], HALF, DENSE)
    row = verdict(record, 0)
    assert row["eligible"] is False
    assert len(row["reasons"]) == 1
    reason = row["reasons"][0]
    assert reason.startswith(f"{resource}:")
    assert field in reason
    assert record["eligible"] == [1]


def test_all_reasons_are_listed() -> None:
    poor = profile(0, tier=3, compute=0.1, storage=0.1, bandwidth=0.1)
    row = verdict(decide([poor], [1], HALF, DENSE), 0)
    heads = [r.split(" ")[0] for r in row["reasons"]]
    assert heads[0] == "tier"
    assert sorted(heads[1:]) == ["bandwidth:", "compute:", "storage:"]


def test_exactly_at_budget_is_eligible() -> None:
    exact = profile(0, compute=0.5, storage=0.5, bandwidth=0.5)
    record = decide([exact], [1], HALF, DENSE)
    assert record["eligible"] == [0]
    assert verdict(record, 0) == {"client": 0, "tier": 1, "eligible": True, "reasons": []}
    # and the dense model at resources exactly 1.0
    assert decide([profile(1)], [1], DENSE, DENSE)["eligible"] == [1]


def test_admitted_none_admits_every_tier() -> None:
    profiles = [profile(c, tier=t) for c, t in enumerate([3, 1, 2, 3])]
    record = decide(profiles, None, HALF, DENSE)
    assert record["eligible"] == [0, 1, 2, 3]
    assert record["admitted_tiers"] is None


def test_check_budget_false_ignores_budgets_but_not_tiers() -> None:
    profiles = [profile(0, compute=0.01, storage=0.01, bandwidth=0.01), profile(1, tier=2, compute=0.01)]
    record = decide(profiles, [1], DENSE, DENSE, check_budget=False)
    assert record["eligible"] == [0]
    assert record["check_budget"] is False
    assert verdict(record, 1)["reasons"][0].startswith("tier 2")
    assert decide(profiles, [1], DENSE, DENSE, check_budget=True)["eligible"] == []


def test_record_layout() -> None:
    record = decide([profile(0)], [2, 1], HALF, DENSE)
    assert record["admitted_tiers"] == [1, 2]
    assert record["model_cost"] == {
        "storage_bytes": 500.0,
        "train_flops_per_sample": 1000.0,
        "transfer_bytes_per_round": 2000.0,
    }
    assert record["dense_cost"]["storage_bytes"] == 1000.0


def test_eligible_sorted_and_matches_verdicts() -> None:
    profiles = [
        profile(c, tier=1 + c % 3, compute=0.3 + 0.05 * c, storage=0.6, bandwidth=0.9) for c in range(12)
    ]
    record = decide(profiles, [1, 2], HALF, DENSE)
    assert [c["client"] for c in record["clients"]] == list(range(12))
    assert record["eligible"] == sorted(record["eligible"])
    assert record["eligible"] == [c["client"] for c in record["clients"] if c["eligible"]]
    for c in record["clients"]:
        assert c["eligible"] == (not c["reasons"])
    # expected by hand: tier ∈ {1, 2} and compute 0.3 + 0.05c ≥ 0.5 ⇔ c ≥ 4
    assert record["eligible"] == [c for c in range(12) if c % 3 != 2 and c >= 4]


def test_eligible_sorted_even_when_profiles_are_not() -> None:
    profiles = [profile(c) for c in (5, 2, 9, 0)]
    record = decide(profiles, [1], HALF, DENSE)
    assert record["eligible"] == [0, 2, 5, 9]


# --- with a real model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_costs() -> tuple[ModelCost, ModelCost]:
    spec = ModelSpec.from_config({"arch": "cnn28", "channels": [4, 8], "hidden": 16}, (1, 28, 28), 10)
    model = spec.init(0)
    state = model.state_dict()
    dense_mask = Mask.ones_like(state, spec.prunable(model))
    settings = PruneSettings(rate=0.5, output_rate_factor=1.0)
    pruned = prune("layerwise", state, prune("layerwise", state, dense_mask, settings), settings)
    assert pruned.density == pytest.approx(0.25, abs=0.01)
    dense_cost, _ = measure_cost(model, spec, state, dense_mask)
    pruned_cost, _ = measure_cost(model, spec, state, pruned)
    return dense_cost, pruned_cost


def test_real_pruned_model_is_cheaper_in_every_resource(real_costs: tuple[ModelCost, ModelCost]) -> None:
    dense_cost, pruned_cost = real_costs
    for field in ("storage_bytes", "train_flops_per_sample", "transfer_bytes_per_round"):
        ratio = getattr(pruned_cost, field) / getattr(dense_cost, field)
        assert 0.2 < ratio < 0.4, field


def test_real_model_budget(real_costs: tuple[ModelCost, ModelCost]) -> None:
    dense_cost, pruned_cost = real_costs
    mid = profile(0, compute=0.4, storage=0.4, bandwidth=0.4)
    low = profile(1, compute=0.1, storage=0.1, bandwidth=0.1)
    strong = profile(2)
    on_dense = decide([mid, low, strong], None, dense_cost, dense_cost)
    on_pruned = decide([mid, low, strong], None, pruned_cost, dense_cost)
    assert on_dense["eligible"] == [2]
    assert on_pruned["eligible"] == [0, 2]
    assert len(verdict(on_dense, 0)["reasons"]) == 3
    assert len(verdict(on_pruned, 1)["reasons"]) == 3
