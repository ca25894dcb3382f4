"""Where training runs: CPU or a CUDA GPU, chosen by ``compute.device``.

``auto`` takes the first GPU when PyTorch sees one and the CPU otherwise, so one config serves a laptop
and a GPU box. On a GPU, deterministic algorithms are switched on (and cuBLAS given the fixed workspace
it needs for them) so that the same config and seed still give the same bits on the same device type;
results differ between CPU and GPU, as floating-point summation order does.
"""

from __future__ import annotations

import os

import torch


class DeviceError(RuntimeError):
    """The configured device is not available on this machine."""


def resolve_device(spec: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into a device, checking that it exists."""
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise DeviceError(
            f"compute.device {spec!r} is not a device name (use auto, cpu, cuda or cuda:N)"
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"compute.device is {spec!r} but PyTorch sees no CUDA GPU here; "
                "set compute.device to auto or cpu, or run on a GPU machine"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"compute.device {spec!r}: only {torch.cuda.device_count()} GPU(s) visible")
        # must be set before cuBLAS initialises; required by deterministic GEMMs
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    elif device.type != "cpu":
        raise DeviceError(f"compute.device {spec!r} is not supported (use auto, cpu, cuda or cuda:N)")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
