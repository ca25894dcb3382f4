"""The CNN architectures as numbers, without PyTorch: default options, shapes and parameter counts.

:class:`equitable_fl.models.ConvNet` builds the networks; this module states their default sizes (the
one place they are written) and the shape arithmetic of a ConvNet, so the config checks can tell before
any job, and without importing PyTorch, whether a conv stack fits its input, how many parameters the
model has and how large its activations are (:mod:`equitable_fl.config.memory`).

A ConvNet block is conv (``kernel_size``, padding ``kernel_size // 2``) → 2×2 max-pool → ReLU; each block
halves the height and width (rounding down), so a side of ``s`` pixels takes at most ``⌊log2 s⌋`` blocks
(an even kernel grows each conv's output by one pixel, which can allow one more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# name → default architecture options; a dataset's config may override any of them.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # McMahan et al.'s MNIST CNN ("FedAvg CNN"): 1.66 M parameters at these sizes.
    "cnn28": {"channels": [32, 64], "kernel_size": 5, "hidden": 512, "pool_to": None},
    # A VGG-style CNN for 3×32×32 images (CIFAR-10).
    "cnn32": {"channels": [32, 64, 128], "kernel_size": 3, "hidden": 256, "pool_to": None},
    # For image folders at any resolution: the last feature map is pooled to 4×4.
    "cnn_rgb": {"channels": [32, 64, 128, 128], "kernel_size": 3, "hidden": 256, "pool_to": 4},
}


def _conv_side(side: int, kernel_size: int) -> int:
    """A conv's output side with padding ``kernel_size // 2`` (an even kernel grows it by one)."""
    return side + 2 * (kernel_size // 2) - kernel_size + 1


def deepest(input_shape: Sequence[int], kernel_size: int = 3) -> int:
    """The most conv blocks an input of this (C, H, W) shape allows (each block halves H and W)."""
    side, blocks = min(int(input_shape[1]), int(input_shape[2])), 0
    while _conv_side(side, kernel_size) // 2 >= 1:
        side, blocks = _conv_side(side, kernel_size) // 2, blocks + 1
    return blocks


@dataclass(frozen=True)
class Block:
    in_channels: int
    out_channels: int
    conv_hw: tuple[int, int]  # the conv's output (same size as its input)
    pooled_hw: tuple[int, int]  # after the 2×2 max-pool


@dataclass(frozen=True)
class NetShape:
    """Every layer's size of one ConvNet on one input shape."""

    input_shape: tuple[int, int, int]
    blocks: list[Block]
    features: int  # inputs of the hidden layer (after the optional adaptive pooling)
    hidden: int
    num_classes: int
    kernel_size: int

    @property
    def params(self) -> int:
        """Weights and biases, as ``sum(t.numel() for t in ConvNet(...).state_dict().values())``."""
        k2 = self.kernel_size**2
        conv = sum(b.out_channels * (b.in_channels * k2 + 1) for b in self.blocks)
        return conv + self.hidden * (self.features + 1) + self.num_classes * (self.hidden + 1)


def net_shape(input_shape: Sequence[int], num_classes: int, options: Mapping[str, Any]) -> NetShape:
    """The layer sizes of ``ConvNet(input_shape, num_classes, **options)``.

    Raises ValueError when the blocks shrink the input below 1×1 (see :func:`deepest`).
    """
    c, h, w = (int(v) for v in input_shape)
    k = int(options["kernel_size"])
    blocks = []
    for out in options["channels"]:
        h, w = _conv_side(h, k), _conv_side(w, k)
        ph, pw = h // 2, w // 2
        if min(ph, pw) < 1:
            raise ValueError(
                f"{len(options['channels'])} conv blocks shrink a {tuple(input_shape)} input below 1×1; "
                f"at most {deepest(input_shape, k)} fit"
            )
        blocks.append(Block(c, int(out), (h, w), (ph, pw)))
        c, h, w = int(out), ph, pw
    pool_to = options.get("pool_to")
    if pool_to:
        h, w = min(h, int(pool_to)), min(w, int(pool_to))
    shape = (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
    return NetShape(
        shape, blocks, c * h * w, int(options["hidden"]), int(num_classes), int(options["kernel_size"])
    )
