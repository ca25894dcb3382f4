"""A training step with more than one thread: ``compute.workers`` decides how it trains, not what.

The step is run from Python on the files of the tiny cell of ``test_train_stage``; its weights and
metrics with two worker processes must be the bytes of the same step at one thread.
"""

from __future__ import annotations

from pathlib import Path

import torch

from equitable_fl import io
from equitable_fl.federation.execution import REFERENCE
from equitable_fl.stages import train

from . import test_train_stage as stage
from .test_train_stage import EXPERIMENT, SEED, Cell, outputs

cell = stage.cell  # the tiny cell's files (a module-scoped fixture), shared with the stage tests


def _vanilla(cell: Cell, folder: Path, threads: int, workers: str | int) -> train.TrainingOutputs:
    out = outputs(folder, phase=False)
    # the step sets this process's torch threads; the conftest fixture puts them back
    train.vanilla(
        **cell.inputs(),
        init_weights=str(cell.weights),
        init_mask=str(cell.mask),
        params=EXPERIMENT.vanilla_slice(SEED),
        threads=threads,
        out=out,
        device="cpu",
        engine="inprocess",
        workers=workers,
    )
    return out


def test_two_workers_write_the_one_thread_results(cell: Cell, tmp_path: Path) -> None:
    one = _vanilla(cell, tmp_path / "one", threads=1, workers="auto")
    pooled = _vanilla(cell, tmp_path / "pooled", threads=2, workers="auto")
    assert Path(pooled.weights).read_bytes() == Path(one.weights).read_bytes()
    assert Path(pooled.metrics).read_bytes() == Path(one.metrics).read_bytes()
    assert io.read_json(one.timing)["execution"]["workers"] == 0  # auto at one thread: the serial engine
    timing = io.read_json(pooled.timing)
    assert timing["threads"] == 2 and timing["execution"]["workers"] == 2


def test_one_worker_is_one_process_with_every_thread(cell: Cell, tmp_path: Path) -> None:
    out = _vanilla(cell, tmp_path / "serial", threads=2, workers=1)
    assert io.read_json(out.timing)["execution"]["workers"] == 0


def _checkpoint_key(folder: Path, threads: int, workers: int) -> str:
    torch.set_num_threads(threads)  # the conftest fixture puts the process's threads back
    ckpt = train._round_checkpoint(
        outputs(folder, phase=False), 1, {"x": 1}, REFERENCE, workers, str(folder / "input")
    )
    return ckpt.key


def test_round_checkpoints_are_keyed_by_the_threads_a_client_trains_on(tmp_path: Path) -> None:
    (tmp_path / "input").write_bytes(b"same inputs")
    one_thread = _checkpoint_key(tmp_path, threads=1, workers=0)
    # worker processes train at one thread: their checkpoints are the 1-thread job's, and resume it
    assert _checkpoint_key(tmp_path, threads=2, workers=2) == one_thread
    # one process at two threads sums in another order: its checkpoint must not be resumed at one
    assert _checkpoint_key(tmp_path, threads=2, workers=0) != one_thread
