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
and ``round_bytes_communicated`` (down + up in the round). Final values use other names (``final_accuracy``,
``sparsity``, ``size_reduction_pct``, the speed-ups …) and are logged at the last round's step. Every run
carries a ``method`` param; every parent an ``overview.html`` at its artifact root (:mod:`.run_card`), and
runs start and end when their training did (:mod:`.run_times`).

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

from equitable_fl import io
from equitable_fl.coverage import Coverage
from equitable_fl.dynamics.participation import AvailabilitySummary
from equitable_fl.grid import EQUITABLE, VANILLA, GridCell
from equitable_fl.records import CellSummary, SimulatedTime, TimingRecord
from equitable_fl.tracking import precision, run_card, run_times
from equitable_fl.tracking.params import cell_config, config_sha256, flatten

ROLE_CELL = "cell"
ROLE_PHASE = "phase"

SERIES = ("accuracy", "loss", "clients", "round_bytes_communicated")


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
    texts: dict[str, str] = field(default_factory=dict)  # artifacts rendered here: root file name → text
    start_ms: int | None = None  # the training's own times (run_times), not part of the content hash
    end_ms: int | None = None

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
            "texts": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(self.texts.items())},
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


@functools.cache
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    return io.sha256_file(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file; shared files (phase 1, θ0, the dataset) are hashed once per process."""
    st = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


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
            series["round_bytes_communicated"].append((step, float(r["bytes_down"] + r["bytes_up"])))
    return series


def _finite(values: Mapping[str, Any]) -> dict[str, float]:
    """Drop missing values (a target never reached): MLflow metrics are numbers, absence means n/a.

    Derived percentages are rounded to the precision they are measured at (:mod:`.precision`).
    """
    return precision.metrics(
        {k: float(v) for k, v in values.items() if v is not None and not isinstance(v, bool)}
    )


def _last_step(series: Mapping[str, list[tuple[int, float]]]) -> int:
    return max((s for s, _ in series.get("accuracy", [])), default=0)


def _simulated_metrics(sim: SimulatedTime | None) -> dict[str, Any]:
    """An Equitable-FL parent's simulated-clock metrics; none when its clients had no devices."""
    if sim is None:
        return {}
    return {
        "simulated_time_speedup": sim.simulated_time_speedup,
        "simulated_seconds_to_target": sim.simulated_seconds_to_target,
        "vanilla_simulated_seconds_to_target": sim.vanilla_simulated_seconds_to_target,
        "simulated_seconds": sim.simulated_seconds,
        "vanilla_simulated_seconds": sim.vanilla_simulated_seconds,
    }


def _coverage_metrics(cov: Coverage | None) -> dict[str, float]:
    """An Equitable-FL parent's shares of clients and of training data that ever trained, and vanilla's."""
    if cov is None:
        return {}
    names = ("client_coverage", "data_coverage", "vanilla_client_coverage", "vanilla_data_coverage")
    return {name: getattr(cov, name) for name in names}


def _availability_metrics(section: AvailabilitySummary | None) -> dict[str, float]:
    """An Equitable-FL parent's dropout rate and its paired vanilla run's; none for a static fleet."""
    if section is None:
        return {}
    return {"dropout_rate": section.dropout_rate, "vanilla_dropout_rate": section.vanilla_dropout_rate}


def _vanilla_simulated_metrics(history: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """A vanilla parent's total simulated seconds (and its speed-up over itself, 1); none without a clock."""
    seconds = [r.get("simulated_seconds") for r in history]
    if not seconds or any(s is None for s in seconds):
        return {}
    return {"simulated_seconds": float(sum(seconds)), "simulated_time_speedup": 1.0}


# ----------------------------------------------------------------------------------------------------
# Cells


def _base_tags(cell: GridCell, role: str) -> dict[str, str]:
    return {**cell.tags(), "role": role, "cell_key": cell.key}


def equitable_cell(spec: Mapping[str, Any]) -> CellRecord:
    """The Equitable-FL parent run of one (dataset, rate, seed, variant) and one child run per phase."""
    cell = GridCell(**spec["cell"])
    key = cell.key
    cfg = cell_config(spec, cell)
    summary = CellSummary.from_json(io.read_json(spec["summary"]))
    phases = [io.read_json(p["metrics"]) for p in spec["phases"]]
    timings = [TimingRecord.from_json(io.read_json(p["timing"])) for p in spec["phases"]]
    dataset_sha = file_sha256(spec["dataset_file"])
    final, rtt, measured = summary.final, summary.rounds_to_target, summary.measured

    tags = {
        **_base_tags(cell, ROLE_CELL),
        "run_key": key,
        "num_phases": str(len(phases)),
        "config_sha256": config_sha256(cfg),
        "dataset_sha256": dataset_sha,
        "weights_sha256": file_sha256(spec["phases"][-1]["weights"]),
        "mask_sha256": file_sha256(spec["phases"][-1]["mask"]),
        "mlflow.note.content": (
            f"Equitable-FL on {cell.label}: {len(phases)} phases. "
            f"Final accuracy {100 * final.final_accuracy:.2f}% vs vanilla "
            f"{100 * final.vanilla_accuracy:.2f}%, sparsity {100 * final.sparsity:.1f}%. "
            "Masks and weights are in DVC; their sha256 are tags."
        ),
    }
    series = round_series(m["history"] for m in phases)
    parent = RunRecord(
        name=f"{cell.label} {EQUITABLE}",
        params=flatten(cfg),
        tags=tags,
        metrics=_finite(
            {
                "final_accuracy": final.final_accuracy,
                "vanilla_accuracy": final.vanilla_accuracy,
                "accuracy_gap_pp": final.accuracy_gap_pp,
                "best_accuracy": max(m["best_accuracy"] for m in phases),
                "final_loss": phases[-1]["final_loss"],
                "sparsity": final.sparsity,
                "size_reduction_pct": final.size_reduction_pct,
                "params_kept": final.params_kept,
                "encoded_bytes": final.encoded_bytes,
                "dense_bytes": final.dense_bytes,
                "bytes_communicated": final.bytes_communicated,
                "vanilla_bytes_communicated": final.vanilla_bytes_communicated,
                "clients_took_part": len({c for m in phases for r in m["history"] for c in r["clients"]}),
                "eligible_clients": phases[-1]["eligible_clients"],
                "flop_speedup_model": final.flop_speedup_model,
                "flop_speedup_training": final.flop_speedup_training,
                "rounds_speedup": rtt.rounds_speedup,
                **_simulated_metrics(summary.simulated),
                **_coverage_metrics(summary.coverage),
                **_availability_metrics(summary.availability),
                "rounds_to_target": rtt.rounds_to_target,
                "vanilla_rounds_to_target": rtt.vanilla_rounds_to_target,
                "wallclock_speedup": measured.wallclock_speedup,
                "train_seconds": measured.job_train_seconds,
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
            **_base_tags(cell, ROLE_PHASE),
            "run_key": f"{key}/phase{k}",
            "phase": str(k),
            "weights_sha256": file_sha256(p["weights"]),
            "mask_sha256": file_sha256(p["mask"]),
        }
        if p.get("rewind"):
            child_tags["rewind_sha256"] = file_sha256(p["rewind"])
        child_params = {"method": cell.method, **flatten(io.read_json(p["params"]))}
        if p.get("prune_params"):
            child_params.update(flatten({"pruning": io.read_json(p["prune_params"])}))
        child_series = round_series([m["history"]])
        child = RunRecord(
            name=f"phase {k} · {cell.label}",
            params=child_params,
            tags=child_tags,
            metrics=_finite(
                {
                    "final_accuracy": m["final_accuracy"],
                    "best_accuracy": m["best_accuracy"],
                    "final_loss": m["final_loss"],
                    "sparsity": m["sparsity"],
                    "size_reduction_pct": m["size_reduction_pct"],
                    "flop_speedup_model": m["flop_speedup_model"],
                    "encoded_bytes": m["encoded_bytes"],
                    "params_kept": m["params_kept"],
                    "eligible_clients": m["eligible_clients"],
                    "clients_took_part": m["clients_took_part"],
                    "bytes_communicated": m["bytes_communicated"],
                    "seconds_per_sample": t.seconds_per_sample,
                    "train_seconds": t.train_seconds,
                }
            ),
            series=child_series,
            artifacts=[(p["metrics"], ""), (p["participation"], ""), (p["timing"], ""), (p["params"], "")]
            + ([(p["sparsity"], "")] if p.get("sparsity") else []),
        )
        child.metrics_step = _last_step(child_series)
        children.append(child)
    spans = [run_times.step_span(p["metrics"], t) for p, t in zip(spec["phases"], timings, strict=True)]
    for child, (start_ms, end_ms) in zip(children, spans, strict=True):
        child.start_ms, child.end_ms = start_ms, end_ms
    parent.start_ms, parent.end_ms = run_times.enclosing(spans)
    parent.texts[run_card.NAME] = run_card.render(parent.name, cell, parent.metrics)
    return CellRecord(key, EQUITABLE, cell.dataset, cell.seed, cell.rate, parent, children)


def vanilla_cell(spec: Mapping[str, Any]) -> CellRecord:
    """The dense baseline of one (dataset, seed, variant): a parent run with no children and no rate.

    Speed-ups are ratios vanilla / Equitable-FL, so the baseline's own are 1 by definition; they are logged
    as 1 (and its sparsity and size reduction as 0) so that parent runs chart side by side in the UI.
    """
    cell = GridCell(**spec["cell"])
    key = cell.key
    cfg = cell_config(spec, cell)
    m = io.read_json(spec["metrics"])
    t = TimingRecord.from_json(io.read_json(spec["timing"]))
    series = round_series([m["history"]])
    parent = RunRecord(
        name=f"{cell.label} {VANILLA}",
        params=flatten(cfg),
        tags={
            **_base_tags(cell, ROLE_CELL),
            "run_key": key,
            "num_phases": "0",
            "config_sha256": config_sha256(cfg),
            "dataset_sha256": file_sha256(spec["dataset_file"]),
            "weights_sha256": file_sha256(spec["weights"]),
            "mlflow.note.content": (
                f"Vanilla FedAvg (dense) on {cell.label}, {m['rounds']} rounds, participation "
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
                "bytes_communicated": m["bytes_communicated"],
                "flop_speedup_model": 1.0,
                "flop_speedup_training": 1.0,
                "rounds_speedup": 1.0,
                **_vanilla_simulated_metrics(m["history"]),
                "wallclock_speedup": 1.0,
                "eligible_clients": m["eligible_clients"],
                "clients_took_part": m["clients_took_part"],
                "seconds_per_sample": t.seconds_per_sample,
                "train_seconds": t.train_seconds,
            }
        ),
        series=series,
        artifacts=[
            (spec["metrics"], ""),
            (spec["participation"], ""),
            (spec["timing"], ""),
            (spec["params"], ""),
        ],
    )
    parent.metrics_step = _last_step(series)
    parent.start_ms, parent.end_ms = run_times.step_span(spec["metrics"], t)
    parent.texts[run_card.NAME] = run_card.render(parent.name, cell, parent.metrics)
    return CellRecord(key, VANILLA, cell.dataset, cell.seed, None, parent, [])


def build_cells(specs: Sequence[Mapping[str, Any]]) -> list[CellRecord]:
    """Records for every cell spec (Equitable-FL when the cell has a rate); raises on a duplicated cell."""
    records = [equitable_cell(s) if s["cell"].get("rate") is not None else vanilla_cell(s) for s in specs]
    keys = [r.key for r in records]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"cells listed twice for tracking: {dup}")
    return records
