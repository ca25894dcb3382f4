"""What the machine can do: the CPU's vector and matrix units, and which precisions run natively.

The CPU model changes between machines of the same kind (AMD Zen 3 with AVX2 only, AMD Zen 4 with
AVX-512 and AVX512-BF16, Intel Xeon with AMX): kernel choices must follow what the CPU has, and every
training job and benchmark logs this line so that a number can be traced to the hardware it ran on.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import asdict, dataclass

import torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@dataclass(frozen=True)
class Capabilities:
    """The CPU (and GPU, if any) a job runs on, as far as kernel choices are concerned."""

    cpu_model: str
    logical_cpus: int
    torch_capability: str  # what PyTorch's CPU kernels dispatch to: DEFAULT, AVX2, AVX512, …
    avx2: bool
    avx512: bool
    avx512_bf16: bool
    amx_bf16: bool
    cuda_device: str | None
    torch_version: str

    @property
    def native_bf16(self) -> bool:
        """bf16 matmuls run in hardware (AMX tiles or AVX512-BF16), or on a CUDA GPU."""
        return self.amx_bf16 or self.avx512_bf16 or self.cuda_device is not None

    def line(self) -> str:
        """One human-readable line for logs and benchmark output."""
        units = [
            name
            for name, on in (
                ("AVX2", self.avx2),
                ("AVX-512", self.avx512),
                ("AVX512-BF16", self.avx512_bf16),
                ("AMX-BF16", self.amx_bf16),
            )
            if on
        ]
        gpu = f", GPU {self.cuda_device}" if self.cuda_device else ""
        simd = " ".join(units) or "no SIMD extensions seen"
        return (
            f"{self.cpu_model} ({self.logical_cpus} logical CPUs; {simd}; "
            f"torch {self.torch_version} kernels {self.torch_capability}; "
            f"native bf16 {'yes' if self.native_bf16 else 'no'}{gpu})"
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "native_bf16": self.native_bf16}


@functools.cache
def capabilities() -> Capabilities:
    flags = _flags()
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Capabilities(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 1,
        torch_capability=torch.backends.cpu.get_cpu_capability(),
        avx2="avx2" in flags,
        avx512="avx512f" in flags,
        avx512_bf16="avx512_bf16" in flags,
        amx_bf16="amx_bf16" in flags,
        cuda_device=cuda,
        torch_version=torch.__version__,
    )
