"""Choosing the training device from the config."""

from __future__ import annotations

import pytest
import torch

from equitable_fl.device import DeviceError, resolve_device


def test_cpu_is_always_available() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_auto_picks_the_gpu_only_when_pytorch_sees_one() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_asking_for_a_missing_gpu_says_what_to_do() -> None:
    with pytest.raises(DeviceError, match=r"no CUDA GPU.*auto or cpu"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("bad", ["gpu", "tpu", "meta", "cuda:x"])
def test_unknown_device_names_are_refused(bad: str) -> None:
    with pytest.raises(DeviceError, match=r"compute\.device"):
        resolve_device(bad)
