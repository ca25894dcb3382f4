"""Tiny data, a tiny sparse model and a tiny fleet shared by the federation tests.

Everything here is real: a real ``cnn28`` (channels [4, 8], hidden 16), a real :class:`Mask`, real
client profiles; only the sizes are small, so a round takes milliseconds on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from equitable_fl.config import TrainSettings
from equitable_fl.cost import ModelCost
from equitable_fl.data.tensors import Normaliser, TensorData
from equitable_fl.federation.strategy import EquitableStrategy, PhasePlan, StrategyHooks
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec
from equitable_fl.resources import ClientProfile

TINY = {"arch": "cnn28", "channels": [4, 8], "hidden": 16}
SETTINGS = TrainSettings.from_config(
    {"local_epochs": 1, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}
)
# an arbitrary cost: payload (storage_bytes) differs from transfer_bytes_per_round on purpose
COST = ModelCost(storage_bytes=1234.0, train_flops_per_sample=5e4, transfer_bytes_per_round=99_999.0)


def settings(**overrides: Any) -> TrainSettings:
    """``TrainSettings`` from a partial training section, the rest filled from the schema."""
    return TrainSettings.from_config(overrides)


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


def profile(
    client: int, tier: int = 1, compute: float = 1.0, storage: float = 1.0, bandwidth: float = 1.0
) -> ClientProfile:
    return ClientProfile(client, compute, storage, bandwidth, min(compute, storage, bandwidth), tier)


def fleet(tiers: Sequence[int]) -> list[ClientProfile]:
    """One profile per client, client ``i`` in tier ``tiers[i]``, every client affording the dense model."""
    return [profile(i, tier=t) for i, t in enumerate(tiers)]


def plan(
    *,
    seed: int = 0,
    stream: int = 1,
    rounds: int = 2,
    train: TrainSettings = SETTINGS,
    tiers: tuple[int, ...] | None = (1,),
    check_budget: bool = False,
    offset: int = 0,
    snapshot_rounds: tuple[int, ...] = (),
) -> PhasePlan:
    return PhasePlan(
        label=f"phase {stream}",
        seed=seed,
        stream=stream,
        rounds=rounds,
        settings=train,
        admitted_tiers=tiers,
        check_budget=check_budget,
        global_round_offset=offset,
        snapshot_rounds=snapshot_rounds,
    )


def strategy(
    the_plan: PhasePlan,
    profiles: Sequence[ClientProfile],
    samples: Sequence[int] | None = None,
    *,
    mask: Mask | dict[str, torch.Tensor] | None = None,
    model_cost: ModelCost = COST,
    dense_cost: ModelCost = COST,
    hooks: StrategyHooks | None = None,
) -> EquitableStrategy:
    return EquitableStrategy(
        plan=the_plan,
        profiles=list(profiles),
        client_samples=list(samples) if samples is not None else [10] * len(profiles),
        mask=mask if mask is not None else {},
        model_cost=model_cost,
        dense_cost=dense_cost,
        hooks=hooks or StrategyHooks(),
    )
