"""The in-process engine, driven by a real strategy: rounds, masks, seeds, snapshots and hooks."""

from __future__ import annotations

import math

import pytest
import torch

from equitable_fl.cost import ModelCost
from equitable_fl.federation.client import MaskedParams, evaluate, train_client
from equitable_fl.federation.engine import InProcessEngine, PhaseRun, get_engine
from equitable_fl.federation.strategy import StrategyHooks
from equitable_fl.records import RoundRecord

from .tiny import COST, SETTINGS, fleet, make_data, plan, settings, sparse_setup, split_clients, strategy

SIZES = [15, 20, 25]
TRAIN = settings(local_epochs=1, batch_size=8, lr=0.05, eval_batch_size=7)


def _run(
    seed: int = 0,
    *,
    tiers=(1, 1, 1),
    admitted=(1,),
    rounds: int = 2,
    stream: int = 1,
    train=TRAIN,
    offset: int = 0,
    snapshot_rounds: tuple[int, ...] = (),
    hooks: StrategyHooks | None = None,
):
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    data = make_data()
    clients = split_clients(60, SIZES)
    the_plan = plan(
        seed=seed,
        stream=stream,
        rounds=rounds,
        train=train,
        tiers=admitted,
        offset=offset,
        snapshot_rounds=snapshot_rounds,
    )
    s = strategy(the_plan, fleet(tiers), SIZES, mask=mask, hooks=hooks)
    records: list[RoundRecord] = []
    result = InProcessEngine().run(s, model, ticket, data, clients, on_round=records.append)
    return result, records, mask, ticket, model, data, s


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_engine_masks_every_round_and_records() -> None:
    result, seen, mask, ticket, model, data, _ = _run(offset=5, snapshot_rounds=(1, 2))
    assert isinstance(result, PhaseRun)
    assert 0.6 < mask.sparsity < 0.8
    assert [r.round for r in result.history] == [1, 2]
    assert [r.global_round for r in result.history] == [6, 7]
    assert seen == result.history  # on_round saw every record, in order
    for rnd in (1, 2):
        state = result.snapshots[rnd]
        for name, m in mask.items():
            assert bool((state[name][~m] == 0).all()), f"round {rnd}: {name} has a nonzero pruned weight"
            assert not torch.equal(state[name][m], ticket[name][m])
    assert _same(result.state, result.snapshots[2])
    for r in result.history:
        assert r.clients == [0, 1, 2]
        assert r.bytes_down == r.bytes_up == int(COST.storage_bytes) * 3
        assert r.samples == 60
        assert 0.0 <= r.accuracy <= 1.0 and r.loss > 0 and math.isfinite(r.train_loss)
        assert r.train_seconds > 0
        assert r.simulated_seconds is None
    # the last record's accuracy and loss are those of the returned state
    acc, loss = evaluate(model, result.state, data, batch_size=30)
    assert result.history[-1].accuracy == pytest.approx(acc)
    assert result.history[-1].loss == pytest.approx(loss, rel=1e-5)


def test_engine_samples_count_local_epochs() -> None:
    result, *_ = _run(rounds=1, train=settings(local_epochs=2, batch_size=8, eval_batch_size=7))
    assert result.history[0].samples == 2 * 60


def test_engine_is_the_strategy_protocol_and_nothing_else() -> None:
    """configure_round → train_client → aggregate → evaluate → account, by hand, gives the same bits."""
    result, _, mask, ticket, model, data, s = _run(seed=3, rounds=2)
    clients = split_clients(60, SIZES)
    masked = MaskedParams(model, mask)
    state = {k: v.clone() for k, v in ticket.items()}
    for rnd in (1, 2):
        tasks = s.configure_round(rnd, s.available(rnd))
        updates = [train_client(model, state, masked, data, clients[t.client], t) for t in tasks]
        state = s.aggregate(updates, state)
        acc, loss = evaluate(model, state, data, TRAIN.eval_batch_size)
        record = s.account(rnd, tasks, updates, acc, loss)
        assert record.metrics() == result.history[rnd - 1].metrics()
    assert _same(state, result.state)


