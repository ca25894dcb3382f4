"""Round-level checkpoints: a phase killed mid-way resumes to bit-identical results."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from equitable_fl.federation.engine import InProcessEngine
from equitable_fl.federation.execution import Execution
from equitable_fl.federation.resume import RoundCheckpoint, resume_key
from equitable_fl.records import RoundRecord

from .tiny import fleet, make_data, plan, settings, sparse_setup, split_clients, strategy

SIZES = [15, 20, 25]
ROUNDS = 6


class Killed(Exception):
    """Stands for a SIGKILL after a given round (the engine never sees it coming)."""


def _run(ckpt: RoundCheckpoint | None, kill_after: int | None = None, execution: Execution | None = None):
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    the_plan = plan(
        seed=3, rounds=ROUNDS, train=settings(local_epochs=1, batch_size=8), snapshot_rounds=(0, 2)
    )
    s = strategy(the_plan, fleet([1, 1, 1]), SIZES, mask=mask)
    seen: list[int] = []

    def on_round(r: RoundRecord) -> None:
        seen.append(r.round)
        if kill_after is not None and r.round == kill_after:
            raise Killed

    engine = InProcessEngine(execution) if execution else InProcessEngine()
    result = engine.run(
        s, model, ticket, make_data(), split_clients(60, SIZES), on_round=on_round, checkpoint=ckpt
    )
    return result, seen


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kill_after", [3, 5])
def test_killed_phase_resumes_from_its_last_checkpoint_bit_identically(
    tmp_path: Path, kill_after: int
) -> None:
    whole, _ = _run(None)
    ckpt = RoundCheckpoint(tmp_path / "ckpt", every=2, key="k")
    with pytest.raises(Killed):
        _run(ckpt, kill_after=kill_after)
    saved = (kill_after // 2) * 2  # the last multiple of `every` before the kill
    resumed, seen = _run(ckpt)
    assert seen == list(range(saved + 1, ROUNDS + 1))  # only the rounds after the checkpoint ran again
    assert _same(resumed.state, whole.state)
    assert [r.metrics() for r in resumed.history] == [r.metrics() for r in whole.history]
    assert resumed.snapshots.keys() == whole.snapshots.keys()
    assert all(_same(resumed.snapshots[k], whole.snapshots[k]) for k in whole.snapshots)


def test_checkpoint_of_other_settings_is_ignored_and_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    with pytest.raises(Killed):
        _run(RoundCheckpoint(folder, every=2, key="old"), kill_after=3)
    assert (folder / "manifest.json").is_file()
    _, seen = _run(RoundCheckpoint(folder, every=2, key="new"))
    assert seen == list(range(1, ROUNDS + 1))  # started over


def test_half_written_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    ckpt = RoundCheckpoint(folder, every=2, key="k")
    with pytest.raises(Killed):
        _run(ckpt, kill_after=3)  # a whole checkpoint of round 2
    # a kill while round 4's tensors were being written: tensors without the manifest that points at them
    (folder / "round4").mkdir()
    (folder / "round4" / "state.safetensors").write_bytes(b"truncated")
    _, seen = _run(ckpt)
    assert seen == list(range(3, ROUNDS + 1))


def test_no_checkpoint_when_turned_off_and_key_covers_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    _run(RoundCheckpoint(folder, every=0, key="k"))
    assert not folder.exists()
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    assert resume_key({"x": 1}, str(a)) != resume_key({"x": 1}, str(b))
    assert resume_key({"x": 1}, str(a)) != resume_key({"x": 2}, str(a))
    assert resume_key({"x": 1}, str(a)) == resume_key({"x": 1}, str(a))


def test_resume_with_channels_last_is_bit_identical(tmp_path: Path) -> None:
    ex = Execution("fp32", True)
    whole, _ = _run(None, execution=ex)
    ckpt = RoundCheckpoint(tmp_path / "ckpt", every=2, key="k")
    with pytest.raises(Killed):
        _run(ckpt, kill_after=5, execution=ex)
    resumed, _ = _run(ckpt, execution=ex)
    assert _same(resumed.state, whole.state)
