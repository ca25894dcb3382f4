"""The per-cell summary: accuracy gap, size reduction, the speed-ups and per-tier participation.

The inputs are small hand-made metrics/timing/participation files with the layout ``stages.train``
writes, and a ``measured.json`` as the timing step writes it, so every expected number below is worked
out by hand from the histories the helper builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from equitable_fl import io
from equitable_fl.stages import summary

# client → tier for every test: two clients per tier
TIERS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 3, 5: 3}


def history(accs: list[float], offset: int = 0, samples: int | list[int] = 100) -> list[dict[str, Any]]:
    per_round = samples if isinstance(samples, list) else [samples] * len(accs)
    return [
        {
            "round": r,
            "global_round": offset + r,
            "clients": [0, 1],
            "num_clients": 2,
            "samples": per_round[r - 1],
            "accuracy": acc,
            "loss": 1.0 - acc,
            "train_loss": 1.0 - acc,
            "bytes_down": 10,
            "bytes_up": 10,
        }
        for r, acc in enumerate(accs, start=1)
    ]


@dataclass
class Phase:
    accs: list[float]
    samples: int | list[int] = 100
    flops: float = 1000.0
    encoded_bytes: int = 4000
    seconds_per_sample: float = 0.001
    train_seconds: float = 1.0
    eligible: list[int] = field(default_factory=lambda: [0, 1])
    took_part_by_tier: dict[str, int] = field(default_factory=lambda: {"1": 2, "2": 0, "3": 0})
    reasons: dict[int, list[str]] = field(default_factory=dict)
    bytes_communicated: int = 500
    admitted: list[int] | str | None = "default"  # "default": tiers 1..k; None: every tier (vanilla)


def write_cell(
    tmp_path: Path,
    phases: list[Phase],
    vanilla_accs: list[float],
    *,
    vanilla_samples: int | list[int] = 100,
    vanilla_flops: float = 1000.0,
    vanilla_seconds_per_sample: float = 0.001,
    dense_bytes: int = 4000,
    tolerance: float = 0.01,
    measured: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the files of one grid cell, run ``summarise`` and return the summary it wrote."""
    paths: dict[str, list[str]] = {"metrics": [], "timing": [], "participation": []}
    offset = 0
    for k, ph in enumerate(phases, start=1):
        hist = history(ph.accs, offset, ph.samples)
        metrics = {
            "label": f"phase {k}",
            "phase": k,
            "rounds": len(ph.accs),
            "global_round_offset": offset,
            "admitted_tiers": list(range(1, k + 1)),
            "eligible_clients": len(ph.eligible),
            "clients_took_part": sum(ph.took_part_by_tier.values()),
            "final_accuracy": ph.accs[-1],
            "best_accuracy": max(ph.accs),
            "final_loss": 1.0 - ph.accs[-1],
            "sparsity": 0.0 if k == 1 else 0.5,
            "params_total": 1000,
            "params_kept": 1000,
            "prunable_total": 900,
            "prunable_kept": 900,
            "dense_bytes": dense_bytes,
            "encoded_bytes": ph.encoded_bytes,
            "size_reduction_pct": 100.0 * (1 - ph.encoded_bytes / dense_bytes),
            "train_flops_per_sample": ph.flops,
            "dense_train_flops_per_sample": vanilla_flops,
            "flop_speedup_model": vanilla_flops / ph.flops,
            "bytes_communicated": ph.bytes_communicated,
            "history": hist,
        }
        clients = [
            {
                "client": c,
                "tier": t,
                "eligible": c in ph.eligible,
                "reasons": ph.reasons.get(c, [] if c in ph.eligible else [f"tier {t} not admitted"]),
            }
            for c, t in TIERS.items()
        ]
        participation = {
            "admitted_tiers": list(range(1, k + 1)) if ph.admitted == "default" else ph.admitted,
            "check_budget": True,
            "eligible": ph.eligible,
            "took_part_by_tier": ph.took_part_by_tier,
            "clients": clients,
        }
        timing = {
            "threads": 1,
            "train_seconds_per_round": [],
            "samples_per_round": [],
            "seconds_per_sample": ph.seconds_per_sample,
            "train_seconds": ph.train_seconds,
        }
        for kind, obj in (("metrics", metrics), ("timing", timing), ("participation", participation)):
            path = tmp_path / f"phase{k}" / f"{kind}.json"
            io.write_json(path, obj)
            paths[kind].append(str(path))
        offset += len(ph.accs)
    van = {
        "label": "vanilla",
        "global_round_offset": 0,
        "admitted_tiers": None,
        "eligible_clients": 6,
        "final_loss": 1.0 - vanilla_accs[-1],
        "sparsity": 0.0,
        "params_total": 1000,
        "params_kept": 1000,
        "prunable_total": 900,
        "prunable_kept": 900,
        "dense_bytes": dense_bytes,
        "encoded_bytes": dense_bytes,
        "size_reduction_pct": 0.0,
        "dense_train_flops_per_sample": vanilla_flops,
        "flop_speedup_model": 1.0,
        "participation": "all",
        "rounds": len(vanilla_accs),
        "final_accuracy": vanilla_accs[-1],
        "best_accuracy": max(vanilla_accs),
        "clients_took_part": 6,
        "bytes_communicated": 9999,
        "train_flops_per_sample": vanilla_flops,
        "history": history(vanilla_accs, 0, vanilla_samples),
    }
    van_timing = {
        "threads": 2,
        "train_seconds_per_round": [],
        "samples_per_round": [],
        "seconds_per_sample": vanilla_seconds_per_sample,
        "train_seconds": 7.5,
    }
    io.write_json(tmp_path / "vanilla" / "metrics.json", van)
    io.write_json(tmp_path / "vanilla" / "timing.json", van_timing)
    io.write_json(
        tmp_path / "clients.json",
        {"clients": [{"client": c, "tier": t, "score": 0.5} for c, t in TIERS.items()]},
    )
    io.write_json(tmp_path / "measured.json", {**MEASURED, **(measured or {})})
    out = tmp_path / "summary.json"
    summary.summarise(
        dataset="toy",
        seed=3,
        pruning_rate=0.5,
        phase_metrics=paths["metrics"],
        phase_timings=paths["timing"],
        phase_participation=paths["participation"],
        vanilla_metrics=str(tmp_path / "vanilla" / "metrics.json"),
        vanilla_timing=str(tmp_path / "vanilla" / "timing.json"),
        clients_json=str(tmp_path / "clients.json"),
        measured_json=str(tmp_path / "measured.json"),
        target_tolerance=tolerance,
        out_summary=str(out),
    )
    return io.read_json(out)


