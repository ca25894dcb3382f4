"""What each grid cell's MLflow runs contain, built from the result files alone (no MLflow here).

A *cell* is one parent run:

- Equitable-FL: one per (dataset, pruning rate, seed), with one child run per phase. Phase 1 is trained
  once per (dataset, seed) and shared by every rate on disk, but each rate's parent gets its own phase-1
  child so that every cell reads as a complete experiment in the UI.
- vanilla FL: one per (dataset, seed), because the dense baseline does not depend on the pruning rate.
  It has no ``pruning_rate`` param or tag and no child runs (it is a single training stage); the
  comparison joins it to every rate of its (dataset, seed).

Both kinds carry the per-round series (step = global round, counted across phases, so Equitable-FL and
vanilla curves overlay in the UI): ``accuracy``, ``loss``, ``clients`` (clients that took part in the round)
and ``bytes_communicated`` (down + up in the round). Final values use other names (``final_accuracy``,
``sparsity``, ``size_reduction_pct``, the speed-ups …) and are logged at the last round's step.

Everything here is deterministic given the files: :meth:`CellRecord.content_hash` summarises it, and the
logger compares that hash with the one stored on the existing run to decide between "keep" and "replace".
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from equitable_fl import config as eqcfg
from equitable_fl import io

EQUITABLE = "equitable-fl"
VANILLA = "vanilla"
METHODS = (EQUITABLE, VANILLA)

ROLE_CELL = "cell"
ROLE_PHASE = "phase"

SERIES = ("accuracy", "loss", "clients", "bytes_communicated")


@dataclass
class RunRecord:
    """One MLflow run's content. ``artifacts`` are (local file, artifact folder or "" for the root)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_step: int = 0
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    artifacts: list[tuple[str, str]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """JSON-able content, artifacts by content hash (so a moved results folder hashes the same)."""
        return {
            "name": self.name,
            "params": self.params,
            "tags": self.tags,
            "metrics": self.metrics,
            "metrics_step": self.metrics_step,
            "series": {k: [list(p) for p in v] for k, v in self.series.items()},
            "artifacts": sorted(
                [folder, Path(path).name, file_sha256(path)] for path, folder in self.artifacts
            ),
        }


@dataclass
class CellRecord:
    """A parent run and its children, identified by ``key`` (stable across reruns and machines)."""

    key: str
    method: str
    dataset: str
    seed: int
    pruning_rate: str | None
    parent: RunRecord
    children: list[RunRecord]

    def content_hash(self) -> str:
        blob = json.dumps(
            {"parent": self.parent.payload(), "children": [c.payload() for c in self.children]},
            sort_keys=True,
            allow_nan=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            "cell_key": self.key,
            "method": self.method,
            "dataset": self.dataset,
            "seed": self.seed,
            "pruning_rate": self.pruning_rate,
        }


def cell_key(method: str, dataset: str, seed: int, pruning_rate: str | None = None) -> str:
    """``mnist/seed0/rate0.5/equitable-fl`` or ``mnist/seed0/vanilla``: the run_key of a parent run."""
    rate = f"/rate{pruning_rate}" if pruning_rate is not None else ""
    return f"{dataset}/seed{int(seed)}{rate}/{method}"


@functools.cache
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    return io.sha256_file(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file; shared files (phase 1, θ0, the dataset) are hashed once per process."""
    st = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


# ----------------------------------------------------------------------------------------------------
# Params: the cell's resolved config slice, flattened


def _param_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts to dotted keys (``training.lr``); lists and scalars as compact JSON (``[1,2]``)."""
    out: dict[str, str] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = _param_value(value)
    return out


def cell_config(config: Mapping[str, Any], dataset: str, seed: int, rate: str | None) -> dict[str, Any]:
    """Every setting the cell's results depend on, resolved the way the training rules see them.

    For Equitable-FL that is the dataset and model, the clients, the training section, each phase's slice
    (rounds, tiers, resolved training settings), pruning, eligibility, the summary tolerance and the
    vanilla baseline it is compared with; for vanilla FL, the dataset, model, clients, training section
    and the vanilla slice.
    """
    ds = config["datasets"][dataset]
    out: dict[str, Any] = {
        "method": EQUITABLE if rate is not None else VANILLA,
        "dataset": dataset,
        "seed": int(seed),
        "data": {"options": dict(ds.get("options") or {})},
        "model": dict(ds["model"]),
        "clients": eqcfg.clients_slice(dict(config)),
        "training": eqcfg.training_slice(dict(config)),  # the base section; phases may override it
        "vanilla": eqcfg.vanilla_slice(dict(config), int(seed)),
    }
    if rate is not None:
        cfg = dict(config)
        out["pruning_rate"] = float(rate)
        out["phases"] = {
            str(k): eqcfg.phase_slice(cfg, k, int(seed)) for k in range(1, len(config["phases"]) + 1)
        }
        out["pruning"] = {
            **eqcfg.prune_slice(cfg, float(rate)),
            "rewind_round": config["pruning"]["rewind_round"],
        }
        out["eligibility"] = dict(config["eligibility"])
        out["summary"] = dict(config["summary"])
    return out


def config_sha256(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------
# Metrics


def round_series(histories: Iterable[Sequence[Mapping[str, Any]]]) -> dict[str, list[tuple[int, float]]]:
    """The four per-round series over one or more phases' ``history`` lists, keyed by global round."""
    series: dict[str, list[tuple[int, float]]] = {name: [] for name in SERIES}
    for history in histories:
        for r in history:
            step = int(r["global_round"])
            series["accuracy"].append((step, float(r["accuracy"])))
            series["loss"].append((step, float(r["loss"])))
            series["clients"].append((step, float(r["num_clients"])))
            series["bytes_communicated"].append((step, float(r["bytes_down"] + r["bytes_up"])))
    return series


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    """Drop missing values (a target never reached): MLflow metrics are numbers, absence means n/a."""
    return {k: float(v) for k, v in values.items() if v is not None and not isinstance(v, bool)}


def _last_step(series: Mapping[str, list[tuple[int, float]]]) -> int:
    return max((s for s, _ in series.get("accuracy", [])), default=0)


# ----------------------------------------------------------------------------------------------------
# Cells


def _base_tags(method: str, dataset: str, seed: int, rate: str | None, role: str, key: str) -> dict[str, str]:
    tags = {"method": method, "dataset": dataset, "seed": str(int(seed)), "role": role, "cell_key": key}
    if rate is not None:
        tags["pruning_rate"] = rate
    return tags


def equitable_cell(spec: Mapping[str, Any], config: Mapping[str, Any]) -> CellRecord:
    """The Equitable-FL parent run of one (dataset, rate, seed) and one child run per phase."""
    dataset, seed, rate = str(spec["dataset"]), int(spec["seed"]), str(spec["pruning_rate"])
    key = cell_key(EQUITABLE, dataset, seed, rate)
    cfg = cell_config(config, dataset, seed, rate)
    summary = io.read_json(spec["summary"])
    phases = [io.read_json(p["metrics"]) for p in spec["phases"]]
    timings = [io.read_json(p["timing"]) for p in spec["phases"]]
    dataset_sha = file_sha256(spec["dataset_file"])
    final, rtt, measured = summary["final"], summary["rounds_to_target"], summary["measured"]

    tags = {
        **_base_tags(EQUITABLE, dataset, seed, rate, ROLE_CELL, key),
        "run_key": key,
        "num_phases": str(len(phases)),
        "config_sha256": config_sha256(cfg),
        "dataset_sha256": dataset_sha,
        "weights_sha256": file_sha256(spec["phases"][-1]["weights"]),
        "mask_sha256": file_sha256(spec["phases"][-1]["mask"]),
        "mlflow.note.content": (
            f"Equitable-FL on {dataset}, pruning rate {rate}, seed {seed}: {len(phases)} phases. "
            f"Final accuracy {100 * final['accuracy']:.2f}% vs vanilla "
            f"{100 * final['vanilla_accuracy']:.2f}%, sparsity {100 * final['sparsity']:.1f}%. "
            "Masks and weights are in DVC; their sha256 are tags."
        ),
    }
    series = round_series(m["history"] for m in phases)
    parent = RunRecord(
        name=f"{dataset} rate{rate} seed{seed} equitable-fl",
        params=flatten(cfg),
        tags=tags,
        metrics=_finite(
            {
                "final_accuracy": final["accuracy"],
                "vanilla_accuracy": final["vanilla_accuracy"],
                "accuracy_gap_pp": final["accuracy_gap_pp"],
                "best_accuracy": max(m["best_accuracy"] for m in phases),
                "final_loss": phases[-1]["final_loss"],
                "sparsity": final["sparsity"],
                "size_reduction_pct": final["size_reduction_pct"],
                "params_kept": final["params_kept"],
                "encoded_bytes": final["encoded_bytes"],
                "dense_bytes": final["dense_bytes"],
                "total_bytes_communicated": final["bytes_communicated"],
                "vanilla_bytes_communicated": final["vanilla_bytes_communicated"],
                "flop_speedup_model": final["flop_speedup_model"],
                "flop_speedup_training": final["flop_speedup_training"],
                "rounds_speedup": rtt["speedup"],
                "rounds_to_target": rtt["equitable_round"],
                "vanilla_rounds_to_target": rtt["vanilla_round"],
                "wallclock_speedup": measured["wallclock_speedup_final_phase"],
                "train_seconds": measured["equitable_train_seconds"],
            }
        ),
        series=series,
        artifacts=[(spec["summary"], "summary")]
        + [(f, "figures") for f in spec["figures"]]
        + [(p["sparsity"], f"sparsity/prune{p['phase'] - 1}") for p in spec["phases"] if p.get("sparsity")],
    )
    parent.metrics_step = _last_step(series)

    children = []
    for p, m, t in zip(spec["phases"], phases, timings, strict=True):
        k = int(p["phase"])
        child_tags = {
            **_base_tags(EQUITABLE, dataset, seed, rate, ROLE_PHASE, key),
            "run_key": f"{key}/phase{k}",
            "phase": str(k),
            "weights_sha256": file_sha256(p["weights"]),
            "mask_sha256": file_sha256(p["mask"]),
        }
        if p.get("rewind"):
            child_tags["rewind_sha256"] = file_sha256(p["rewind"])
        child_params = flatten(eqcfg.phase_slice(dict(config), k, seed))
        if k > 1:
            child_params.update(flatten({"pruning": cfg["pruning"]}))
        child_series = round_series([m["history"]])
        child = RunRecord(
            name=f"phase {k}",
            params=child_params,
            tags=child_tags,
            metrics=_finite(
                {
                    "final_accuracy": m["final_accuracy"],
                    "best_accuracy": m["best_accuracy"],
                    "final_loss": m["final_loss"],
                    "sparsity": m["sparsity"],
                    "size_reduction_pct": m["size_reduction_pct"],
                    "flop_speedup_model": m["flop_speedup"],
                    "encoded_bytes": m["encoded_bytes"],
                    "params_kept": m["params_kept"],
                    "eligible_clients": m["eligible_clients"],
                    "clients_took_part": m["clients_took_part"],
                    "total_bytes_communicated": m["bytes_communicated"],
                    "seconds_per_sample": t["seconds_per_sample"],
                    "train_seconds": t["train_seconds_total"],
                }
            ),
            series=child_series,
            artifacts=[(p["metrics"], ""), (p["participation"], ""), (p["timing"], "")]
            + ([(p["sparsity"], "")] if p.get("sparsity") else []),
        )
        child.metrics_step = _last_step(child_series)
        children.append(child)
    return CellRecord(key, EQUITABLE, dataset, seed, rate, parent, children)


def vanilla_cell(spec: Mapping[str, Any], config: Mapping[str, Any]) -> CellRecord:
    """The dense baseline of one (dataset, seed): a parent run with no children and no pruning rate.

    Speed-ups are ratios vanilla / Equitable-FL, so the baseline's own are 1 by definition; they are logged
    as 1 (and its sparsity and size reduction as 0) so that parent runs chart side by side in the UI.
    """
    dataset, seed = str(spec["dataset"]), int(spec["seed"])
    key = cell_key(VANILLA, dataset, seed)
    cfg = cell_config(config, dataset, seed, None)
    m = io.read_json(spec["metrics"])
    t = io.read_json(spec["timing"])
    series = round_series([m["history"]])
    parent = RunRecord(
        name=f"{dataset} seed{seed} vanilla",
        params=flatten(cfg),
        tags={
            **_base_tags(VANILLA, dataset, seed, None, ROLE_CELL, key),
            "run_key": key,
            "num_phases": "0",
            "config_sha256": config_sha256(cfg),
            "dataset_sha256": file_sha256(spec["dataset_file"]),
            "weights_sha256": file_sha256(spec["weights"]),
            "mlflow.note.content": (
                f"Vanilla FedAvg (dense) on {dataset}, seed {seed}, {m['rounds']} rounds, participation "
                f"'{m['participation']}': the baseline of every pruning rate of this dataset and seed. "
                f"Final accuracy {100 * m['final_accuracy']:.2f}%."
            ),
        },
        metrics=_finite(
            {
                "final_accuracy": m["final_accuracy"],
                "best_accuracy": m["best_accuracy"],
                "final_loss": m["final_loss"],
                "sparsity": 0.0,
                "size_reduction_pct": 0.0,
                "params_kept": m["params_kept"],
                "dense_bytes": m["dense_bytes"],
                "total_bytes_communicated": m["bytes_communicated"],
                "flop_speedup_model": 1.0,
                "flop_speedup_training": 1.0,
                "rounds_speedup": 1.0,
                "wallclock_speedup": 1.0,
                "eligible_clients": m["eligible_clients"],
                "clients_took_part": m["clients_took_part"],
                "seconds_per_sample": t["seconds_per_sample"],
                "train_seconds": t["train_seconds_total"],
            }
        ),
        series=series,
        artifacts=[(spec["metrics"], ""), (spec["participation"], ""), (spec["timing"], "")],
    )
    parent.metrics_step = _last_step(series)
    return CellRecord(key, VANILLA, dataset, seed, None, parent, [])


def build_cells(specs: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> list[CellRecord]:
    """Records for every cell spec; raises on an unknown method or a duplicated cell."""
    records: list[CellRecord] = []
    for spec in specs:
        method = spec["method"]
        if method == EQUITABLE:
            records.append(equitable_cell(spec, config))
        elif method == VANILLA:
            records.append(vanilla_cell(spec, config))
        else:
            raise ValueError(f"unknown method {method!r} in a tracking cell (expected one of {METHODS})")
    keys = [r.key for r in records]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"cells listed twice for tracking: {dup}")
    return records
