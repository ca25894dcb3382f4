"""The federated engine: FedAvg, masked local training, rounds, client sampling and evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from equitable_fl.data.tensors import Normaliser, TensorData
from equitable_fl.fedavg import (
    MaskedParams,
    RoundRecord,
    TrainSettings,
    evaluate,
    fedavg,
    local_train,
    run_rounds,
    sample_clients,
    stream_seed,
)
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec

TINY = {"arch": "cnn28", "channels": [4, 8], "hidden": 16}
SETTINGS = TrainSettings(local_epochs=1, batch_size=8, lr=0.05, momentum=0.9, weight_decay=1e-3)


def tiny_spec() -> ModelSpec:
    return ModelSpec.from_config(TINY, (1, 28, 28), 10)


def make_data(n_train: int = 60, n_test: int = 30, seed: int = 0) -> TensorData:
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, size=(n_train, 1, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, 1, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, size=n_train).astype(np.int64)
    y_test = rng.integers(0, 10, size=n_test).astype(np.int64)
    return TensorData(
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        torch.from_numpy(x_test),
        torch.from_numpy(y_test),
        Normaliser.fit(x_train),
        10,
    )


def sparse_setup(keep_prob: float = 0.3, seed: int = 0):
    """θ0 of the tiny model, a ≈(1 − keep_prob)-sparse mask over its prunable weights, and the ticket."""
    spec = tiny_spec()
    model = spec.init(0)
    state = model.state_dict()
    gen = torch.Generator().manual_seed(seed)
    mask = Mask({n: torch.rand(state[n].shape, generator=gen) < keep_prob for n in spec.prunable(model)})
    ticket = {k: v.clone() for k, v in state.items()}
    mask.apply_(ticket)
    return model, mask, ticket


def split_clients(n: int, sizes: list[int]) -> list[torch.Tensor]:
    assert sum(sizes) <= n
    out, start = [], 0
    for s in sizes:
        out.append(torch.arange(start, start + s))
        start += s
    return out


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


# ---------------------------------------------------------------- local training


def test_masked_params_skips_dense_layers() -> None:
    model, mask, _ = sparse_setup()
    dense_hidden = {n: (torch.ones_like(m) if n == "hidden.weight" else m) for n, m in mask.items()}
    mp = MaskedParams(model, dense_hidden)
    assert len(mp.pairs) == len(mask) - 1
    params = dict(model.named_parameters())
    assert all(p is not params["hidden.weight"] for p, _ in mp.pairs)


def test_local_train_keeps_pruned_weights_exactly_zero() -> None:
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    data = make_data()
    before = {k: v.clone() for k, v in ticket.items()}
    gen = torch.Generator().manual_seed(123)
    settings = TrainSettings(local_epochs=2, batch_size=8, lr=0.1, momentum=0.9, weight_decay=1e-2)
    new_state, loss = local_train(
        model, ticket, MaskedParams(model, mask), data, torch.arange(40), settings, gen
    )
    assert math.isfinite(loss) and loss > 0
    for name, m in mask.items():
        w = new_state[name]
        assert bool((w[~m] == 0).all()), f"{name}: a pruned weight is not exactly 0"
        changed = w[m] != before[name][m]
        assert float(changed.float().mean()) > 0.5, f"{name}: kept weights barely trained"
    assert not torch.equal(new_state["output.bias"], before["output.bias"])
    for k in ticket:  # the global state passed in is not modified
        assert torch.equal(ticket[k], before[k])


def test_local_train_is_deterministic_given_generator() -> None:
    model, mask, ticket = sparse_setup()
    data = make_data()
    masked = MaskedParams(model, mask)
    idx = torch.arange(10, 35)
    a, la = local_train(model, ticket, masked, data, idx, SETTINGS, torch.Generator().manual_seed(5))
    b, lb = local_train(model, ticket, masked, data, idx, SETTINGS, torch.Generator().manual_seed(5))
    c, _ = local_train(model, ticket, masked, data, idx, SETTINGS, torch.Generator().manual_seed(6))
    assert la == lb
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)  # another batch order gives other weights


# ---------------------------------------------------------------- rounds


def _run(seed: int = 0, *, eligible=(0, 1, 2), fraction: float = 1.0, rounds: int = 2, **kw):
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    data = make_data()
    clients = split_clients(60, [15, 20, 25])
    records: list[RoundRecord] = []
    settings = TrainSettings(batch_size=8, lr=0.05, client_fraction=fraction, eval_batch_size=7)
    result = run_rounds(
        model=model,
        start_state=ticket,
        mask=mask,
        data=data,
        client_indices=clients,
        eligible=list(eligible),
        rounds=rounds,
        settings=settings,
        seed=seed,
        stream=kw.pop("stream", 1),
        on_round=records.append,
        **kw,
    )
    return result, records, mask, ticket, model, data, clients


def test_run_rounds_masks_every_round_and_records() -> None:
    result, seen, mask, ticket, model, data, _ = _run(
        global_round_offset=5, payload_bytes=1234, snapshot_rounds=(1, 2)
    )
    assert 0.6 < mask.sparsity < 0.8
    assert [r.round for r in result.history] == [1, 2]
    assert [r.global_round for r in result.history] == [6, 7]
    assert seen == result.history  # on_round saw every record, in order
    for rnd in (1, 2):
        state = result.snapshots[rnd]
        for name, m in mask.items():
            assert bool((state[name][~m] == 0).all()), f"round {rnd}: {name} has a nonzero pruned weight"
            assert not torch.equal(state[name][m], ticket[name][m])
    for name in result.state:
        assert torch.equal(result.state[name], result.snapshots[2][name])
    for r in result.history:
        assert r.clients == [0, 1, 2]
        assert r.bytes_down == r.bytes_up == 1234 * 3
        assert r.samples == 60
        assert 0.0 <= r.accuracy <= 1.0 and r.loss > 0 and math.isfinite(r.train_loss)
    # the last record's accuracy and loss are those of the returned state
    acc, loss = evaluate(model, result.state, data, batch_size=30)
    assert result.history[-1].accuracy == pytest.approx(acc)
    assert result.history[-1].loss == pytest.approx(loss, rel=1e-5)


def test_run_rounds_client_fraction_samples_subset_of_eligible() -> None:
    model, mask, ticket = sparse_setup()
    data = make_data(n_train=60)
    clients = split_clients(60, [10] * 6)
    eligible = [0, 2, 4, 5]
    result = run_rounds(
        model=model,
        start_state=ticket,
        mask=mask,
        data=data,
        client_indices=clients,
        eligible=eligible,
        rounds=3,
        settings=TrainSettings(batch_size=10, client_fraction=0.5),
        seed=3,
        stream=2,
        payload_bytes=10,
    )
    for r in result.history:
        assert len(r.clients) == 2  # ceil(0.5 × 4)
        assert set(r.clients) <= set(eligible)
        assert r.clients == sorted(set(r.clients))
        assert r.bytes_down == r.bytes_up == 20
        assert r.samples == 20


def test_run_rounds_deterministic_and_seed_dependent() -> None:
    a = _run(seed=11)[0]
    b = _run(seed=11)[0]
    c = _run(seed=12)[0]
    assert set(a.state) == set(b.state)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert [r.metrics() for r in a.history] == [r.metrics() for r in b.history]
    assert any(not torch.equal(a.state[k], c.state[k]) for k in a.state)


def test_run_rounds_stream_changes_the_run() -> None:
    a = _run(seed=11, stream=1)[0]
    b = _run(seed=11, stream=2)[0]
    assert any(not torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_run_rounds_no_eligible_client_raises() -> None:
    with pytest.raises(RuntimeError, match=r"no client is eligible.*tier thresholds"):
        _run(eligible=())


def test_run_rounds_does_not_mutate_start_state() -> None:
    model, mask, ticket = sparse_setup()
    before = {k: v.clone() for k, v in ticket.items()}
    run_rounds(
        model=model,
        start_state=ticket,
        mask=mask,
        data=make_data(),
        client_indices=split_clients(60, [30, 30]),
        eligible=[0, 1],
        rounds=1,
        settings=SETTINGS,
        seed=0,
        stream=1,
    )
    assert all(torch.equal(ticket[k], before[k]) for k in ticket)


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


# ---------------------------------------------------------------- client sampling


def test_sample_clients_seeded_and_independent_of_global_rng() -> None:
    eligible = list(range(3, 40, 2))
    s = TrainSettings(client_fraction=0.3)
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


def test_sample_clients_min_clients_and_bounds() -> None:
    assert sample_clients([], TrainSettings(), 0, 0, 1) == []
    few = sample_clients(list(range(10)), TrainSettings(client_fraction=0.01, min_clients=3), 0, 1, 1)
    assert len(few) == 3
    capped = sample_clients([4, 8], TrainSettings(client_fraction=0.1, min_clients=5), 0, 1, 1)
    assert capped == [4, 8]
    assert sample_clients([9, 1, 5], TrainSettings(client_fraction=1.0), 0, 1, 1) == [1, 5, 9]


def test_stream_seed_deterministic_and_distinct() -> None:
    assert stream_seed(1, 2, 3, 4) == stream_seed(1, 2, 3, 4)
    seeds = {stream_seed(0, 1, r, c) for r in range(5) for c in range(5)}
    assert len(seeds) == 25
    assert all(0 <= x < 2**63 for x in seeds)


def test_train_settings_from_config_rejects_unknown() -> None:
    assert TrainSettings.from_config({"lr": 0.1, "batch_size": 4}) == TrainSettings(lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match=r"unknown option.*'lrate'"):
        TrainSettings.from_config({"lrate": 0.1})


# ---------------------------------------------------------------- evaluation


def test_evaluate_matches_manual_argmax_count() -> None:
    model, _, ticket = sparse_setup()
    data = make_data(n_test=30, seed=2)
    acc, loss = evaluate(model, ticket, data, batch_size=7)  # 7 does not divide 30: last batch is short
    assert 0.0 <= acc <= 1.0 and loss > 0

    check = tiny_spec().build()
    check.load_state_dict(ticket)
    check.eval()
    with torch.no_grad():
        x = (data.x_test.float() / 255.0 - data.normalise.mean) / data.normalise.std
        logits = check(x)
    correct = int((logits.argmax(1) == data.y_test).sum())
    assert acc == correct / 30
    assert loss == pytest.approx(float(F.cross_entropy(logits, data.y_test)), rel=1e-5)


def test_evaluate_perfect_and_zero_accuracy() -> None:
    model, _, ticket = sparse_setup()
    data = make_data(n_test=12, seed=3)
    model.load_state_dict(ticket)
    with torch.no_grad():
        preds = model(data.normalise(data.x_test)).argmax(1)
    right = TensorData(data.x_train, data.y_train, data.x_test, preds, data.normalise, 10)
    wrong = TensorData(data.x_train, data.y_train, data.x_test, (preds + 1) % 10, data.normalise, 10)
    assert evaluate(model, ticket, right, batch_size=5)[0] == 1.0
    assert evaluate(model, ticket, wrong, batch_size=5)[0] == 0.0