# measured.json of the timing step: dense and ticket timed side by side (3 paired calls of 320 samples)
MEASURED: dict[str, Any] = {
    "note": "seconds per training sample of θ0's dense model / of the final ticket, side by side",
    "wallclock_speedup": 1.02,
    "wallclock_speedup_min": 0.97,
    "wallclock_speedup_max": 1.1,
    "dense_seconds_per_sample": 0.00032,
    "ticket_seconds_per_sample": 0.00031,
    "dense_seconds": [0.1024, 0.1, 0.11],
    "ticket_seconds": [0.1, 0.0992, 0.1],
    "samples_per_call": 320,
    "batch_size": 32,
    "steps": 10,
    "repeats": 3,
    "warmup": 2,
    "threads": 1,
    "device": "cpu",
    "execution": {"precision": "fp32", "channels_last": True},
    "dense_params": 1000,
    "ticket_params": 1000,
    "ticket_density": 0.5,
    "hardware": "Some CPU (2 logical CPUs; AVX2; torch 2 kernels AVX2; native bf16 no)",
    "capabilities": {"cpu_model": "Some CPU"},
}

THREE = [Phase([0.4, 0.6]), Phase([0.7, 0.8]), Phase([0.85, 0.91])]
VANILLA = [0.5, 0.7, 0.8, 0.9, 0.93, 0.95]


def test_identity_and_layout(tmp_path: Path) -> None:
    s = write_cell(tmp_path, THREE, VANILLA)
    assert (s["dataset"], s["seed"], s["pruning_rate"], s["num_phases"]) == ("toy", 3, 0.5, 3)
    assert [d["phase"] for d in s["phases"]] == [1, 2, 3]
    for d in s["phases"]:
        assert set(summary.PHASE_KEYS) <= set(d)
    assert s["vanilla"]["rounds"] == 6
    assert s["vanilla"]["participation"] == "all"


def test_accuracy_gap_in_percentage_points(tmp_path: Path) -> None:
    s = write_cell(tmp_path, THREE, VANILLA)
    assert s["final"]["final_accuracy"] == 0.91
    assert s["final"]["vanilla_accuracy"] == 0.95
    assert s["final"]["accuracy_gap_pp"] == pytest.approx(-4.0)
    ahead = write_cell(tmp_path / "b", [Phase([0.9]), Phase([0.97])], [0.9, 0.955])
    assert ahead["final"]["accuracy_gap_pp"] == pytest.approx(1.5)


