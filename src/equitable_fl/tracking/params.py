"""MLflow params of a cell: the settings its steps ran with (their ``params.json``), flattened.

Params are read from the files the training and prune steps wrote beside their outputs, not re-derived
from the whole config, so what MLflow shows is what ran. ``config_sha256`` of the nested form is a tag
that tells two cells' settings apart at a glance.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from equitable_fl import io
from equitable_fl.grid import GridCell


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


def cell_config(spec: Mapping[str, Any], cell: GridCell) -> dict[str, Any]:
    """Every setting the cell's results depend on, as the steps ran with them (their ``params.json``).

    For Equitable-FL: the dataset and model, the clients, each phase's slice (rounds, tiers, resolved
    training settings, budget check), the pruning slice with the rewind round, the summary tolerance and
    the vanilla baseline's slice; for vanilla FL: dataset, model, clients and its own slice.
    """
    out: dict[str, Any] = {"method": cell.method, "dataset": cell.dataset, "seed": cell.seed}
    if cell.variant:
        out["variant"] = cell.variant
    out.update(copy.deepcopy(dict(spec["context"])))
    if cell.rate is None:
        out["vanilla"] = io.read_json(spec["params"])
        return out
    phases = {str(p["phase"]): io.read_json(p["params"]) for p in spec["phases"]}
    out["pruning_rate"] = float(cell.rate)
    out["phases"] = phases
    later = [p for p in spec["phases"] if p.get("prune_params")]
    if later:
        out["pruning"] = {
            **io.read_json(later[0]["prune_params"]),
            "rewind_round": phases["1"]["rewind_round"],
        }
    summary = io.read_json(spec["summary"])
    out["summary"] = {"target_tolerance": summary["rounds_to_target"]["target_tolerance"]}
    return out


def config_sha256(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
