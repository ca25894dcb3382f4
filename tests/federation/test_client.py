"""The client side of a round: masked local SGD, one task's update, and the server's evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.client import (
    ClientTask,
    MaskedParams,
    evaluate,
    local_train,
    train_client,
)
from equitable_fl.federation.strategy import stream_seed

from .tiny import SETTINGS, make_data, settings, sparse_setup, tiny_spec

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
    train = settings(local_epochs=2, batch_size=8, lr=0.1, momentum=0.9, weight_decay=1e-2)
    masked = MaskedParams(model, mask)
    new_state, loss = local_train(model, ticket, masked, data, torch.arange(40), train, gen)
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


# ---------------------------------------------------------------- one task


def test_train_client_runs_the_task_with_its_seed() -> None:
    model, mask, ticket = sparse_setup()
    data = make_data()
    masked = MaskedParams(model, mask)
    idx = torch.arange(5, 29)
    task = ClientTask(client=3, round=2, seed=stream_seed(0, 1, 2, 3), settings=SETTINGS)
    update = train_client(model, ticket, masked, data, idx, task)
    assert update.client == 3
    assert update.num_examples == 24.0 and isinstance(update.num_examples, float)
    expected, loss = local_train(
        model, ticket, masked, data, idx, SETTINGS, torch.Generator().manual_seed(task.seed)
    )
    assert update.train_loss == loss
    assert all(torch.equal(update.state[k], expected[k]) for k in expected)
    other = train_client(model, ticket, masked, data, idx, ClientTask(3, 2, task.seed + 1, SETTINGS))
    assert any(not torch.equal(update.state[k], other.state[k]) for k in expected)


def test_train_client_update_does_not_depend_on_what_the_model_trained_before() -> None:
    """A client trains the same bits whichever clients the reused model trained before it."""
    model, mask, ticket = sparse_setup()
    data = make_data()
    masked = MaskedParams(model, mask)
    parts = [torch.arange(0, 20), torch.arange(20, 40), torch.arange(40, 60)]
    tasks = [ClientTask(c, 1, stream_seed(0, 1, 1, c), SETTINGS) for c in range(3)]
    forward = [train_client(model, ticket, masked, data, parts[t.client], t) for t in tasks]
    backward = [train_client(model, ticket, masked, data, parts[t.client], t) for t in reversed(tasks)]
    fresh_model, _, _ = sparse_setup()
    alone = train_client(fresh_model, ticket, MaskedParams(fresh_model, mask), data, parts[2], tasks[2])
    for a, b in zip(forward, reversed(backward), strict=True):
        assert a.client == b.client and a.train_loss == b.train_loss
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert all(torch.equal(forward[2].state[k], alone.state[k]) for k in alone.state)


def test_train_client_task_settings_drive_training() -> None:
    model, mask, ticket = sparse_setup()
    data = make_data()
    masked = MaskedParams(model, mask)
    idx = torch.arange(0, 30)
    one = train_client(model, ticket, masked, data, idx, ClientTask(0, 1, 9, settings(local_epochs=1)))
    two = train_client(model, ticket, masked, data, idx, ClientTask(0, 1, 9, settings(local_epochs=2)))
    assert any(not torch.equal(one.state[k], two.state[k]) for k in one.state)
    assert one.num_examples == two.num_examples == 30.0  # samples held, not samples trained


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
