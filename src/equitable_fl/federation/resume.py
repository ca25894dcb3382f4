"""Round-level checkpoints: a long phase killed near its end resumes from its last checkpoint.

Every ``every`` rounds the engine saves the global weights, the rewind snapshots and the round records
so far, atomically (a file is renamed into place only once complete), under a key that names what the
phase depends on (its config slice, the start weights and mask, the training data). Resuming needs
nothing else: a round's randomness comes only from seeds derived from (seed, stream, round, client) and
local optimiser state restarts every round, so a resumed phase ends with bit-identical results. The
checkpoint is deleted when the phase's outputs are written. A checkpoint whose key differs (the config
or an input changed) is ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from equitable_fl import checkpoint, io
from equitable_fl.progress import LOGGER_NAME
from equitable_fl.records import RoundRecord

State = dict[str, torch.Tensor]


@dataclass
class Resumed:
    """What a checkpoint restores: the last finished round and everything the engine had then."""

    round: int
    state: State
    history: list[RoundRecord]
    snapshots: dict[int, State]


def resume_key(params: Mapping[str, Any], *input_files: str) -> str:
    """sha256 over a phase's config slice and the bytes of its inputs: what a checkpoint must match."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path in input_files:
        h.update(io.sha256_file(path).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class RoundCheckpoint:
    """A folder holding at most one checkpoint of one phase; ``every`` 0 turns checkpoints off."""

    folder: Path
    every: int
    key: str

    def due(self, rnd: int, rounds: int) -> bool:
        return self.every > 0 and rnd % self.every == 0 and rnd < rounds

    def save(self, rnd: int, state: State, history: list[RoundRecord], snapshots: dict[int, State]) -> None:
        """Write the checkpoint of round ``rnd``.

        Tensors go to a folder of their own round first; the manifest that points at them is renamed into
        place last, so a kill at any moment leaves either the previous checkpoint or this one, whole.
        """
        tensors = self.folder / f"round{rnd}"
        tensors.mkdir(parents=True, exist_ok=True)
        checkpoint.save_state(tensors / "state.safetensors", state)
        for k, snap in snapshots.items():
            checkpoint.save_state(tensors / f"snapshot{k}.safetensors", snap)
        manifest = {
            "key": self.key,
            "round": rnd,
            "tensors": tensors.name,
            "snapshots": sorted(snapshots),
            "history": [{**r.metrics(), "train_seconds": r.train_seconds} for r in history],
        }
        io.write_json(self.folder / "manifest.json", manifest)
        for old in self.folder.glob("round*"):
            if old != tensors:
                shutil.rmtree(old, ignore_errors=True)

    def load(self, reference: Mapping[str, torch.Tensor]) -> Resumed | None:
        """The checkpoint if there is a complete one for this key, else None (a stale one is removed)."""
        manifest_path = self.folder / "manifest.json"
        if self.every <= 0 or not manifest_path.is_file():
            return None
        log = logging.getLogger(LOGGER_NAME)
        try:
            manifest = io.read_json(manifest_path)
            if manifest.get("key") != self.key:
                log.info("ignoring a round checkpoint of other settings or inputs in %s", self.folder)
                self.clear()
                return None
            tensors = self.folder / manifest["tensors"]
            state = checkpoint.load_state(tensors / "state.safetensors", reference)
            snapshots = {
                int(k): checkpoint.load_state(tensors / f"snapshot{k}.safetensors", reference)
                for k in manifest["snapshots"]
            }
            history = [RoundRecord.from_json(r) for r in manifest["history"]]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring an unreadable round checkpoint in %s: %s", self.folder, exc)
            self.clear()
            return None
        return Resumed(int(manifest["round"]), state, history, snapshots)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
