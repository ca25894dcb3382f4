"""A dynamic fleet in the strategy (``clients.availability``): eligibility re-checked every round, the
cohort drawn from the eligible clients online, dropouts never trained and never aggregated, the round's
simulated time set by the clients that finished. Real strategy, real engine, real training."""

from __future__ import annotations

import dataclasses
import json

import torch

from equitable_fl.data.tensors import TensorData
from equitable_fl.dynamics.conditions import ClientRound, RoundConditions
from equitable_fl.dynamics.fleet import FleetDynamics
from equitable_fl.federation.client import ClientTask, MaskedParams, train_client
from equitable_fl.federation.engine import InProcessEngine, PhaseRun
from equitable_fl.federation.strategy import EquitableStrategy, StrategyHooks
from equitable_fl.fleet_time import Device, RoundClock
from equitable_fl.mask import Mask

from .tiny import make_data, plan, profile, settings, sparse_setup, split_clients, strategy

SIZES = [15, 20, 25]
TRAIN = settings(local_epochs=1, batch_size=8, lr=0.05, eval_batch_size=7)
ON = ClientRound()
LEAVES_AT_ONCE = ClientRound(leaves_at_fraction=0.0)


def _device(flops_per_s: float) -> Device:
    return Device("d", flops_per_s, 1e6, 1e6, 1e9)


def _clock(flops: list[float]) -> RoundClock:
    return RoundClock([_device(f) for f in flops], SIZES, 1000.0, 1e6, 1e6)


def _strategy(
    conditions: RoundConditions,
    *,
    rounds: int = 2,
    clock: RoundClock | None = None,
    check_budget: bool = False,
    mask: Mask | None = None,
) -> EquitableStrategy:
    profiles = [dataclasses.replace(profile(i), device=_device(1e8)) for i in range(3)]
    dynamics = FleetDynamics(conditions, profiles, clock)
    hooks = StrategyHooks(round_time=dynamics.round_time(0) if clock else None, dynamics=dynamics)
    the_plan = plan(rounds=rounds, train=TRAIN, tiers=(1,), check_budget=check_budget)
    return strategy(the_plan, profiles, SIZES, mask=mask, hooks=hooks)


def _run(
    conditions: RoundConditions, data: TensorData | None = None, **kw
) -> tuple[PhaseRun, EquitableStrategy]:
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    s = _strategy(conditions, mask=mask, **kw)
    run = InProcessEngine().run(s, model, ticket, data or make_data(), split_clients(60, SIZES))
    return run, s


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _with_other_rows(data: TensorData, rows: torch.Tensor, seed: int) -> TensorData:
    """``data`` with the training images of ``rows`` replaced by other random images."""
    x = data.x_train.clone()
    x[rows] = make_data(seed=seed).x_train[rows]
    return dataclasses.replace(data, x_train=x)


def test_offline_clients_are_never_in_the_cohort() -> None:
    s = _strategy({1: [ON, ClientRound(available=False), ON], 2: [ON] * 3})
    assert s.available(1) == [0, 2]
    assert [t.client for t in s.configure_round(1, s.available(1))] == [0, 2]
    assert [t.client for t in s.configure_round(2, s.available(2))] == [0, 1, 2]


def test_eligibility_is_rechecked_every_round_on_that_rounds_resources() -> None:
    # the tiny model costs exactly the dense budget: a compute factor below 1 makes it unaffordable
    low = ClientRound(compute=0.5)
    s = _strategy({1: [ON, low, ON], 2: [ON, ON, low], 3: [ON] * 3}, rounds=3, check_budget=True)
    assert s.eligible == [0, 1, 2]  # the phase's verdict on the drawn resources
    assert [s.eligible_at(r) for r in (1, 2, 3)] == [[0, 2], [0, 1], [0, 1, 2]]
    assert [t.client for t in s.configure_round(2, s.available(2))] == [0, 1]


def test_the_participation_record_keeps_every_rounds_eligibility() -> None:
    low = ClientRound(compute=0.5)
    run, s = _run({1: [ON, low, ON], 2: [low, ON, ON], 3: [ON] * 3}, rounds=3, check_budget=True)
    took = s.took_part(run.history)
    assert took["eligible"] == [0, 1, 2]
    assert took["eligible_by_round"] == {"1": [0, 2], "2": [1, 2], "3": [0, 1, 2]}
    assert [r.clients for r in run.history] == [[0, 2], [1, 2], [0, 1, 2]]
    # a phase resumed after round 2 knows rounds 1 and 2 only from its history: same record
    fresh = _strategy({1: [ON, low, ON], 2: [low, ON, ON], 3: [ON] * 3}, rounds=3, check_budget=True)
    assert fresh.took_part(run.history) == took


