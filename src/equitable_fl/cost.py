"""What a (possibly sparse) model costs a client: parameters, FLOPs per sample and bytes.

Costs are measured on the built model: a forward pass with hooks records each layer's output size,
and FLOPs count only the weights that survive the mask (2 FLOPs per multiply-accumulate). These are
the numbers the eligibility check and the FLOP speed-up use. They are *nominal*: a mask multiplied into
dense weights does not make PyTorch's dense kernels any faster, so measured wall-clock time is
reported separately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

TRAIN_FLOPS_FACTOR = 3.0  # forward + backward (input and weight gradients) ≈ 3 × forward
BYTES_PER_VALUE = 4  # fp32


@dataclass(frozen=True)
class ModelCost:
    """What one client pays for a model: the budgets the eligibility check compares against."""

    storage_bytes: float
    train_flops_per_sample: float
    transfer_bytes_per_round: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class LayerCost:
    weight: str
    weight_numel: int
    bias_numel: int
    positions: int  # output positions each weight is applied at (H_out × W_out for conv, 1 for linear)


def layer_costs(model: nn.Module, input_shape: Sequence[int]) -> list[LayerCost]:
    """Per conv/linear layer: how many times each weight is used per sample."""
    records: list[LayerCost] = []
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):

            def hook(m: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                positions = int(out.shape[2] * out.shape[3]) if out.dim() == 4 else 1
                bias = 0 if m.bias is None else m.bias.numel()
                records.append(LayerCost(f"{name}.weight", m.weight.numel(), bias, positions))

            hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return records


def forward_flops(costs: Sequence[LayerCost], mask: Mapping[str, torch.Tensor] | None = None) -> int:
    """FLOPs of one forward pass for one sample, counting only unmasked weights."""
    total = 0
    for c in costs:
        kept = c.weight_numel if mask is None or c.weight not in mask else int(mask[c.weight].sum())
        total += 2 * kept * c.positions + c.bias_numel * c.positions
    return total


def train_flops(costs: Sequence[LayerCost], mask: Mapping[str, torch.Tensor] | None = None) -> float:
    return TRAIN_FLOPS_FACTOR * forward_flops(costs, mask)


def dense_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Size of the model stored densely in fp32."""
    return sum(t.numel() for t in state.values()) * BYTES_PER_VALUE


def parameter_count(state: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() for t in state.values())
