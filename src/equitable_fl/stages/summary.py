"""Summarising one grid cell (dataset × pruning rate × seed × variant): Equitable-FL against vanilla FL.

Speed-up is reported in separate quantities and never conflated (names as in every table and MLflow):

- ``flop_speedup_model``: dense / sparse training FLOPs per sample of the final model (nominal: what
  sparse kernels could save);
- ``flop_speedup_training``: total training FLOPs of vanilla FL / of all Equitable-FL phases;
- ``simulated_time_speedup``: the fleet's simulated seconds to the target accuracy, vanilla FL / Equitable-FL
  (each round lasts as long as its slowest participant's download, training and upload on its device;
  :mod:`equitable_fl.fleet_time`); the ``simulated`` section has the times and each run's total;
- ``rounds_speedup``: rounds vanilla FL needs to reach the target accuracy / rounds Equitable-FL needs;
- ``wallclock_speedup``: seconds per training sample of θ0's dense model / of the final ticket, both
  trained side by side in one process by the cell's timing step (``measured.json``, see
  :mod:`equitable_fl.timing`). A masked ticket runs dense PyTorch kernels (expect about 1.0×); only a
  physically smaller (structured) ticket runs faster. The training jobs' own times stay beside it
  (``measured.job_*``) for information: jobs run in parallel, so their ratio is no speed-up.

Who ever trained is the ``coverage`` section (:mod:`equitable_fl.coverage`): ``client_coverage`` and
``data_coverage`` (the share of the training samples those clients hold, read from the partition), for
Equitable-FL over all phases and, with a ``vanilla_`` prefix, for vanilla FL.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from equitable_fl import io
from equitable_fl.coverage import Coverage, coverage
from equitable_fl.dynamics.participation import availability_summary
from equitable_fl.records import (
    CellSummary,
    FinalComparison,
    Measured,
    PhaseRecord,
    RoundsToTarget,
    SideBySideTiming,
    SimulatedTime,
    TimingRecord,
)

PHASE_KEYS = (
    "phase",
    "rounds",
    "admitted_tiers",
    "eligible_clients",
    "clients_took_part",
    "final_accuracy",
    "best_accuracy",
    "final_loss",
    "sparsity",
    "params_total",
    "params_kept",
    "prunable_total",
    "prunable_kept",
    "dense_bytes",
    "encoded_bytes",
    "size_reduction_pct",
    "train_flops_per_sample",
    "dense_train_flops_per_sample",
    "flop_speedup_model",
    "bytes_communicated",
)


def _curve(record: PhaseRecord) -> list[dict[str, Any]]:
    return [
        {
            "global_round": r.global_round,
            "phase": record.phase,
            "round": r.round,
            "accuracy": r.accuracy,
            "loss": r.loss,
            "num_clients": len(r.clients),
        }
        for r in record.history
    ]


def _first_round_reaching(curve: Sequence[dict[str, Any]], target: float) -> int | None:
    return next((p["global_round"] for p in curve if p["accuracy"] >= target), None)


def _round_seconds(records: Sequence[PhaseRecord]) -> list[float] | None:
    """Simulated seconds of every round of ``records`` in order; None if any round has no clock."""
    seconds = [r.simulated_seconds for m in records for r in m.history]
    return None if not seconds or any(s is None for s in seconds) else [float(s or 0.0) for s in seconds]


def _add_simulated_time(curve: list[dict[str, Any]], records: Sequence[PhaseRecord]) -> None:
    """Put each round's simulated seconds, and the seconds elapsed since the run began, on its point."""
    seconds = _round_seconds(records)
    if seconds is not None:
        for point, s, elapsed in zip(curve, seconds, accumulate(seconds), strict=True):
            point["simulated_seconds"] = s
            point["elapsed_simulated_seconds"] = elapsed


def simulated_time(
    phases: Sequence[PhaseRecord], vanilla: PhaseRecord, target: float, sparse_kernels: bool
) -> SimulatedTime | None:
    """Simulated seconds to ``target`` and in total, Equitable-FL (all phases) against vanilla FL.

    None when either run has no simulated clock (clients without devices).
    """
    eq, van = _round_seconds(phases), _round_seconds([vanilla])
    if eq is None or van is None:
        return None

    def to_target(records: Sequence[PhaseRecord], seconds: list[float]) -> float | None:
        accs = [r.accuracy for m in records for r in m.history]
        return next((t for a, t in zip(accs, accumulate(seconds), strict=True) if a >= target), None)

    eq_to, van_to = to_target(phases, eq), to_target([vanilla], van)
    return SimulatedTime(
        note=(
            "simulated fleet time: each round lasts as long as its slowest participant's download + "
            "training + upload on its device; "
            + ("sparse kernels bill surviving FLOPs" if sparse_kernels else "dense kernels bill every weight")
        ),
        sparse_kernels=sparse_kernels,
        vanilla_participation=vanilla.participation,
        target_accuracy=target,
        simulated_seconds_to_target=eq_to,
        vanilla_simulated_seconds_to_target=van_to,
        simulated_time_speedup=van_to / eq_to if eq_to and van_to else None,
        simulated_seconds=sum(eq),
        vanilla_simulated_seconds=sum(van),
        phase_simulated_seconds=[sum(_round_seconds([m]) or []) for m in phases],
    )


def _sparse_kernels(clients_json: str) -> bool:
    """Whether the clients' devices bill surviving FLOPs only (``resources.devices.sparse_kernels``)."""
    return bool((io.read_json(clients_json).get("devices") or {}).get("sparse_kernels", False))


