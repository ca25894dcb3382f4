"""The federated training engine: local SGD on clients and sample-weighted FedAvg on the server.

Design choices, with measurements in ``shared/notes/performance.md`` behind them:

- one model object is reused for every client (its weights are loaded from the global state), and
  batches are gathered by tensor indexing, with no DataLoader or per-sample Python loop;
- the mask is re-applied in place after every optimiser step (and after aggregation) instead of being
  multiplied into the forward pass, which would stream the weights twice per step;
- every random choice draws from a generator seeded by (seed, stream, round, client), never from the
  global RNG, so a run is bit-for-bit reproducible and one phase can be rerun on its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from equitable_fl.data.tensors import TensorData
from equitable_fl.device import synchronize

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class TrainSettings:
    """Client-side training and server sampling knobs (config section ``training``)."""

    local_epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    client_fraction: float = 1.0
    min_clients: int = 1
    eval_batch_size: int = 1000

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainSettings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"training: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**cfg)


@dataclass
class RoundRecord:
    round: int
    global_round: int
    clients: list[int]
    samples: int
    accuracy: float
    loss: float
    train_loss: float
    bytes_down: int
    bytes_up: int
    train_seconds: float = field(default=0.0)

    def metrics(self) -> dict[str, Any]:
        """Everything but the measured time, which differs between identical runs."""
        return {
            "round": self.round,
            "global_round": self.global_round,
            "clients": self.clients,
            "num_clients": len(self.clients),
            "samples": self.samples,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "train_loss": self.train_loss,
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
        }


def stream_seed(*keys: int) -> int:
    """A 63-bit seed derived from integer keys (seed, stream, round, client)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)[0] >> 1)


def sample_clients(
    eligible: Sequence[int], settings: TrainSettings, seed: int, stream: int, rnd: int
) -> list[int]:
    if not eligible:
        return []
    k = min(len(eligible), max(settings.min_clients, math.ceil(settings.client_fraction * len(eligible))))
    rng = np.random.default_rng([seed, stream, rnd])
    return sorted(int(c) for c in rng.choice(np.asarray(eligible), size=k, replace=False))


class MaskedParams:
    """The model's parameters that are pruned, with their pruned positions, for in-place zeroing."""

    def __init__(self, model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
        params = dict(model.named_parameters())
        self.pairs = [
            (params[name], ~m.bool().to(params[name].device)) for name, m in mask.items() if not bool(m.all())
        ]

    @torch.no_grad()
    def apply_(self) -> None:
        for p, pruned in self.pairs:
            p.masked_fill_(pruned, 0.0)


def local_train(
    model: nn.Module,
    global_state: Mapping[str, torch.Tensor],
    masked: MaskedParams,
    data: TensorData,
    indices: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
) -> tuple[State, float]:
    """Train from the global weights on one client's samples; return new weights and mean loss."""
    model.load_state_dict(global_state)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    total_loss, steps = 0.0, 0
    n = len(indices)
    for _ in range(settings.local_epochs):
        # the permutation is drawn on the CPU generator (same bits on every device), then moved
        order = indices[torch.randperm(n, generator=generator).to(indices.device)]
        for start in range(0, n, settings.batch_size):
            batch = order[start : start + settings.batch_size]
            xb = data.normalise(data.x_train[batch])
            yb = data.y_train[batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            masked.apply_()
            total_loss += float(loss.detach())
            steps += 1
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, total_loss / max(steps, 1)


def fedavg(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> State:
    """Weighted mean of client states (weights: sample counts), summed in a fixed order."""
    if not states:
        raise ValueError("fedavg needs at least one client state")
    total = float(sum(weights))
    out: State = {}
    for name in states[0]:
        acc = torch.zeros_like(states[0][name], dtype=torch.float64)
        for s, w in zip(states, weights, strict=True):
            acc.add_(s[name].to(torch.float64), alpha=w / total)
        out[name] = acc.to(states[0][name].dtype)
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module, state: Mapping[str, torch.Tensor], data: TensorData, batch_size: int
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``state`` on the test set."""
    model.load_state_dict(state)
    model.eval()
    correct, loss_sum = 0, 0.0
    n = len(data.y_test)
    for start in range(0, n, batch_size):
        xb = data.normalise(data.x_test[start : start + batch_size])
        yb = data.y_test[start : start + batch_size]
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(dim=1) == yb).sum())
    return correct / n, loss_sum / n


@dataclass
class RoundsResult:
    state: State
    history: list[RoundRecord]
    snapshots: dict[int, State]


def run_rounds(
    *,
    model: nn.Module,
    start_state: Mapping[str, torch.Tensor],
    mask: Mapping[str, torch.Tensor],
    data: TensorData,
    client_indices: Sequence[torch.Tensor],
    eligible: Sequence[int],
    rounds: int,
    settings: TrainSettings,
    seed: int,
    stream: int,
    global_round_offset: int = 0,
    payload_bytes: int = 0,
    snapshot_rounds: Sequence[int] = (),
    on_round: Callable[[RoundRecord], None] | None = None,
) -> RoundsResult:
    """Run ``rounds`` FedAvg rounds from ``start_state`` with ``mask`` kept exactly.

    ``payload_bytes`` is the encoded size of the model under ``mask``: each sampled client downloads
    and uploads one payload per round. ``snapshot_rounds`` lists rounds after which a copy of the global
    weights is kept (late rewinding).
    """
    if not eligible:
        raise RuntimeError(
            "no client is eligible for this phase: loosen the tier thresholds or the resources, "
            "or disable eligibility.check_budget"
        )
    device = next(model.parameters()).device
    masked = MaskedParams(model, mask)
    pruned = {name: ~m.bool().to(device) for name, m in mask.items()}
    state: State = {k: v.detach().to(device).clone() for k, v in start_state.items()}
    history: list[RoundRecord] = []
    snapshots: dict[int, State] = {}
    if 0 in snapshot_rounds:
        snapshots[0] = {k: v.clone() for k, v in state.items()}
    for rnd in range(1, rounds + 1):
        chosen = sample_clients(eligible, settings, seed, stream, rnd)
        client_states, weights, losses = [], [], []
        synchronize(device)
        t0 = time.perf_counter()
        for client in chosen:
            gen = torch.Generator().manual_seed(stream_seed(seed, stream, rnd, client))
            new_state, loss = local_train(model, state, masked, data, client_indices[client], settings, gen)
            client_states.append(new_state)
            weights.append(float(len(client_indices[client])))
            losses.append(loss)
        synchronize(device)
        train_seconds = time.perf_counter() - t0
        state = fedavg(client_states, weights)
        for name, p in pruned.items():
            state[name].masked_fill_(p, 0.0)
        accuracy, loss = evaluate(model, state, data, settings.eval_batch_size)
        record = RoundRecord(
            round=rnd,
            global_round=global_round_offset + rnd,
            clients=chosen,
            samples=int(sum(weights)) * settings.local_epochs,
            accuracy=accuracy,
            loss=loss,
            train_loss=float(np.average(losses, weights=weights)),
            bytes_down=payload_bytes * len(chosen),
            bytes_up=payload_bytes * len(chosen),
            train_seconds=train_seconds,
        )
        history.append(record)
        if rnd in snapshot_rounds:
            snapshots[rnd] = {k: v.clone() for k, v in state.items()}
        if on_round is not None:
            on_round(record)
    return RoundsResult(state, history, snapshots)
