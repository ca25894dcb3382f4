"""Semantic checks of a schema-validated config: what a JSON schema cannot say.

A grid dataset with no settings, a phase admitting a tier that does not exist, a rewind round past
phase 1: each problem is reported with the key, the value and what is allowed, all at once, before
Snakemake schedules any job.
"""

from __future__ import annotations

from typing import Any

from equitable_fl.data import registry
from equitable_fl.resources import uniform_bounds


def problems(cfg: dict[str, Any], where: str = "") -> list[str]:
    """Every inconsistency of one (validated, defaults-filled) config; ``where`` prefixes variant keys."""
    out: list[str] = []
    known = set(registry.names())
    for name in cfg["grid"]["datasets"]:
        if name not in known:
            out.append(f"grid.datasets: unknown dataset {name!r} (known: {', '.join(sorted(known))})")
        elif name not in cfg["datasets"]:
            out.append(f"grid.datasets lists {name!r} but datasets.{name} (options, model) is missing")
    tiers = cfg["clients"]["tiers"]
    n_tiers = int(tiers["count"])
    thresholds = tiers.get("thresholds")
    if thresholds is not None and len(thresholds) != n_tiers - 1:
        out.append(
            f"{where}clients.tiers: {n_tiers} tiers need {n_tiers - 1} thresholds, got {len(thresholds)}"
        )
    for k, ph in enumerate(cfg["phases"], start=1):
        bad = [t for t in ph.get("tiers", []) if t > n_tiers]
        if bad:
            out.append(
                f"{where}phases[{k - 1}].tiers: tier(s) {bad} do not exist (clients.tiers.count is {n_tiers})"
            )
    res = cfg["clients"]["resources"]
    low, high = uniform_bounds(res)
    if res["distribution"] == "uniform" and low >= high:
        out.append(f"{where}clients.resources: low must be smaller than high")
    rewind = int(cfg["pruning"]["rewind_round"])
    if rewind > int(cfg["phases"][0]["rounds"]):
        out.append(
            f"{where}pruning.rewind_round {rewind} is past phase 1's {cfg['phases'][0]['rounds']} rounds"
        )
    factor = float(cfg["pruning"]["output_rate_factor"])
    top_rate = max(cfg["grid"]["pruning_rates"])
    if top_rate * factor >= 1:
        out.append(f"{where}pruning.output_rate_factor {factor} × pruning rate {top_rate} must stay below 1")
    n_clients = int(cfg["clients"]["count"])
    if n_clients < n_tiers:
        out.append(f"{where}clients.count {n_clients} is smaller than the {n_tiers} tiers")
    return out