def test_engine_client_fraction_samples_subset_of_eligible() -> None:
    model, mask, ticket = sparse_setup()
    data = make_data(n_train=60)
    clients = split_clients(60, [10] * 6)
    eligible = [0, 2, 4, 5]
    s = strategy(
        plan(seed=3, stream=2, rounds=3, train=settings(batch_size=10, client_fraction=0.5), tiers=(1,)),
        fleet([1, 2, 1, 2, 1, 1]),
        [10] * 6,
        mask=mask,
        model_cost=ModelCost(storage_bytes=10.0, train_flops_per_sample=1.0, transfer_bytes_per_round=20.0),
    )
    assert s.eligible == eligible
    result = InProcessEngine().run(s, model, ticket, data, clients)
    for r in result.history:
        assert len(r.clients) == 2  # ceil(0.5 × 4)
        assert set(r.clients) <= set(eligible)
        assert r.clients == sorted(set(r.clients))
        assert r.bytes_down == r.bytes_up == 20
        assert r.samples == 20 * 2  # two clients × 10 samples × local_epochs (schema default 2)
    assert len({tuple(r.clients) for r in result.history}) > 1  # each round draws its own cohort


def test_engine_deterministic_and_seed_dependent() -> None:
    a = _run(seed=11)[0]
    b = _run(seed=11)[0]
    c = _run(seed=12)[0]
    assert _same(a.state, b.state)
    assert [r.metrics() for r in a.history] == [r.metrics() for r in b.history]
    assert any(not torch.equal(a.state[k], c.state[k]) for k in a.state)


def test_engine_stream_changes_the_run() -> None:
    a = _run(seed=11, stream=1)[0]
    b = _run(seed=11, stream=2)[0]
    assert any(not torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_engine_no_eligible_client_raises_before_training() -> None:
    rounds: list[RoundRecord] = []
    with pytest.raises(RuntimeError, match=r"phase 1: no client is eligible.*tier thresholds"):
        _run(tiers=(2, 3, 3), admitted=(1,), hooks=StrategyHooks(round_time=lambda r, t: rounds.append(r)))
    assert rounds == []


def test_engine_does_not_mutate_start_state() -> None:
    model, mask, ticket = sparse_setup()
    before = {k: v.clone() for k, v in ticket.items()}
    s = strategy(plan(rounds=1, train=SETTINGS), fleet([1, 1]), [30, 30], mask=mask)
    result = InProcessEngine().run(s, model, ticket, make_data(), split_clients(60, [30, 30]))
    assert _same(ticket, before)
    assert not _same(result.state, before)


def test_snapshot_rounds_hold_state_after_round_k() -> None:
    two, *_ = _run(seed=4, rounds=2, snapshot_rounds=(0, 1, 2))
    one, *_ = _run(seed=4, rounds=1)
    _, _, _, ticket, *_ = _run(seed=4, rounds=0)
    assert sorted(two.snapshots) == [0, 1, 2]
    for k in ticket:
        assert torch.equal(two.snapshots[0][k], ticket[k])
        assert torch.equal(two.snapshots[1][k], one.state[k])  # rounds are independent of the total
        assert torch.equal(two.snapshots[2][k], two.state[k])
    assert not torch.equal(two.snapshots[1]["hidden.weight"], two.snapshots[2]["hidden.weight"])
    assert one.snapshots == {}
    # a snapshot is a copy: later rounds do not write into it
    assert two.snapshots[1]["hidden.weight"].data_ptr() != two.state["hidden.weight"].data_ptr()


def test_engine_asks_availability_every_round_and_skips_offline_clients() -> None:
    asked: list[int] = []

    def online(rnd: int) -> list[int]:
        asked.append(rnd)
        return [c for c in range(3) if c != rnd % 3]

    result, *_ = _run(rounds=3, hooks=StrategyHooks(availability=online))
    assert asked == [1, 2, 3]
    assert [r.clients for r in result.history] == [[0, 2], [0, 1], [1, 2]]
    assert [r.samples for r in result.history] == [15 + 25, 15 + 20, 20 + 25]
    full, *_ = _run(rounds=3)
    assert not _same(result.state, full.state)


def test_engine_round_time_hook_lands_in_history() -> None:
    result, *_ = _run(hooks=StrategyHooks(round_time=lambda rnd, tasks: 10.0 * rnd + len(tasks)))
    assert [r.simulated_seconds for r in result.history] == [13.0, 23.0]
    assert [r.metrics()["simulated_seconds"] for r in result.history] == [13.0, 23.0]


def test_get_engine_by_name() -> None:
    assert isinstance(get_engine("inprocess"), InProcessEngine)
    with pytest.raises(ValueError, match=r"compute\.engine 'warp' is not available.*flower.*inprocess"):
        get_engine("warp")
