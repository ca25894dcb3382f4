"""Summarising one grid cell (dataset × pruning rate × seed): Equitable-FL against vanilla FL.

Speed-up is reported three ways and never conflated:

- ``flop_speedup_model``: dense / sparse training FLOPs per sample of the final model (nominal:
  what sparse kernels could save);
- ``flop_speedup_training``: total training FLOPs of vanilla FL / of all Equitable-FL phases;
- ``rounds_to_target``: rounds vanilla FL needs to reach the target accuracy / rounds Equitable-FL needs;
- ``measured``: wall-clock seconds per training sample, dense vs each phase, timed in this run. The
  masked model runs dense PyTorch kernels, so expect about 1.0× here; it is reported as measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from equitable_fl import io

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
    "flop_speedup",
    "bytes_communicated",
)


def _curve(metrics: dict[str, Any], phase: int | None) -> list[dict[str, Any]]:
    return [
        {
            "global_round": r["global_round"],
            "phase": phase,
            "round": r["round"],
            "accuracy": r["accuracy"],
            "loss": r["loss"],
            "num_clients": r["num_clients"],
        }
        for r in metrics["history"]
    ]


def _first_round_reaching(curve: Sequence[dict[str, Any]], target: float) -> int | None:
    return next((p["global_round"] for p in curve if p["accuracy"] >= target), None)


def _training_flops(metrics: dict[str, Any]) -> float:
    return sum(r["samples"] for r in metrics["history"]) * metrics["train_flops_per_sample"]


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
    target_tolerance: float,
    out_summary: str,
) -> None:
    phases = [io.read_json(p) for p in phase_metrics]
    timings = [io.read_json(p) for p in phase_timings]
    participations = [io.read_json(p) for p in phase_participation]
    van = io.read_json(vanilla_metrics)
    van_timing = io.read_json(vanilla_timing)
    tiers = {c["client"]: c["tier"] for c in io.read_json(clients_json)["clients"]}
    tier_ids = sorted(set(tiers.values()))

    details = []
    for m, part in zip(phases, participations, strict=True):
        d = {k: m[k] for k in PHASE_KEYS}
        d["eligible_by_tier"] = {str(t): sum(tiers[c] == t for c in part["eligible"]) for t in tier_ids}
        d["took_part_by_tier"] = part["took_part_by_tier"]
        admitted = set(part["admitted_tiers"] or tier_ids)
        # clients of an admitted tier that the phase's model does not fit
        d["excluded_by_budget"] = sum(
            1 for c in part["clients"] if c["tier"] in admitted and not c["eligible"]
        )
        details.append(d)

    curve = [p for m in phases for p in _curve(m, m["phase"])]
    van_curve = _curve(van, None)
    final, first = phases[-1], phases[0]
    target = van["final_accuracy"] - target_tolerance
    eq_round = _first_round_reaching(curve, target)
    van_round = _first_round_reaching(van_curve, target)
    eq_flops = sum(_training_flops(m) for m in phases)
    van_flops = _training_flops(van)
    eq_bytes = sum(m["bytes_communicated"] for m in phases)
    per_sample = [t["seconds_per_sample"] for t in timings]
    summary = {
        "dataset": dataset,
        "seed": int(seed),
        "pruning_rate": float(pruning_rate),
        "num_phases": len(phases),
        "phases": details,
        "curve": curve,
        "vanilla": {
            "participation": van["participation"],
            "rounds": van["rounds"],
            "final_accuracy": van["final_accuracy"],
            "best_accuracy": van["best_accuracy"],
            "clients_took_part": van["clients_took_part"],
            "bytes_communicated": van["bytes_communicated"],
            "curve": van_curve,
        },
        "final": {
            "accuracy": final["final_accuracy"],
            "vanilla_accuracy": van["final_accuracy"],
            "accuracy_gap_pp": 100.0 * (final["final_accuracy"] - van["final_accuracy"]),
            "sparsity": final["sparsity"],
            "params_kept": final["params_kept"],
            "params_total": final["params_total"],
            "dense_bytes": first["dense_bytes"],
            "encoded_bytes": final["encoded_bytes"],
            "size_reduction_pct": 100.0 * (1.0 - final["encoded_bytes"] / first["dense_bytes"]),
            "flop_speedup_model": final["flop_speedup"],
            "flop_speedup_training": van_flops / eq_flops if eq_flops else None,
            "bytes_communicated": eq_bytes,
            "vanilla_bytes_communicated": van["bytes_communicated"],
        },
        "rounds_to_target": {
            "target_accuracy": target,
            "tolerance": target_tolerance,
            "equitable_round": eq_round,
            "vanilla_round": van_round,
            "speedup": van_round / eq_round if eq_round and van_round else None,
        },
        "measured": {
            "note": "wall-clock of dense PyTorch kernels on masked weights: sparsity saves no time here",
            "threads": van_timing["threads"],
            "vanilla_seconds_per_sample": van_timing["seconds_per_sample"],
            "phase_seconds_per_sample": per_sample,
            "wallclock_speedup_final_phase": (
                van_timing["seconds_per_sample"] / per_sample[-1] if per_sample[-1] else None
            ),
            "equitable_train_seconds": sum(t["train_seconds_total"] for t in timings),
            "vanilla_train_seconds": van_timing["train_seconds_total"],
        },
    }
    io.write_json(out_summary, summary)
