"""Saving and loading tensors (weights, masks) as safetensors files.

safetensors stores raw tensors with a JSON header: loading runs no pickled code, and the same tensors
give the same bytes, so checkpoints can be compared by hash and versioned with DVC. A ``kind`` entry in
the header says what the file holds, and loading checks it against the model, so a wrong or
truncated file is reported with its path before any training starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save

from equitable_fl import io


class CheckpointError(ValueError):
    """A checkpoint is unreadable, of the wrong kind, or does not fit the model."""


def save_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], kind: str) -> None:
    data = {name: t.detach().contiguous().cpu() for name, t in sorted(tensors.items())}
    io.write_bytes(path, save(data, metadata={"kind": kind}))


def load_tensors(path: str | os.PathLike[str], kind: str) -> dict[str, torch.Tensor]:
    hint = "delete it and rerun the step that writes it (snakemake will do so when it is missing)"
    try:
        with safe_open(str(path), framework="pt") as fh:
            found = (fh.metadata() or {}).get("kind")
        tensors = load_file(str(path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"cannot read {kind} checkpoint {path}: {exc}; {hint}") from exc
    if found != kind:
        raise CheckpointError(f"{path} holds a {found!r} checkpoint, expected {kind!r}; {hint}")
    return tensors


def load_state(
    path: str | os.PathLike[str], reference: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Load model weights and check names and shapes against a reference state dict."""
    state = load_tensors(path, kind="weights")
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    if missing or extra:
        raise CheckpointError(
            f"{path} does not fit the configured model: missing {missing}, unexpected {extra}; "
            "was the model architecture in the config changed? rerun from the init step"
        )
    for name, ref in reference.items():
        if state[name].shape != ref.shape:
            raise CheckpointError(
                f"{path}: {name} has shape {tuple(state[name].shape)}, the model expects {tuple(ref.shape)}"
            )
    return state


def save_state(path: str | os.PathLike[str], state: Mapping[str, torch.Tensor]) -> None:
    save_tensors(path, state, kind="weights")