def test_a_dropout_sends_nothing_and_the_round_lasts_as_long_as_its_slowest_finisher() -> None:
    # client 2 is the slowest (25 samples at 2e7 FLOP/s) and leaves half-way through the scheduled round
    clock = _clock([1e8, 1e8, 2e7])
    run, s = _run({1: [ON, ON, ClientRound(leaves_at_fraction=0.5)], 2: [ON] * 3}, clock=clock)
    everyone = [ClientTask(c, 1, 0, TRAIN) for c in range(3)]
    seconds = [t.total for t in clock.client_times(everyone)]
    first, second = run.history
    assert first.clients == [0, 1] and first.dropouts == [2]
    assert first.bytes_down == 3 * s.payload_bytes  # the dropout was sent the model …
    assert first.bytes_up == 2 * s.payload_bytes  # … and sent nothing back
    assert first.simulated_seconds == max(seconds[:2]) < seconds[2]
    assert second.clients == [0, 1, 2] and second.dropouts == [] and second.simulated_seconds == max(seconds)
    assert first.metrics()["dropouts"] == [2]


def test_a_fast_client_finishes_before_it_leaves() -> None:
    clock = _clock([1e9, 1e8, 1e7])  # client 0 needs a small fraction of the round client 2 sets
    s = _strategy({1: [ClientRound(leaves_at_fraction=0.5), ON, ON]}, clock=clock)
    assert [t.client for t in s.configure_round(1)] == [0, 1, 2] and s.dropouts(1) == []


def test_the_aggregate_is_the_finishers_fedavg_and_a_dropouts_update_never_enters_it() -> None:
    conditions = {1: [ON, ON, LEAVES_AT_ONCE]}
    clock = _clock([1e8] * 3)
    data, clients = make_data(), split_clients(60, SIZES)
    run, _ = _run(conditions, data, rounds=1, clock=clock)
    # the finishers' updates, trained by hand, aggregated by the same policy without dynamics
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    static = strategy(plan(rounds=1, train=TRAIN), [profile(i) for i in range(3)], SIZES, mask=mask)
    tasks = [t for t in static.configure_round(1) if t.client != 2]
    masked = MaskedParams(model, mask)
    updates = [train_client(model, ticket, masked, data, clients[t.client], t) for t in tasks]
    assert _same(run.state, static.aggregate(updates, ticket))
    # whatever the dropout's data (and so its update) is, the aggregate stays the same bits …
    other, _ = _run(conditions, _with_other_rows(data, clients[2], seed=99), rounds=1, clock=clock)
    assert _same(run.state, other.state)
    # … while the same change to a finisher's data does change it
    changed, _ = _run(conditions, _with_other_rows(data, clients[1], seed=99), rounds=1, clock=clock)
    assert not _same(run.state, changed.state)


def test_a_round_whose_whole_cohort_drops_keeps_the_model_and_takes_no_time() -> None:
    run, s = _run({1: [LEAVES_AT_ONCE] * 3, 2: [ON] * 3}, clock=_clock([1e8] * 3))
    first = run.history[0]
    assert first.clients == [] and first.dropouts == [0, 1, 2] and first.train_loss is None
    assert first.simulated_seconds == 0.0 and first.bytes_up == 0 and first.bytes_down == 3 * s.payload_bytes


def test_without_a_clock_anyone_who_leaves_drops_out() -> None:
    s = _strategy({1: [ClientRound(leaves_at_fraction=0.99), ON, ON]})
    assert [t.client for t in s.configure_round(1)] == [1, 2] and s.dropouts(1) == [0]


def test_a_static_fleet_writes_no_dropouts() -> None:
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    s = strategy(plan(rounds=1, train=TRAIN), [profile(i) for i in range(3)], SIZES, mask=mask)
    run = InProcessEngine().run(s, model, ticket, make_data(), split_clients(60, SIZES))
    assert run.history[0].dropouts is None and "dropouts" not in run.history[0].metrics()
    assert "eligible_by_round" not in s.took_part(run.history)


def test_the_dynamics_and_an_engines_connected_nodes_are_both_required() -> None:
    profiles = [dataclasses.replace(profile(i), device=_device(1e8)) for i in range(3)]
    dynamics = FleetDynamics({1: [ON, ClientRound(available=False), ON]}, profiles, None)
    hooks = StrategyHooks(availability=lambda rnd: [1, 2], dynamics=dynamics)
    s = strategy(plan(rounds=1, train=TRAIN), profiles, SIZES, hooks=hooks)
    assert s.available(1) == [2]


def test_dynamics_travel_to_another_process_exactly() -> None:
    """What a Flower ServerApp rebuilds from the job folder: the same conditions and clock, to the bit."""
    conditions = {
        4: [ON, ClientRound(available=False), ClientRound(compute=0.1 + 0.2, leaves_at_fraction=1 / 3)],
        5: [ClientRound(bandwidth=2.5e-7, leaves_after_seconds=12.75), ON, ON],
    }
    s = _strategy(conditions, clock=_clock([1e8, 3.3e7, 2e7]))
    dynamics = s.hooks.dynamics
    assert dynamics is not None
    text = json.dumps(dynamics.to_json())
    again = FleetDynamics.from_json(json.loads(text), dynamics.profiles)
    assert again == dynamics
    assert again.online(4) == [0, 2] and again.profiles_at(4) == dynamics.profiles_at(4)
