"""The Equitable-FL strategy on its own: eligibility, seeded cohorts, masked FedAvg and accounting.

No engine and no training here: the strategy is the policy, and each of its decisions is checked
directly against what the paper's method says it must be.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from equitable_fl.config import SchemaError, TrainSettings
from equitable_fl.cost import ModelCost
from equitable_fl.federation.client import ClientTask, ClientUpdate
from equitable_fl.federation.strategy import StrategyHooks, fedavg, sample_clients, stream_seed
from equitable_fl.records import RoundRecord

from .tiny import COST, fleet, plan, profile, settings, strategy

# ---------------------------------------------------------------- fedavg


def test_fedavg_weighted_mean_hand_computed() -> None:
    states = [
        {"w": torch.tensor([6.0, 0.0]), "b": torch.tensor([[1.0]])},
        {"w": torch.tensor([0.0, 6.0]), "b": torch.tensor([[2.0]])},
        {"w": torch.tensor([2.0, -2.0]), "b": torch.tensor([[4.0]])},
    ]
    out = fedavg(states, [1.0, 2.0, 3.0])
    # w: (1·6 + 2·0 + 3·2)/6 = 2, (1·0 + 2·6 − 3·2)/6 = 1;  b: (1 + 4 + 12)/6 = 17/6
    assert out["w"].tolist() == [2.0, 1.0]
    assert out["b"].shape == (1, 1)
    assert out["b"].item() == pytest.approx(17 / 6, abs=1e-6)
    assert out["w"].dtype == torch.float32


def test_fedavg_equal_weights_is_plain_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(5, 4, generator=gen)} for _ in range(4)]
    out = fedavg(states, [7, 7, 7, 7])
    expected = torch.stack([s["w"] for s in states]).double().mean(0).float()
    torch.testing.assert_close(out["w"], expected, rtol=0, atol=1e-7)


def test_fedavg_single_state_returns_it() -> None:
    state = {"w": torch.randn(3, 3), "b": torch.randn(3)}
    out = fedavg([state], [42])
    for k in state:
        assert torch.equal(out[k], state[k])
    assert out["w"].data_ptr() != state["w"].data_ptr()


def test_fedavg_does_not_mutate_inputs() -> None:
    states = [{"w": torch.ones(3)}, {"w": torch.zeros(3)}]
    fedavg(states, [1, 3])
    assert states[0]["w"].tolist() == [1.0, 1.0, 1.0] and states[1]["w"].tolist() == [0.0, 0.0, 0.0]


def test_fedavg_errors() -> None:
    with pytest.raises(ValueError, match=r"at least one"):
        fedavg([], [])
    with pytest.raises(ValueError):
        fedavg([{"w": torch.ones(2)}, {"w": torch.ones(2)}], [1.0])  # one weight for two states


def test_fedavg_keeps_exact_zeros_where_all_clients_are_zero() -> None:
    m = torch.tensor([1.0, 0.0, 1.0, 0.0])
    states = [{"w": torch.randn(4) * m} for _ in range(3)]
    out = fedavg(states, [3, 1, 5])
    assert out["w"][1].item() == 0.0 and out["w"][3].item() == 0.0


# ---------------------------------------------------------------- seeds and sampling


def test_stream_seed_deterministic_and_distinct() -> None:
    assert stream_seed(1, 2, 3, 4) == stream_seed(1, 2, 3, 4)
    seeds = {stream_seed(0, 1, r, c) for r in range(5) for c in range(5)}
    assert len(seeds) == 25
    assert all(0 <= x < 2**63 for x in seeds)


def test_sample_clients_seeded_and_independent_of_global_rng() -> None:
    eligible = list(range(3, 40, 2))
    s = settings(client_fraction=0.3)
    torch.manual_seed(1)
    np.random.seed(1)
    first = sample_clients(eligible, s, seed=7, stream=2, rnd=3)
    torch.manual_seed(999)
    np.random.seed(999)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    second = sample_clients(eligible, s, seed=7, stream=2, rnd=3)
    assert first == second
    assert len(first) == math.ceil(0.3 * len(eligible))
    assert set(first) <= set(eligible) and first == sorted(set(first))
    # the global RNGs were not consumed
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    # other rounds / streams / seeds draw other subsets (checked over several rounds)
    others = [sample_clients(eligible, s, seed=7, stream=2, rnd=r) for r in range(4, 10)]
    assert any(o != first for o in others)
    assert any(sample_clients(eligible, s, seed=8, stream=2, rnd=r) != first for r in (3, 4, 5))
    assert any(sample_clients(eligible, s, seed=7, stream=3, rnd=r) != first for r in (3, 4, 5))


def test_sample_clients_min_clients_and_bounds() -> None:
    assert sample_clients([], settings(), 0, 0, 1) == []
    few = sample_clients(list(range(10)), settings(client_fraction=0.01, min_clients=3), 0, 1, 1)
    assert len(few) == 3
    capped = sample_clients([4, 8], settings(client_fraction=0.1, min_clients=5), 0, 1, 1)
    assert capped == [4, 8]
    assert sample_clients([9, 1, 5], settings(client_fraction=1.0), 0, 1, 1) == [1, 5, 9]


def test_train_settings_from_config_fills_schema_defaults_and_rejects_unknown() -> None:
    partial = TrainSettings.from_config({"lr": 0.1, "batch_size": 4})
    assert partial.as_dict() == {
        "local_epochs": 2,
        "batch_size": 4,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "client_fraction": 1.0,
        "min_clients": 1,
        "eval_batch_size": 1000,
    }
    assert partial == TrainSettings(**partial.as_dict())
    with pytest.raises(SchemaError, match="lrate"):
        TrainSettings.from_config({"lrate": 0.1})
    with pytest.raises(SchemaError, match=r"client_fraction"):
        TrainSettings.from_config({"client_fraction": 0.0})


# ---------------------------------------------------------------- eligibility


def test_strategy_rejects_mismatched_samples_and_profiles() -> None:
    with pytest.raises(ValueError, match=r"3 client partitions but 4 client profiles.*clients\.count"):
        strategy(plan(), fleet([1, 1, 1, 1]), samples=[10, 10, 10])
    with pytest.raises(ValueError, match=r"5 client partitions but 4 client profiles"):
        strategy(plan(), fleet([1, 1, 1, 1]), samples=[10] * 5)


def test_clients_of_non_admitted_tiers_or_short_budget_never_join_a_cohort() -> None:
    dense = ModelCost(storage_bytes=1000.0, train_flops_per_sample=2000.0, transfer_bytes_per_round=4000.0)
    half = ModelCost(storage_bytes=500.0, train_flops_per_sample=1000.0, transfer_bytes_per_round=2000.0)
    profiles = [
        profile(0, tier=1),
        profile(1, tier=2),
        profile(2, tier=3),  # tier not admitted
        profile(3, tier=1, storage=0.4),  # cannot store the half-size model
        profile(4, tier=2, bandwidth=0.49),  # cannot move it every round
        profile(5, tier=2, compute=0.5),  # exactly affords it
        profile(6, tier=3, compute=9.0, storage=9.0, bandwidth=9.0),  # rich, but tier not admitted
    ]
    s = strategy(
        plan(tiers=(1, 2), check_budget=True, train=settings(client_fraction=0.5)),
        profiles,
        model_cost=half,
        dense_cost=dense,
    )
    assert s.eligible == [0, 1, 5]
    seen: set[int] = set()
    for rnd in range(1, 25):
        cohort = s.cohort(rnd)
        assert set(cohort) <= {0, 1, 5}
        assert len(cohort) == 2  # ceil(0.5 × 3)
        # offering every client as available does not let an ineligible one in
        assert set(s.cohort(rnd, available=range(7))) <= {0, 1, 5}
        seen |= set(cohort)
    assert seen == {0, 1, 5}  # every eligible client is drawn at some point
    verdicts = {c["client"]: c for c in s.participation["clients"]}
    assert "tier 3 not admitted" in verdicts[2]["reasons"][0]
    assert verdicts[3]["reasons"][0].startswith("storage:")
    assert verdicts[4]["reasons"][0].startswith("bandwidth:")
    assert verdicts[6]["eligible"] is False


def test_budget_ignored_without_check_budget_and_all_tiers_when_none_admitted() -> None:
    profiles = [profile(0, tier=1), profile(1, tier=3, storage=0.01), profile(2, tier=2, compute=0.01)]
    big = ModelCost(storage_bytes=10.0, train_flops_per_sample=10.0, transfer_bytes_per_round=10.0)
    tiny = ModelCost(storage_bytes=1.0, train_flops_per_sample=1.0, transfer_bytes_per_round=1.0)
    vanilla_all = strategy(plan(tiers=None, check_budget=False), profiles, model_cost=big, dense_cost=tiny)
    assert vanilla_all.eligible == [0, 1, 2]
    assert vanilla_all.cohort(1) == [0, 1, 2]
    fits = strategy(plan(tiers=None, check_budget=True), profiles, model_cost=tiny, dense_cost=tiny)
    assert fits.eligible == [0]


def test_check_runnable_names_the_phase_and_the_fix() -> None:
    s = strategy(plan(tiers=(3,)), fleet([1, 2, 2]))
    assert s.eligible == []
    assert s.cohort(1) == [] and s.configure_round(1) == []
    with pytest.raises(RuntimeError, match=r"phase 1: no client is eligible.*tier thresholds.*check_budget"):
        s.check_runnable()


# ---------------------------------------------------------------- the cohort


def test_cohort_seeded_and_independent_of_global_rng() -> None:
    profiles = fleet([1] * 20)
    half = settings(client_fraction=0.5)
    a = strategy(plan(seed=7, stream=2, train=half), profiles)
    b = strategy(plan(seed=7, stream=2, train=half), profiles)
    torch.manual_seed(1)
    np.random.seed(1)
    first = [a.cohort(r) for r in range(1, 7)]
    torch.manual_seed(999)
    np.random.seed(999)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    assert [b.cohort(r) for r in range(1, 7)] == first  # a fresh strategy, same plan: same cohorts
    assert [a.cohort(r) for r in range(1, 7)] == first  # asking again changes nothing
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(len(c) == 10 and c == sorted(set(c)) for c in first)
    assert len({tuple(c) for c in first}) > 1  # rounds differ
    other_seed = strategy(plan(seed=8, stream=2, train=half), profiles)
    other_stream = strategy(plan(seed=7, stream=3, train=half), profiles)
    assert [other_seed.cohort(r) for r in range(1, 7)] != first
    assert [other_stream.cohort(r) for r in range(1, 7)] != first


def test_cohort_honours_client_fraction_and_min_clients() -> None:
    profiles = fleet([1] * 10)
    assert strategy(plan(), profiles).cohort(1) == list(range(10))
    assert len(strategy(plan(train=settings(client_fraction=0.25)), profiles).cohort(1)) == 3
    s = strategy(plan(train=settings(client_fraction=0.01, min_clients=4)), profiles)
    assert len(s.cohort(1)) == 4
    # min_clients counts the clients that are there: never more than are eligible and available
    assert s.cohort(1, available=[2, 7]) == [2, 7]
    # the fraction applies to the eligible clients that are available, not to the whole fleet
    q = strategy(plan(train=settings(client_fraction=0.5)), profiles)
    assert len(q.cohort(1, available=[0, 1, 2, 3])) == 2


def test_cohort_is_drawn_from_eligible_and_available() -> None:
    profiles = fleet([1, 2, 1, 1, 2, 1, 1, 1])
    eligible = [0, 2, 3, 5, 6, 7]
    s = strategy(plan(tiers=(1,), train=settings(client_fraction=0.5)), profiles)
    assert s.eligible == eligible
    for rnd in range(1, 15):
        available = {c for c in range(8) if (c + rnd) % 3 != 0}
        cohort = s.cohort(rnd, available)
        assert set(cohort) <= set(eligible) & available
        assert len(cohort) == math.ceil(0.5 * len(set(eligible) & available))
    assert s.cohort(1, available=[]) == []
    assert s.cohort(1, available=[1, 4]) == []  # available, but not eligible


def test_availability_hook_keeps_dropped_clients_out() -> None:
    def online(rnd: int) -> set[int]:
        return {c for c in range(6) if c != rnd % 6}  # client rnd mod 6 is offline in round rnd

    s = strategy(plan(tiers=None), fleet([1, 2, 3, 1, 2, 3]), hooks=StrategyHooks(availability=online))
    no_hook = strategy(plan(tiers=None), fleet([1, 2, 3, 1, 2, 3]))
    assert no_hook.available(3) is None and no_hook.cohort(3, no_hook.available(3)) == list(range(6))
    for rnd in range(1, 8):
        available = s.available(rnd)
        assert set(available) == online(rnd)
        tasks = s.configure_round(rnd, available)
        assert [t.client for t in tasks] == sorted(online(rnd))
        assert rnd % 6 not in [t.client for t in tasks]


def test_configure_round_gives_each_client_its_own_seeded_task() -> None:
    train = settings(client_fraction=0.5, batch_size=4)
    s = strategy(plan(seed=5, stream=2, train=train), fleet([1] * 6))
    tasks = s.configure_round(3)
    assert [t.client for t in tasks] == s.cohort(3)
    for t in tasks:
        assert isinstance(t, ClientTask)
        assert t.round == 3 and t.settings is train
        assert t.seed == stream_seed(5, 2, 3, t.client)
    assert len({t.seed for t in tasks}) == len(tasks)
    assert s.configure_round(3) == tasks


# ---------------------------------------------------------------- aggregation


def _updates(n_examples: list[float], shapes: dict[str, tuple[int, ...]], seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [
        ClientUpdate(
            client=i,
            state={k: torch.randn(shape, generator=gen) for k, shape in shapes.items()},
            num_examples=n,
            train_loss=float(i + 1),
        )
        for i, n in enumerate(n_examples)
    ]


def test_aggregate_is_sample_weighted_mean_with_pruned_weights_exactly_zero() -> None:
    shapes = {"conv.weight": (3, 2, 2), "conv.bias": (3,), "out.weight": (4, 5)}
    mask = {
        "conv.weight": torch.rand(3, 2, 2, generator=torch.Generator().manual_seed(1)) < 0.5,
        "out.weight": torch.ones(4, 5, dtype=torch.bool),
    }
    mask["out.weight"][0, :] = False  # a whole output unit pruned
    n = [15.0, 20.0, 25.0]
    updates = _updates(n, shapes)
    # every update carries nonzero values where the mask prunes
    assert all(bool((u.state["conv.weight"][~mask["conv.weight"]] != 0).all()) for u in updates)
    before = [{k: v.clone() for k, v in u.state.items()} for u in updates]
    s = strategy(plan(), fleet([1, 1, 1]), samples=[15, 20, 25], mask=mask)
    for _ in range(2):  # a second aggregation (cached pruned positions) behaves the same
        out = s.aggregate(updates, {})
        assert set(out) == set(shapes)
        for name in shapes:
            by_hand = sum(w * u.state[name].double() for w, u in zip(n, updates, strict=True)) / sum(n)
            assert out[name].dtype == torch.float32
            if name in mask:
                pruned = ~mask[name]
                assert bool((out[name][pruned] == 0).all()), f"{name}: a pruned weight is not exactly 0"
                assert bool((out[name][pruned].view(torch.int32) == 0).all())  # +0.0, not -0.0
                by_hand = by_hand.masked_fill(pruned, 0.0)
            torch.testing.assert_close(out[name].double(), by_hand, rtol=1e-6, atol=1e-7)
    assert int((~mask["conv.weight"]).sum()) > 0
    for u, b in zip(updates, before, strict=True):  # the updates are not modified
        assert all(torch.equal(u.state[k], b[k]) for k in b)


def test_aggregate_weights_by_num_examples_not_by_client_count() -> None:
    updates = [
        ClientUpdate(0, {"w": torch.tensor([0.0, 10.0])}, num_examples=1.0, train_loss=0.0),
        ClientUpdate(1, {"w": torch.tensor([10.0, 0.0])}, num_examples=9.0, train_loss=0.0),
    ]
    out = strategy(plan(), fleet([1, 1])).aggregate(updates, {})
    assert out["w"].tolist() == [9.0, 1.0]


# ---------------------------------------------------------------- accounting


def test_account_bytes_samples_and_losses() -> None:
    train = settings(local_epochs=3)
    s = strategy(plan(train=train, offset=10), fleet([1, 1, 1, 1]), samples=[15, 20, 25, 40])
    tasks = s.configure_round(2)
    assert len(tasks) == 4
    updates = _updates([15.0, 20.0, 25.0], {"w": (2,)})  # one client of the cohort never answered
    record = s.account(2, tasks, updates, accuracy=0.75, loss=1.5, train_seconds=3.25)
    assert isinstance(record, RoundRecord)
    assert s.payload_bytes == int(COST.storage_bytes) == 1234
    assert record.bytes_down == 1234 * 4  # every cohort member downloads the model
    assert record.bytes_up == 1234 * 3  # only clients that answered upload
    assert record.communication.bytes_communicated == 1234 * 7
    assert record.round == 2 and record.global_round == 12
    assert record.clients == [0, 1, 2]
    assert record.samples == (15 + 20 + 25) * 3
    assert record.train_loss == pytest.approx((15 * 1 + 20 * 2 + 25 * 3) / 60)
    assert (record.accuracy, record.loss, record.train_seconds) == (0.75, 1.5, 3.25)
    assert record.simulated_seconds is None
    assert "simulated_seconds" not in record.metrics()
    assert "train_seconds" not in record.metrics()


def test_payload_is_the_models_storage_bytes() -> None:
    cost = ModelCost(storage_bytes=777.0, train_flops_per_sample=1.0, transfer_bytes_per_round=1554.0)
    s = strategy(plan(), fleet([1, 1]), model_cost=cost, dense_cost=cost)
    tasks = s.configure_round(1)
    record = s.account(1, tasks, _updates([10.0, 10.0], {"w": (2,)}), 0.5, 1.0)
    assert record.bytes_down == record.bytes_up == 777 * 2


def test_round_time_hook_lands_in_record_and_metrics() -> None:
    calls: list[tuple[int, list[int]]] = []

    def round_time(rnd: int, tasks) -> float:
        calls.append((rnd, [t.client for t in tasks]))
        return 2.5 * len(tasks) + rnd

    s = strategy(plan(), fleet([1, 1, 1]), hooks=StrategyHooks(round_time=round_time))
    tasks = s.configure_round(4)
    record = s.account(4, tasks, _updates([10.0, 10.0, 10.0], {"w": (2,)}), 0.5, 1.0)
    assert calls == [(4, [0, 1, 2])]
    assert record.simulated_seconds == 2.5 * 3 + 4
    assert record.metrics()["simulated_seconds"] == 11.5
    assert RoundRecord.from_json(record.metrics()).simulated_seconds == 11.5


def test_took_part_counts_by_tier() -> None:
    s = strategy(plan(tiers=(1, 2)), fleet([1, 2, 3, 1, 2, 2, 3]))
    assert s.eligible == [0, 1, 3, 4, 5]

    def rec(clients: list[int]) -> RoundRecord:
        return RoundRecord(1, 1, clients, 1, 0.5, 1.0, 1.0, 1, 1)

    out = s.took_part([rec([0, 4]), rec([4, 1]), rec([0])])
    assert out["took_part"] == [0, 1, 4]
    assert out["took_part_by_tier"] == {"1": 1, "2": 2, "3": 0}
    assert out["eligible"] == [0, 1, 3, 4, 5]
    assert out["admitted_tiers"] == [1, 2]
    assert len(out["clients"]) == 7
    assert s.took_part([])["took_part_by_tier"] == {"1": 0, "2": 0, "3": 0}
    vanilla = strategy(plan(tiers=None), fleet([1, 2, 3, 1, 2, 2, 3]))
    out = vanilla.took_part([rec([0, 4])])
    assert out["took_part"] == [0, 4] and "took_part_by_tier" not in out
    assert all("tier" not in row for row in out["clients"])


def test_round_with_nobody_available_keeps_the_state_and_records_no_training() -> None:
    s = strategy(plan(), fleet([1, 1, 2]))
    current = {"w": torch.ones(2)}
    tasks = s.configure_round(1, available=[])
    assert tasks == []
    assert s.aggregate([], current) is current
    record = s.account(1, tasks, [], accuracy=0.5, loss=1.0)
    assert record.clients == [] and record.samples == 0 and record.train_loss is None
    assert record.bytes_down == 0 and record.bytes_up == 0
