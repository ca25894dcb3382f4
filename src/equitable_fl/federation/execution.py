"""How a client's training runs on this hardware: arithmetic precision and memory layout.

Measured on the CPUs seen here (``shared/notes/performance.md``): channels_last (NHWC) makes the conv
layers 1.1–1.6× faster per step in fp32; bf16 autocast with fp32 master weights 2–3× on CPUs with native
bf16 (AMX, AVX512-BF16), and slower than fp32 where bf16 is emulated. Both are chosen per job from the
config and checked against the machine before any training, so a bf16 request on a CPU without native
bf16 fails with the reason instead of silently running slower.

fp32 with either layout is bit-identical across reruns on the same machine; the layout changes the
summation order, so results differ slightly between layouts (not between reruns).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from equitable_fl.hardware import capabilities

PRECISIONS = ("fp32", "bf16")


class ExecutionError(ValueError):
    """The requested precision or layout cannot run (well) on this machine."""


@dataclass(frozen=True)
class Execution:
    precision: str
    channels_last: bool
    device_type: str = "cpu"

    @classmethod
    def resolve(cls, precision: str, channels_last: str | bool, device: torch.device) -> Execution:
        """Check the request against the machine; ``channels_last: auto`` turns it on."""
        if precision not in PRECISIONS:
            raise ExecutionError(f"compute.precision {precision!r}: choose one of {PRECISIONS}")
        if precision == "bf16" and device.type == "cpu" and not capabilities().native_bf16:
            raise ExecutionError(
                "compute.precision bf16: this CPU has no native bf16 (needs AMX or AVX512-BF16; "
                f"found {capabilities().line()}); bf16 would be emulated and slower than fp32. "
                "Use compute.precision: fp32 here."
            )
        layout = channels_last if isinstance(channels_last, bool) else channels_last == "auto"
        return cls(precision, layout, device.type)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def prepare(self, model: nn.Module) -> nn.Module:
        """The model in this layout (conv weights NHWC); done once per job, kept by load_state_dict."""
        return model.to(memory_format=self.memory_format) if self.channels_last else model

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format) if self.channels_last and x.dim() == 4 else x

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Forward pass and loss in bf16 where asked (weights and optimiser stay fp32)."""
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            yield

    def describe(self) -> dict[str, object]:
        return {"precision": self.precision, "channels_last": self.channels_last}


# The reference execution: fp32, contiguous; what tests and tools get unless they ask otherwise.
REFERENCE = Execution("fp32", False)