def test_size_reduction_from_encoded_vs_dense_bytes(tmp_path: Path) -> None:
    phases = [
        Phase([0.5], encoded_bytes=4100),
        Phase([0.6], encoded_bytes=2000),
        Phase([0.7], encoded_bytes=1300),
    ]
    s = write_cell(tmp_path, phases, [0.7], dense_bytes=4000)
    assert s["final"]["dense_bytes"] == 4000
    assert s["final"]["encoded_bytes"] == 1300
    assert s["final"]["size_reduction_pct"] == pytest.approx(67.5)
    assert s["final"]["sparsity"] == 0.5


def test_flop_speedup_training_by_hand(tmp_path: Path) -> None:
    phases = [
        Phase([0.5, 0.6], samples=[100, 120], flops=1000.0),  # 220 × 1000 = 220,000
        Phase([0.7, 0.7, 0.7], samples=50, flops=500.0),  # 150 × 500 = 75,000
        Phase([0.8], samples=[300], flops=250.0),  # 300 × 250 = 75,000
    ]
    # vanilla: 6 rounds × 100 samples × 1000 FLOPs = 600,000
    s = write_cell(
        tmp_path, phases, [0.5, 0.6, 0.7, 0.8, 0.8, 0.8], vanilla_samples=100, vanilla_flops=1000.0
    )
    assert s["final"]["flop_speedup_training"] == pytest.approx(600_000 / 370_000)
    assert s["final"]["flop_speedup_model"] == pytest.approx(1000.0 / 250.0)


def test_rounds_to_target_and_speedup(tmp_path: Path) -> None:
    # target = 0.95 - 0.01 = 0.94; vanilla first reaches it at round 5, Equitable-FL at global round 4
    phases = [Phase([0.5, 0.9]), Phase([0.92, 0.945]), Phase([0.93, 0.96])]
    s = write_cell(tmp_path, phases, [0.5, 0.7, 0.8, 0.9, 0.941, 0.95], tolerance=0.01)
    rt = s["rounds_to_target"]
    assert rt["target_accuracy"] == pytest.approx(0.94)
    assert rt["target_tolerance"] == 0.01
    assert rt["vanilla_rounds_to_target"] == 5
    assert rt["rounds_to_target"] == 4  # phase 2, round 2 → global round 2 + 2
    assert rt["rounds_speedup"] == pytest.approx(5 / 4)


def test_rounds_to_target_counts_exactly_reaching(tmp_path: Path) -> None:
    # tolerance 0: the target is the vanilla final accuracy itself, and equal counts as reached
    phases = [Phase([0.5, 0.75]), Phase([0.5, 0.5, 0.75])]
    s = write_cell(tmp_path, phases, [0.25, 0.5, 0.75], tolerance=0.0)
    rt = s["rounds_to_target"]
    assert rt["vanilla_rounds_to_target"] == 3
    assert rt["rounds_to_target"] == 2
    assert rt["rounds_speedup"] == pytest.approx(1.5)


def test_rounds_to_target_never_reached_is_null(tmp_path: Path) -> None:
    s = write_cell(tmp_path, THREE, VANILLA, tolerance=0.01)  # Equitable-FL peaks at 0.91 < 0.94
    rt = s["rounds_to_target"]
    assert rt["rounds_to_target"] is None
    assert rt["rounds_speedup"] is None
    assert rt["vanilla_rounds_to_target"] == 6


def test_curves_use_global_rounds(tmp_path: Path) -> None:
    s = write_cell(tmp_path, THREE, VANILLA)
    assert [p["global_round"] for p in s["curve"]] == [1, 2, 3, 4, 5, 6]
    assert [p["phase"] for p in s["curve"]] == [1, 1, 2, 2, 3, 3]
    assert [p["round"] for p in s["curve"]] == [1, 2, 1, 2, 1, 2]
    assert [p["accuracy"] for p in s["curve"]] == [0.4, 0.6, 0.7, 0.8, 0.85, 0.91]
    van = s["vanilla"]["curve"]
    assert [p["accuracy"] for p in van] == VANILLA
    assert all(p["phase"] is None for p in van)


