"""Semantic checks of a schema-validated config: every check a job would otherwise fail on.

A grid dataset with no settings, unknown or ill-typed dataset options, split sizes the data cannot give,
a conv stack too deep for its input, tier thresholds out of order, a phase admitting a tier that does not
exist, an availability trace with bad rows, a rewind round past phase 1, a training job whose memory
estimate passes the budget: each problem is reported with the key, the value and what is allowed
(:func:`~equitable_fl.config.messages.problem`), all at once, before Snakemake schedules any job. Lists
whose order means something (tier thresholds, device classes) are checked, never sorted silently.

Dataset entries are checked by :mod:`~equitable_fl.config.dataset_checks` and memory by
:mod:`~equitable_fl.config.memory`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

import torch

from equitable_fl.config.dataset_checks import DatasetFacts, dataset_facts
from equitable_fl.config.memory import memory_problems
from equitable_fl.config.messages import problem, show
from equitable_fl.config.workers import resolve_workers
from equitable_fl.data import registry
from equitable_fl.dynamics.build import config_problems as availability_problems
from equitable_fl.partition import PARTITIONERS, method_options
from equitable_fl.resources import uniform_bounds

_DEVICE_QUANTITIES = ("flops_per_s", "download_bytes_per_s", "upload_bytes_per_s", "storage_bytes")


def problems(cfg: dict[str, Any], where: str = "") -> list[str]:
    """Every inconsistency of one (validated, defaults-filled) config; ``where`` prefixes variant keys.

    Dataset entries cannot differ between variants, so their own problems are reported for the base
    config only (``where == ""``); what depends on the variant's sections (clients, training, phases)
    is checked for each.
    """
    out: list[str] = []
    dataset_out, facts = dataset_facts(cfg)
    if not where:
        out += _grid_datasets(cfg) + dataset_out
    n_tiers = int(cfg["clients"]["tiers"]["count"])
    out += [where + p for p in _tiers(cfg["clients"]["tiers"])]
    for k, ph in enumerate(cfg["phases"], start=1):
        bad = [t for t in ph.get("tiers", []) if t > n_tiers]
        if bad:
            out.append(
                f"{where}phases[{k - 1}].tiers: {show(ph['tiers'])}: tier(s) {bad} do not exist; "
                f"allowed: tiers 1..{n_tiers} (clients.tiers.count is {n_tiers})"
            )
    out += [where + p for p in _resources(cfg["clients"]["resources"])]
    out += [where + p for p in _pruning(cfg)]
    n_clients = int(cfg["clients"]["count"])
    if n_clients < n_tiers:
        out.append(
            where
            + problem("clients.count", n_clients, f"is smaller than the {n_tiers} tiers", f"≥ {n_tiers}")
        )
    out += [where + p for p in _partition(cfg["clients"]["partition"])]
    out += [where + p for p in _clients_vs_data(cfg["clients"], facts.values())]
    out += availability_problems(cfg, where)  # reads trace files: bad rows fail before any job
    jobs = {
        f"phase {k}": {**cfg["training"], **ph.get("training", {})} for k, ph in enumerate(cfg["phases"], 1)
    }
    jobs["vanilla FL"] = dict(cfg["training"])
    budget = float(cfg["compute"]["memory_budget_mb"])
    workers = _workers(cfg["compute"])
    out += memory_problems(facts.values(), jobs, n_clients, budget, where, _job_workers(cfg["compute"]))
    if not where:
        out += workers
    return out


def _job_workers(compute: Mapping[str, Any]) -> int:
    """The worker processes each training job will fork, as the job decides it (0 for a GPU job)."""
    on = "cuda" if str(compute["device"]).startswith("cuda") else "cpu"
    try:
        return resolve_workers(compute["workers"], int(compute["train_threads"]), torch.device(on))
    except ValueError:  # more workers than threads: reported by _workers
        return 0


def _workers(compute: Mapping[str, Any]) -> list[str]:
    """Each worker process runs one thread: more of them than the job's threads oversubscribe it."""
    workers, threads = compute["workers"], int(compute["train_threads"])
    if workers == "auto" or int(workers) <= threads:
        return []
    return [
        problem(
            "compute.workers",
            workers,
            f"needs {workers} threads but compute.train_threads is {threads}",
            f"auto or {'1' if threads == 1 else f'1..{threads}'} (or raise compute.train_threads)",
        )
    ]


def _grid_datasets(cfg: Mapping[str, Any]) -> list[str]:
    out = []
    entries = sorted(cfg["datasets"])
    for name in cfg["grid"]["datasets"]:
        if name in cfg["datasets"]:
            continue
        if registry.default_kind(name) is None:
            out.append(
                problem(
                    "grid.datasets",
                    name,
                    f"is an unknown dataset {name!r}: not built in, and datasets.{name} is missing",
                    f"a built-in dataset ({', '.join(registry.names())}) or any name with a datasets.{name} "
                    "entry of kind image_folder",
                )
            )
        else:
            out.append(
                problem(
                    "grid.datasets",
                    name,
                    f"is listed but datasets.{name} (options, model) is missing",
                    f"datasets with settings: {', '.join(entries) or 'none'}, or add datasets.{name}",
                )
            )
    return out


