"""Pruning masks as checked objects.

A :class:`Mask` maps each prunable weight name to a boolean tensor: True keeps the weight, False
prunes it. It validates itself on construction and against a model's weights, so a mask that does not
fit the model it is applied to fails loudly instead of silently broadcasting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from equitable_fl import checkpoint


class MaskError(ValueError):
    """A mask has non-0/1 values or does not match the weights it is applied to."""


class Mask(Mapping[str, torch.Tensor]):
    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        checked: dict[str, torch.Tensor] = {}
        for name, t in tensors.items():
            if t.dtype != torch.bool:
                if t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int32, torch.int64):
                    if not bool(((t == 0) | (t == 1)).all()):
                        raise MaskError(f"mask for {name!r} has values other than 0 and 1")
                    t = t != 0
                else:
                    raise MaskError(f"mask for {name!r} has unsupported dtype {t.dtype}")
            checked[name] = t.detach().clone()
        self._tensors = dict(sorted(checked.items()))

    @classmethod
    def ones_like(cls, state: Mapping[str, torch.Tensor], names: Iterable[str]) -> Mask:
        return cls({n: torch.ones_like(state[n], dtype=torch.bool) for n in names})

    # Mapping protocol
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def check_fits(self, state: Mapping[str, torch.Tensor]) -> None:
        for name, m in self._tensors.items():
            if name not in state:
                raise MaskError(f"mask names {name!r}, which the model does not have")
            if tuple(state[name].shape) != tuple(m.shape):
                raise MaskError(
                    f"mask for {name!r} has shape {tuple(m.shape)}, the weight has {tuple(state[name].shape)}"
                )

    def apply_(self, state: Mapping[str, torch.Tensor]) -> None:
        """Set the pruned entries of ``state`` to exactly 0 in place (even if they held inf or nan)."""
        self.check_fits(state)
        for name, m in self._tensors.items():
            state[name].masked_fill_(~m, 0)

    @property
    def num_total(self) -> int:
        return sum(m.numel() for m in self._tensors.values())

    @property
    def num_kept(self) -> int:
        return sum(int(m.sum()) for m in self._tensors.values())

    @property
    def density(self) -> float:
        return self.num_kept / self.num_total if self.num_total else 1.0

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    def report(self) -> dict[str, Any]:
        """Kept/total per layer and overall: the sparsity report written beside every mask."""
        layers = {
            name: {"total": m.numel(), "kept": int(m.sum()), "density": float(m.float().mean())}
            for name, m in self._tensors.items()
        }
        return {
            "layers": layers,
            "total": self.num_total,
            "kept": self.num_kept,
            "density": self.density,
            "sparsity": self.sparsity,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        checkpoint.save_tensors(path, {n: m.to(torch.uint8) for n, m in self._tensors.items()}, kind="mask")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Mask:
        tensors = checkpoint.load_tensors(path, kind="mask")
        try:
            return cls(tensors)
        except MaskError as exc:
            raise MaskError(f"{path}: {exc}; delete it and rerun the pruning step") from exc