def test_eligible_and_took_part_by_tier(tmp_path: Path) -> None:
    budget = "storage: model needs 10 storage_bytes, budget is 5"
    phases = [
        Phase([0.5], eligible=[0, 1], took_part_by_tier={"1": 2, "2": 0, "3": 0}),
        Phase(
            [0.6],
            eligible=[0, 2, 3],
            took_part_by_tier={"1": 1, "2": 1, "3": 0},
            reasons={1: [budget], 4: ["tier 3 not admitted", budget]},
        ),
        Phase([0.7], eligible=[0, 1, 2, 3, 4, 5], took_part_by_tier={"1": 2, "2": 2, "3": 1}),
    ]
    s = write_cell(tmp_path, phases, [0.5, 0.6, 0.7])
    by_tier = [d["eligible_by_tier"] for d in s["phases"]]
    assert by_tier == [
        {"1": 2, "2": 0, "3": 0},
        {"1": 1, "2": 2, "3": 0},
        {"1": 2, "2": 2, "3": 2},
    ]
    assert [d["took_part_by_tier"] for d in s["phases"]] == [p.took_part_by_tier for p in phases]


def test_excluded_by_budget_counts_admitted_clients_that_do_not_fit(tmp_path: Path) -> None:
    budget = "compute: model needs 10 train_flops_per_sample, budget is 5"
    phases = [
        # tier 1 admitted, both tier-1 clients fit
        Phase([0.5], eligible=[0, 1]),
        # tiers 1-2 admitted: client 1 (tier 1) does not fit; client 4 (tier 3) is out by tier first
        Phase([0.6], eligible=[0, 2, 3], reasons={1: [budget], 4: ["tier 3 not admitted", budget]}),
        # every tier admitted: clients 3 and 5 do not fit
        Phase([0.7], eligible=[0, 1, 2, 4], reasons={3: [budget], 5: [budget]}),
    ]
    s = write_cell(tmp_path, phases, [0.5, 0.6, 0.7])
    assert [d["excluded_by_budget"] for d in s["phases"]] == [0, 1, 2]


def test_excluded_by_budget_with_all_tiers_admitted(tmp_path: Path) -> None:
    # admitted_tiers None (as decide() writes for vanilla) admits every tier
    budget = "bandwidth: model needs 10 transfer_bytes_per_round, budget is 5"
    reasons = {c: [budget] for c in (1, 3, 5)}
    every = write_cell(
        tmp_path / "all", [Phase([0.5], eligible=[0, 2, 4], admitted=None, reasons=reasons)], [0.5]
    )
    assert every["phases"][0]["excluded_by_budget"] == 3
    # the same verdicts with only tier 1 admitted: clients 2-5 are out by tier, only client 1 by budget
    tier1 = write_cell(tmp_path / "t1", [Phase([0.5], eligible=[0], admitted=[1], reasons=reasons)], [0.5])
    assert tier1["phases"][0]["excluded_by_budget"] == 1


def test_measured_wallclock_comes_from_the_side_by_side_timing(tmp_path: Path) -> None:
    phases = [
        Phase([0.5], seconds_per_sample=0.003, train_seconds=2.0),
        Phase([0.6], seconds_per_sample=0.0025, train_seconds=1.5),
        Phase([0.7], seconds_per_sample=0.0016, train_seconds=1.25),
    ]
    s = write_cell(tmp_path, phases, [0.5, 0.6, 0.7], vanilla_seconds_per_sample=0.002)
    m = s["measured"]
    # the speed-up is measured.json's, not vanilla's job time over the final phase's (0.002 / 0.0016)
    assert m["wallclock_speedup"] == 1.02
    assert (m["wallclock_speedup_min"], m["wallclock_speedup_max"]) == (0.97, 1.1)
    assert (m["dense_seconds_per_sample"], m["ticket_seconds_per_sample"]) == (0.00032, 0.00031)
    assert (m["threads"], m["batch_size"], m["repeats"]) == (1, 32, 3)
    assert m["note"] == MEASURED["note"]
    assert m["hardware"] == MEASURED["hardware"]
    # the training jobs' own times, for information only
    assert m["job_phase_seconds_per_sample"] == [0.003, 0.0025, 0.0016]
    assert m["job_vanilla_seconds_per_sample"] == 0.002
    assert m["job_train_seconds"] == pytest.approx(4.75)
    assert m["job_vanilla_train_seconds"] == 7.5
    assert m["job_threads"] == 2
    assert not {k for k in m if "speedup" in k and k.startswith("job_")}


def test_bytes_communicated_summed_over_phases(tmp_path: Path) -> None:
    phases = [Phase([0.5], bytes_communicated=100), Phase([0.6], bytes_communicated=40)]
    s = write_cell(tmp_path, phases, [0.6])
    assert s["final"]["bytes_communicated"] == 140
    assert s["final"]["vanilla_bytes_communicated"] == 9999
