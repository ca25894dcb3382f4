"""Turning prepared uint8 arrays into training tensors without per-sample Python work.

Images stay uint8 in memory (4× smaller than float32); each batch is gathered by index and
normalised on the fly with per-channel statistics of the training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from equitable_fl.data.prepared import PreparedDataset


@dataclass(frozen=True)
class Normaliser:
    mean: torch.Tensor  # shape (1, C, 1, 1), float32, in [0, 1] units
    std: torch.Tensor

    @classmethod
    def fit(cls, x_uint8: np.ndarray) -> Normaliser:
        x = torch.from_numpy(x_uint8)
        c = x.shape[1]
        flat = x.transpose(0, 1).reshape(c, -1).to(torch.float64) / 255.0
        mean = flat.mean(dim=1).to(torch.float32).view(1, c, 1, 1)
        std = flat.std(dim=1).clamp_min(1e-6).to(torch.float32).view(1, c, 1, 1)
        return cls(mean, std)

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return (x_uint8.to(torch.float32).div_(255.0) - self.mean).div_(self.std)


@dataclass(frozen=True)
class TensorData:
    """Train and test tensors of one dataset plus its normaliser."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    normalise: Normaliser
    num_classes: int

    @classmethod
    def from_prepared(cls, ds: PreparedDataset, device: torch.device | str = "cpu") -> TensorData:
        """All splits moved to ``device`` once: batches are then gathered where the model runs."""
        norm = Normaliser.fit(ds.x_train)
        return cls(
            x_train=torch.from_numpy(ds.x_train).to(device),
            y_train=torch.from_numpy(ds.y_train).to(device),
            x_test=torch.from_numpy(ds.x_test).to(device),
            y_test=torch.from_numpy(ds.y_test).to(device),
            normalise=Normaliser(norm.mean.to(device), norm.std.to(device)),
            num_classes=ds.num_classes,
        )
