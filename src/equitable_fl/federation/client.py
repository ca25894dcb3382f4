"""The client side of a round: local SGD from the global weights with the ticket's mask kept exactly.

Design choices, with measurements in ``shared/notes/performance.md`` behind them:

- one model object is reused for every client (its weights are loaded from the global state), and
  batches are gathered by tensor indexing, with no DataLoader or per-sample Python loop;
- the mask is re-applied in place after every optimiser step instead of being multiplied into the
  forward pass, which would stream the weights twice per step;
- SGD is PyTorch's fused kernel (weight decay, momentum and update in one pass over each parameter);
- the process keeps freed memory (:mod:`equitable_fl.allocator`, set up by the job), so the buffers a
  step frees are reused by the next without faulting pages in again;
- the client's randomness (batch order) comes only from the task's seed, which the strategy derives from
  (seed, stream, round, client), so a client trains the same bits in any engine and any order.

These functions know nothing of tiers, cohorts or aggregation: that is the strategy's policy. A Flower
``ClientApp`` calls :func:`train_client` exactly as the in-process engine does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from equitable_fl.config import TrainSettings
from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.execution import REFERENCE, Execution

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ClientTask:
    """What the server asks one client to do in one round (a Flower ``ConfigRecord``'s content)."""

    client: int
    round: int
    seed: int
    settings: TrainSettings


@dataclass
class ClientUpdate:
    """What a client sends back: new weights, how many samples they stand for, its mean training loss."""

    client: int
    state: State
    num_examples: float
    train_loss: float


class MaskedParams:
    """The model's parameters that are pruned, with their pruned positions, for in-place zeroing."""

    def __init__(self, model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
        params = dict(model.named_parameters())
        # the pruned positions in the parameter's own layout (NHWC conv weights under channels_last)
        self.pairs = [
            (p, (~m.bool().to(p.device)).to(memory_format=_layout(p)))
            for name, m in mask.items()
            if not bool(m.all())
            for p in (params[name],)
        ]

    @torch.no_grad()
    def apply_(self) -> None:
        for p, pruned in self.pairs:
            p.masked_fill_(pruned, 0.0)


def _layout(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def local_train(
    model: nn.Module,
    global_state: Mapping[str, torch.Tensor],
    masked: MaskedParams,
    data: TensorData,
    indices: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
    execution: Execution = REFERENCE,
) -> tuple[State, float]:
    """Train from the global weights on one client's samples; return new weights and mean loss.

    ``model`` must already be in ``execution``'s layout (:meth:`Execution.prepare`).
    """
    model.load_state_dict(global_state)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
        # one pass over each parameter per step instead of three (measured 1.04× per step on CPU)
        fused=True,
    )
    total_loss, steps = 0.0, 0
    n = len(indices)
    for _ in range(settings.local_epochs):
        # the permutation is drawn on the CPU generator (same bits on every device), then moved
        order = indices[torch.randperm(n, generator=generator).to(indices.device)]
        for start in range(0, n, settings.batch_size):
            batch = order[start : start + settings.batch_size]
            xb = execution.inputs(data.normalise(data.x_train[batch]))
            yb = data.y_train[batch]
            opt.zero_grad(set_to_none=True)
            with execution.autocast():
                loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            masked.apply_()
            total_loss += float(loss.detach())
            steps += 1
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, total_loss / max(steps, 1)


def train_client(
    model: nn.Module,
    global_state: Mapping[str, torch.Tensor],
    masked: MaskedParams,
    data: TensorData,
    indices: torch.Tensor,
    task: ClientTask,
    execution: Execution = REFERENCE,
) -> ClientUpdate:
    """Run one :class:`ClientTask` on this client's samples."""
    generator = torch.Generator().manual_seed(task.seed)
    state, loss = local_train(model, global_state, masked, data, indices, task.settings, generator, execution)
    return ClientUpdate(task.client, state, float(len(indices)), loss)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    data: TensorData,
    batch_size: int,
    execution: Execution = REFERENCE,
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``state`` on the test set (the server's evaluate function).

    Always fp32, whatever the training precision, so accuracies compare across precisions.
    """
    model.load_state_dict(state)
    model.eval()
    correct, loss_sum = 0, 0.0
    n = len(data.y_test)
    for start in range(0, n, batch_size):
        xb = execution.inputs(data.normalise(data.x_test[start : start + batch_size]))
        yb = data.y_test[start : start + batch_size]
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(dim=1) == yb).sum())
    return correct / n, loss_sum / n