def _tiers(tiers: Mapping[str, Any]) -> list[str]:
    """Tier thresholds: as many as the tiers need, strictly increasing, quantiles inside (0, 1)."""
    n, method, thresholds = int(tiers["count"]), tiers["method"], tiers.get("thresholds")
    key = "clients.tiers.thresholds"
    if thresholds is None:
        if method == "absolute":
            return [problem(key, None, "is missing with method absolute", f"{n - 1} increasing scores")]
        return []
    if len(thresholds) != n - 1:
        return [
            f"clients.tiers: {n} tiers need {n - 1} thresholds, got {len(thresholds)}: {key} is "
            f"{show(thresholds)}; allowed: {n - 1} strictly increasing values (or change clients.tiers.count)"
        ]
    out = []
    if any(b <= a for a, b in pairwise(thresholds)):
        out.append(
            problem(
                key,
                thresholds,
                "is not in strictly increasing order (thresholds are never sorted for you)",
                f"strictly increasing values, e.g. {show(sorted(set(thresholds)))}",
            )
        )
    if method == "quantile" and not all(0 < float(t) < 1 for t in thresholds):
        out.append(problem(key, thresholds, "has quantiles outside (0, 1)", "0 < x < 1 for method quantile"))
    return out


def _resources(res: Mapping[str, Any]) -> list[str]:
    out = []
    low, high = uniform_bounds(res)
    if res["distribution"] == "uniform" and low >= high:
        out.append(
            problem(
                "clients.resources.low",
                low,
                f"must be smaller than clients.resources.high ({high})",
                f"0 < low < high = {high}",
            )
        )
    classes = (res.get("devices") or {}).get("classes") or []
    for q in _DEVICE_QUANTITIES:
        for i, (a, b) in enumerate(pairwise(classes), start=1):
            if q in a and q in b and float(b[q]) < float(a[q]):
                out.append(
                    problem(
                        f"clients.resources.devices.classes[{i}].{q}",
                        b[q],
                        f"is smaller than classes[{i - 1}].{q} ({show(a[q])})",
                        f"≥ {show(a[q])}: list device classes weakest first, no quantity decreasing",
                    )
                )
    return out


def _pruning(cfg: Mapping[str, Any]) -> list[str]:
    out = []
    rewind, rounds = int(cfg["pruning"]["rewind_round"]), int(cfg["phases"][0]["rounds"])
    if rewind > rounds:
        out.append(
            f"pruning.rewind_round {rewind} is past phase 1's {rounds} rounds; allowed: 0 ≤ x ≤ {rounds} "
            "(phases[0].rounds)"
        )
    factor = float(cfg["pruning"]["output_rate_factor"])
    top_rate = max(cfg["grid"]["pruning_rates"])
    if top_rate * factor >= 1:
        out.append(
            f"pruning.output_rate_factor {factor} × pruning rate {top_rate} must stay below 1; allowed: "
            f"0 ≤ x < {1 / top_rate:.4g} (1 / the largest grid.pruning_rates)"
        )
    return out


def _partition(part: Mapping[str, Any]) -> list[str]:
    """Options of another partition method would be ignored without a word: they are refused."""
    method, own = part["method"], method_options(part["method"])
    out = []
    for key in sorted(set(part) - {"method"} - set(own)):
        owners = [m for m in PARTITIONERS if key in method_options(m)]
        out.append(
            problem(
                f"clients.partition.{key}",
                part[key],
                f"is an option of method {' or '.join(owners) or 'none'}, not of {method}",
                f"{', '.join(k for k in own if k != 'max_tries') or 'no options'} with method {method} "
                f"(remove {key}, or set clients.partition.method to {' or '.join(owners) or 'its method'})",
            )
        )
    return out


def _clients_vs_data(clients: Mapping[str, Any], facts: Iterable[DatasetFacts]) -> list[str]:
    """Every client needs samples: at least one (iid), ``min_samples`` (dirichlet), its shards (shards)."""
    out = []
    n_clients = int(clients["count"])
    part = clients["partition"]
    options = {**method_options(part["method"]), **part}
    per_client = int(options.get("min_samples", 1))
    spc = int(options.get("shards_per_client", 1))
    for fact in facts:
        if part["method"] == "shards":
            out += _shards_vs_data(n_clients, spc, fact)
            continue
        if fact.n_train is None or n_clients * per_client <= fact.n_train:
            continue
        need = f" × clients.partition.min_samples {per_client}" if per_client > 1 else ""
        out.append(
            problem(
                "clients.count",
                n_clients,
                f"clients{need} need more than the {fact.n_train:,} training images of {fact.name}",
                f"≤ {fact.n_train // per_client} clients (or more training images for {fact.name})",
            )
        )
    return out


def _shards_vs_data(n_clients: int, spc: int, fact: DatasetFacts) -> list[str]:
    """``count × shards_per_client`` one-label shards: at least one per class, one sample per shard."""
    total = n_clients * spc
    low, high = fact.num_classes or 1, fact.n_train
    if (high is None or total <= high) and total >= low:
        return []
    fits = f"{-(-low // n_clients)}..{high // n_clients}" if high is not None else f"≥ {-(-low // n_clients)}"
    return [
        problem(
            "clients.partition.shards_per_client",
            spc,
            f"× clients.count {n_clients} = {total} shards, but {fact.name} needs between {low} (one per "
            f"class) and {high if high is not None else 'its'} (one per training image)",
            f"{fits} with {n_clients} clients (or change clients.count)",
        )
    ]