def _coverage(
    phases: Sequence[PhaseRecord], vanilla: PhaseRecord, partition_json: str | None
) -> Coverage | None:
    """Shares of the clients and of the training samples that ever trained, from the partition's shards."""
    if partition_json is None:
        return None
    shards = io.read_json(partition_json)["clients"]
    client_samples = [len(shards[str(c)]) for c in range(len(shards))]
    took_part = (c for m in phases for r in m.history for c in r.clients)
    return coverage(took_part, (c for r in vanilla.history for c in r.clients), client_samples)


def _phase_details(
    record: PhaseRecord, participation: dict[str, Any], tiers: dict[int, int], tier_ids: list[int]
) -> dict[str, Any]:
    flat = record.to_json()
    d = {k: flat[k] for k in PHASE_KEYS}
    d["eligible_by_tier"] = {str(t): sum(tiers[c] == t for c in participation["eligible"]) for t in tier_ids}
    d["took_part_by_tier"] = participation["took_part_by_tier"]
    admitted = set(participation["admitted_tiers"] or tier_ids)
    # clients of an admitted tier that the phase's model does not fit
    d["excluded_by_budget"] = sum(
        1 for c in participation["clients"] if c["tier"] in admitted and not c["eligible"]
    )
    return d


def summarise(
    *,
    dataset: str,
    seed: int,
    pruning_rate: float,
    phase_metrics: Sequence[str],
    phase_timings: Sequence[str],
    phase_participation: Sequence[str],
    vanilla_metrics: str,
    vanilla_timing: str,
    clients_json: str,
    measured_json: str,
    target_tolerance: float,
    out_summary: str,
    variant: str = "",
    partition_json: str | None = None,
) -> CellSummary:
    """Write the cell's ``summary.json``; its ``coverage`` section needs ``partition_json``."""
    phases = [PhaseRecord.from_json(io.read_json(p)) for p in phase_metrics]
    timings = [TimingRecord.from_json(io.read_json(p)) for p in phase_timings]
    participations = [io.read_json(p) for p in phase_participation]
    van = PhaseRecord.from_json(io.read_json(vanilla_metrics))
    van_timing = TimingRecord.from_json(io.read_json(vanilla_timing))
    tiers = {c["client"]: c["tier"] for c in io.read_json(clients_json)["clients"]}
    side = SideBySideTiming.from_json(io.read_json(measured_json))
    tier_ids = sorted(set(tiers.values()))

    curve = [p for m in phases for p in _curve(m)]
    van_curve = _curve(van)
    _add_simulated_time(curve, phases)
    _add_simulated_time(van_curve, [van])
    final, first = phases[-1], phases[0]
    target = van.final_accuracy - target_tolerance
    eq_round = _first_round_reaching(curve, target)
    van_round = _first_round_reaching(van_curve, target)
    eq_flops = sum(m.training_flops() for m in phases)
    summary = CellSummary(
        dataset=dataset,
        seed=int(seed),
        pruning_rate=float(pruning_rate),
        variant=variant,
        simulated=simulated_time(phases, van, target, _sparse_kernels(clients_json)),
        coverage=_coverage(phases, van, partition_json),
        availability=availability_summary(phases, van, tiers),
        num_phases=len(phases),
        phases=[_phase_details(m, p, tiers, tier_ids) for m, p in zip(phases, participations, strict=True)],
        curve=curve,
        vanilla={
            "participation": van.participation,
            "rounds": van.rounds,
            "final_accuracy": van.final_accuracy,
            "best_accuracy": van.best_accuracy,
            "clients_took_part": van.clients_took_part,
            "bytes_communicated": van.bytes_communicated,
            "curve": van_curve,
        },
        final=FinalComparison(
            final_accuracy=final.final_accuracy,
            vanilla_accuracy=van.final_accuracy,
            accuracy_gap_pp=100.0 * (final.final_accuracy - van.final_accuracy),
            sparsity=final.size.sparsity,
            params_kept=final.size.params_kept,
            params_total=final.size.params_total,
            dense_bytes=first.size.dense_bytes,
            encoded_bytes=final.size.encoded_bytes,
            size_reduction_pct=100.0 * (1.0 - final.size.encoded_bytes / first.size.dense_bytes),
            flop_speedup_model=final.size.flop_speedup_model,
            flop_speedup_training=van.training_flops() / eq_flops if eq_flops else None,
            bytes_communicated=sum(m.bytes_communicated for m in phases),
            vanilla_bytes_communicated=van.bytes_communicated,
        ),
        rounds_to_target=RoundsToTarget(
            target_accuracy=target,
            target_tolerance=target_tolerance,
            rounds_to_target=eq_round,
            vanilla_rounds_to_target=van_round,
            rounds_speedup=van_round / eq_round if eq_round and van_round else None,
        ),
        measured=Measured(
            note=side.note,
            wallclock_speedup=side.wallclock_speedup,
            wallclock_speedup_min=side.wallclock_speedup_min,
            wallclock_speedup_max=side.wallclock_speedup_max,
            dense_seconds_per_sample=side.dense_seconds_per_sample,
            ticket_seconds_per_sample=side.ticket_seconds_per_sample,
            threads=side.threads,
            batch_size=side.batch_size,
            repeats=side.repeats,
            hardware=side.hardware,
            job_threads=van_timing.threads,
            job_vanilla_seconds_per_sample=van_timing.seconds_per_sample,
            job_phase_seconds_per_sample=[t.seconds_per_sample for t in timings],
            job_train_seconds=sum(t.train_seconds for t in timings),
            job_vanilla_train_seconds=van_timing.train_seconds,
        ),
    )
    io.write_json(out_summary, summary.to_json())
    return summary
