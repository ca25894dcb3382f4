"""Semantic checks of a (schema-validated) config, and the per-step config slices.

The JSON schema catches wrong types and unknown keys; these checks catch what a schema cannot
(a grid dataset with no settings, a phase admitting a tier that does not exist, a rewind round past
phase 1) and report all problems at once, before Snakemake schedules any job. The slice functions
give each rule exactly the settings it depends on, which is what Snakemake's params trigger compares
to decide what to rerun.
"""

from __future__ import annotations

import copy
from typing import Any

from equitable_fl.data import registry


class ConfigError(ValueError):
    """The workflow config is inconsistent; the message lists every problem and how to fix it."""


def check(config: dict[str, Any]) -> None:
    problems: list[str] = []
    known = set(registry.names())
    for name in config["grid"]["datasets"]:
        if name not in known:
            problems.append(f"grid.datasets: unknown dataset {name!r} (known: {', '.join(sorted(known))})")
        elif name not in config["datasets"]:
            problems.append(f"grid.datasets lists {name!r} but datasets.{name} (options, model) is missing")
    n_tiers = int(config["clients"]["tiers"].get("count", 3))
    thresholds = config["clients"]["tiers"].get("thresholds")
    if thresholds is not None and len(thresholds) != n_tiers - 1:
        problems.append(
            f"clients.tiers: {n_tiers} tiers need {n_tiers - 1} thresholds, got {len(thresholds)}"
        )
    for k, ph in enumerate(config["phases"], start=1):
        bad = [t for t in ph.get("tiers", []) if t > n_tiers]
        if bad:
            problems.append(
                f"phases[{k - 1}].tiers: tier(s) {bad} do not exist (clients.tiers.count is {n_tiers})"
            )
    res = config["clients"]["resources"]
    if res.get("distribution", "uniform") == "uniform" and float(res.get("low", 0.25)) >= float(
        res.get("high", 1.6)
    ):
        problems.append("clients.resources: low must be smaller than high")
    rewind = int(config["pruning"].get("rewind_round", 0))
    if rewind > int(config["phases"][0]["rounds"]):
        problems.append(
            f"pruning.rewind_round {rewind} is past phase 1's {config['phases'][0]['rounds']} rounds"
        )
    factor = float(config["pruning"].get("output_rate_factor", 0.5))
    top_rate = max(config["grid"]["pruning_rates"])
    if top_rate * factor >= 1:
        problems.append(f"pruning.output_rate_factor {factor} × pruning rate {top_rate} must stay below 1")
    n_clients = int(config["clients"]["count"])
    if n_clients < n_tiers:
        problems.append(f"clients.count {n_clients} is smaller than the {n_tiers} tiers")
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))


def rate_label(rate: float) -> str:
    """How a pruning rate appears in paths (``rate0.5``): the shortest string that reads back exactly."""
    return repr(float(rate))


def admitted_tiers(config: dict[str, Any], k: int) -> list[int]:
    ph = config["phases"][k - 1]
    return sorted(ph["tiers"]) if "tiers" in ph else list(range(1, k + 1))


def training_slice(config: dict[str, Any], k: int | None = None) -> dict[str, Any]:
    training = copy.deepcopy(config["training"])
    if k is not None:
        training.update(config["phases"][k - 1].get("training", {}))
    return training


def phase_slice(config: dict[str, Any], k: int, seed: int) -> dict[str, Any]:
    rounds = [int(p["rounds"]) for p in config["phases"]]
    params = {
        "phase": k,
        "rounds": rounds[k - 1],
        "tiers": admitted_tiers(config, k),
        "global_round_offset": sum(rounds[: k - 1]),
        "seed": int(seed),
        "training": training_slice(config, k),
        "check_budget": bool(config["eligibility"]["check_budget"]),
    }
    if k == 1:
        params["rewind_round"] = int(config["pruning"]["rewind_round"])
    return params


def prune_slice(config: dict[str, Any], rate: float) -> dict[str, Any]:
    return {
        "rate": float(rate),
        "scope": config["pruning"]["scope"],
        "output_rate_factor": float(config["pruning"]["output_rate_factor"]),
    }


def vanilla_slice(config: dict[str, Any], seed: int) -> dict[str, Any]:
    return {
        "rounds": sum(int(p["rounds"]) for p in config["phases"]),
        "seed": int(seed),
        "training": training_slice(config),
        "participation": config["vanilla"]["participation"],
    }


def clients_slice(config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(config["clients"])
