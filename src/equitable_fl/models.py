"""The CNNs trained by the pipeline, built from a small registry of architectures.

All architectures share one class, :class:`ConvNet`: blocks of conv → max-pool → ReLU (pooling
before the ReLU is an exact rewrite of the usual order that does less work), then a hidden fully
connected layer and an output layer. Sizes are config knobs; parameter counts and FLOPs are computed
from the built model (see :mod:`equitable_fl.cost`), never hard-coded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from equitable_fl.architectures import ARCHITECTURES

# The weight of the classification layer of every architecture here (pruned at its own rate).
OUTPUT_LAYER = "output.weight"

# name → default architecture options (written in equitable_fl.architectures, which needs no PyTorch)
__all__ = ["ARCHITECTURES", "OUTPUT_LAYER", "ConvNet", "ModelConfigError"]


class ModelConfigError(ValueError):
    """An architecture name or option in the config is invalid."""


class ConvNet(nn.Module):
    output_layer = OUTPUT_LAYER

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int],
        kernel_size: int,
        hidden: int,
        pool_to: int | None = None,
    ) -> None:
        super().__init__()
        in_ch, height, width = (int(v) for v in input_shape)
        layers: list[nn.Module] = []
        for out_ch in channels:
            layers += [
                nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
                nn.MaxPool2d(2),
                nn.ReLU(inplace=True),
            ]
            in_ch, height, width = out_ch, height // 2, width // 2
            if min(height, width) < 1:
                raise ModelConfigError(
                    f"{len(channels)} conv blocks shrink a {input_shape} input below 1×1; use fewer channels"
                )
        if pool_to:
            # pool down to at most pool_to × pool_to; a smaller map is kept as is, never blown up
            height, width = min(height, pool_to), min(width, pool_to)
            layers.append(nn.AdaptiveAvgPool2d((height, width)))
        self.features = nn.Sequential(*layers)
        self.hidden = nn.Linear(in_ch * height * width, hidden)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        return self.output(torch.relu(self.hidden(x)))


def architecture_options(arch: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    if arch not in ARCHITECTURES:
        raise ModelConfigError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    opts = {**ARCHITECTURES[arch], **(overrides or {})}
    unknown = set(opts) - set(ARCHITECTURES[arch])
    if unknown:
        raise ModelConfigError(f"architecture {arch!r} has no option(s) {sorted(unknown)}")
    return opts


def build_model(
    arch: str, input_shape: Sequence[int], num_classes: int, overrides: dict[str, Any] | None = None
) -> ConvNet:
    """Build an untrained model (PyTorch's default initialisation, drawn from the global RNG)."""
    return ConvNet(input_shape, num_classes, **architecture_options(arch, overrides))


def init_model(
    arch: str,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int,
    overrides: dict[str, Any] | None = None,
) -> ConvNet:
    """Build the model with weights θ0 drawn from ``seed`` without touching the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch, input_shape, num_classes, overrides)


def prunable_names(model: nn.Module, include_output: bool = True) -> list[str]:
    """Weights of conv and linear layers; biases are never pruned."""
    names = [
        f"{mod_name}.weight"
        for mod_name, mod in model.named_modules()
        if isinstance(mod, nn.Conv2d | nn.Linear)
    ]
    return [n for n in names if include_output or n != OUTPUT_LAYER]


def output_layer(arch: str) -> str:
    """Name of the classification layer's weight in models of ``arch``."""
    architecture_options(arch)  # raises on an unknown architecture
    return ConvNet.output_layer
