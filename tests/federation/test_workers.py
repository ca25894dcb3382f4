"""Worker processes inside one training job: the serial engine's bits, started and stopped by the engine.

Real forked processes, a real strategy and a tiny real CNN; process liveness is read from ``/proc`` by
PID, so a leaked worker fails the test whatever the engine believes about it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from equitable_fl.config import ComputeSettings, ConfigError, Experiment
from equitable_fl.config.checks import _workers
from equitable_fl.config.dataset_checks import dataset_facts
from equitable_fl.config.memory import estimate
from equitable_fl.config.validate import SchemaError, schema, validated
from equitable_fl.config.workers import resolve_workers
from equitable_fl.federation.engine import InProcessEngine
from equitable_fl.federation.execution import REFERENCE, Execution
from equitable_fl.federation.resume import RoundCheckpoint
from equitable_fl.federation.workers import WorkerError
from equitable_fl.records import RoundRecord
from equitable_fl.stages import train

from .tiny import fleet, make_data, plan, settings, sparse_setup, split_clients, strategy

# tests/ is on sys.path (pytest's rootdir insertion): tests/workflow is importable as `workflow`
from workflow.snakemake_runner import tiny_config  # isort: skip

SIZES = [15, 20, 25, 12, 18]  # more clients than workers, unequal: workers finish out of order
TRAIN = settings(local_epochs=2, batch_size=8, lr=0.05, eval_batch_size=7, client_fraction=0.8)
CPU = torch.device("cpu")


class Stop(Exception):
    """Raised from on_round: an error in the parent while the workers are alive."""


def _run(
    engine: InProcessEngine,
    *,
    rounds: int = 3,
    threads: int = 1,
    clients: list[torch.Tensor] | None = None,
    on_round=None,
    ckpt: RoundCheckpoint | None = None,
):
    model, mask, ticket = sparse_setup(keep_prob=0.3)
    the_plan = plan(seed=7, rounds=rounds, train=TRAIN, snapshot_rounds=(0, 2))
    s = strategy(the_plan, fleet([1] * len(SIZES)), SIZES, mask=mask)
    torch.set_num_threads(threads)  # the job's threads (the conftest fixture restores them)
    parts = clients if clients is not None else split_clients(90, SIZES)
    return engine.run(s, model, ticket, make_data(n_train=90), parts, on_round=on_round, checkpoint=ckpt)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child nobody reaped is a leak too)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _assert_same_runs(a, b) -> None:
    assert _same(a.state, b.state)
    assert [r.metrics() for r in a.history] == [r.metrics() for r in b.history]
    assert a.snapshots.keys() == b.snapshots.keys()
    assert all(_same(a.snapshots[k], b.snapshots[k]) for k in a.snapshots)


@pytest.mark.parametrize("execution", [REFERENCE, Execution("fp32", True)], ids=["contiguous", "nhwc"])
def test_workers_train_the_serial_engines_bits(execution: Execution) -> None:
    serial = _run(InProcessEngine(execution), threads=1)
    pooled = _run(InProcessEngine(execution, workers=2), threads=2)
    again = _run(InProcessEngine(execution, workers=2), threads=2)
    assert [len(r.clients) for r in serial.history] == [4, 4, 4]  # a cohort of 4 of the 5 clients
    _assert_same_runs(pooled, serial)
    _assert_same_runs(again, pooled)


def test_both_engines_train_in_the_execution_asked() -> None:
    """bf16 autocast reaches local training (evaluation is fp32 either way), serial and pooled alike."""
    bf16 = Execution("bf16", True)
    serial = _run(InProcessEngine(bf16), rounds=1)
    pooled = _run(InProcessEngine(bf16, workers=2), rounds=1, threads=2)
    fp32 = _run(InProcessEngine(Execution("fp32", True)), rounds=1)
    _assert_same_runs(pooled, serial)
    assert not _same(serial.state, fp32.state)


def test_workers_run_during_the_phase_and_are_gone_after_it() -> None:
    engine = InProcessEngine(workers=2)
    alive: list[bool] = []
    _run(engine, threads=2, on_round=lambda r: alive.extend(_running(p) for p in engine.worker_pids))
    assert len(engine.worker_pids) == 2 and os.getpid() not in engine.worker_pids
    assert alive == [True] * 6  # both workers, every round
    assert not any(_running(p) for p in engine.worker_pids)


def test_workers_are_stopped_when_the_parent_fails() -> None:
    engine = InProcessEngine(workers=2)

    def fail(r: RoundRecord) -> None:
        raise Stop

    with pytest.raises(Stop):
        _run(engine, threads=2, on_round=fail)
    assert len(engine.worker_pids) == 2
    assert not any(_running(p) for p in engine.worker_pids)


def test_a_failing_client_is_reported_and_the_workers_are_stopped() -> None:
    engine = InProcessEngine(workers=2)
    parts = split_clients(90, SIZES)
    parts[2] = torch.tensor([0, 1, 10_000])  # an index past the data: training client 2 raises
    with pytest.raises(WorkerError, match=r"failed training client 2 in round 1:(.|\n)*IndexError"):
        _run(engine, threads=2, clients=parts)
    assert not any(_running(p) for p in engine.worker_pids)


def test_a_phase_resumed_with_workers_ends_as_the_serial_run(tmp_path: Path) -> None:
    whole = _run(InProcessEngine(), rounds=4)
    ckpt = RoundCheckpoint(tmp_path / "ckpt", every=2, key="k")

    def kill_after_3(r: RoundRecord) -> None:
        if r.round == 3:
            raise Stop

    with pytest.raises(Stop):
        _run(InProcessEngine(workers=2), rounds=4, threads=2, on_round=kill_after_3, ckpt=ckpt)
    seen: list[int] = []
    resumed = _run(
        InProcessEngine(workers=2), rounds=4, threads=2, on_round=lambda r: seen.append(r.round), ckpt=ckpt
    )
    assert seen == [3, 4]  # resumed after the checkpoint of round 2
    _assert_same_runs(resumed, whole)


def test_one_thread_or_one_worker_is_the_serial_engine() -> None:
    assert resolve_workers("auto", 1, CPU) == 0
    assert resolve_workers(1, 2, CPU) == 0
    assert resolve_workers("auto", 2, CPU) == 2
    assert resolve_workers(2, 2, CPU) == 2
    assert resolve_workers("auto", 2, torch.device("cuda")) == 0  # a GPU job runs one process
    engine = InProcessEngine(workers=resolve_workers("auto", 1, CPU))
    _run(engine)
    assert engine.worker_pids == ()


@pytest.mark.parametrize(
    ("setting", "threads", "device", "fix"),
    [
        (3, 2, "cpu", "compute.workers ≤ 2 or auto"),
        (2, 2, "cuda", "set compute.workers to auto or 1"),
        (0, 2, "cpu", "auto or an integer ≥ 1"),
        ("many", 2, "cpu", "auto or an integer ≥ 1"),
    ],
)
def test_bad_worker_settings_name_key_value_and_fix(setting, threads: int, device: str, fix: str) -> None:
    with pytest.raises(ValueError, match=r"compute\.workers") as err:
        resolve_workers(setting, threads, torch.device(device))
    assert repr(setting) in str(err.value) or str(setting) in str(err.value)
    assert fix in str(err.value)


def test_config_refuses_more_workers_than_threads() -> None:
    compute = validated(
        {"train_threads": 2, "workers": 4}, schema()["properties"]["compute"], where="compute"
    )
    assert _workers(compute) == [
        "compute.workers: 4 needs 4 threads but compute.train_threads is 2; "
        "allowed: auto or 1..2 (or raise compute.train_threads)"
    ]
    assert _workers({**compute, "workers": 2}) == [] and _workers({**compute, "workers": "auto"}) == []
    with pytest.raises(SchemaError, match=re.escape("compute.workers: 0 is out of range; allowed: x ≥ 1")):
        validated({"workers": 0}, schema()["properties"]["compute"], where="compute")
    # the setting reaches every training job through its params (it changes which thread count trained)
    assert ComputeSettings.from_config({"workers": 2, "train_threads": 2}).job()["workers"] == 2
    assert ComputeSettings.from_config({}).job()["workers"] == "auto"


def test_the_memory_check_counts_every_worker() -> None:
    cfg = validated(tiny_config())
    _, facts = dataset_facts(cfg)
    fact = facts["mnist-sample"]
    alone = estimate(fact, fact.net, cfg["training"], 10, "phase 1")
    pooled = estimate(fact, fact.net, cfg["training"], 10, "phase 1", workers=2)
    assert pooled.peak == alone.peak + 2 * pooled.worker
    assert pooled.worker > 256 * 2**20 and "+ 2 workers ×" in pooled.breakdown()
    # a budget that fits the job alone but not its two workers is refused, naming compute.workers
    cfg = tiny_config()
    budget = (alone.peak + pooled.worker) / 2**20
    cfg["compute"] = {**cfg.get("compute", {}), "train_threads": 2, "memory_budget_mb": budget}
    with pytest.raises(ConfigError, match=re.escape("compute.workers (2 worker processes)")):
        Experiment.load(cfg)
    Experiment.load({**cfg, "compute": {**cfg["compute"], "workers": 1}})


def test_workers_apply_to_the_inprocess_engine_only() -> None:
    with pytest.raises(
        ValueError, match=re.escape("compute.workers: 2 applies to compute.engine inprocess only")
    ):
        train._setup(2, "cpu", "flower", None, 2)
