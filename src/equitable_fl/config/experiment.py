"""The experiment config read once: validated, defaults filled, checked, and cut into per-step slices.

``Experiment.load(raw)`` is called once per workflow (``rules/common.smk``) and by tests. It validates the
config against the schema (filling every default there, the only place defaults are written), runs the
semantic checks on the base config and on every variant, and reports all problems in one
:class:`ConfigError` before any job is scheduled.

Slices: each step gets exactly the settings it depends on (``phase_slice``, ``prune_slice`` …), which is
what Snakemake's params trigger compares and what each step writes beside its outputs (``params.json``).

Variants (``grid.variants``): named overrides of the experiment sections, run side by side. A step's
outputs are keyed by a variant only where the variant changes something the step depends on
(:meth:`Experiment.step_variant`), so two tier-threshold settings share the data, partition and θ0.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from equitable_fl.config.checks import problems
from equitable_fl.config.settings import ComputeSettings, TrainSettings
from equitable_fl.config.validate import SchemaError, validated
from equitable_fl.data import registry
from equitable_fl.dynamics.settings import AvailabilitySettings

BASE_VARIANT = ""  # the config as written; its outputs carry no variant key in their paths
VARIANT_SECTIONS = ("clients", "training", "phases", "pruning", "eligibility", "vanilla", "summary")
STEPS = ("partition", "clients", "phase", "prune", "vanilla", "summary")


class ConfigError(ValueError):
    """The workflow config is invalid; the message lists every problem and how to fix it."""


def rate_label(rate: float | str) -> str:
    """How a pruning rate appears in paths (``rate0.5``): the shortest string that reads back exactly."""
    return repr(float(rate))


def _merged(base: Any, override: Any) -> Any:
    """``override`` laid over ``base``: mappings merge key by key, anything else (lists too) replaces."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merged(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def _overlaid(base: Mapping[str, Any], override: Mapping[str, Any]) -> Any:
    """A variant's config: ``override`` merged over ``base``, except that a ``clients.partition`` naming its
    ``method`` replaces the base's whole (a shards variant of a Dirichlet base keeps no ``alpha``)."""
    out = _merged(base, override)
    partition = (override.get("clients") or {}).get("partition")
    if isinstance(partition, Mapping) and "method" in partition:
        out["clients"]["partition"] = copy.deepcopy(dict(partition))
    return out


@dataclass(frozen=True)
class Experiment:
    """One validated config (the base or one variant of it) and the slices its steps receive."""

    cfg: dict[str, Any]
    variant: str = BASE_VARIANT
    base: Experiment | None = field(default=None, compare=False, repr=False)

    # ---------------------------------------------------------------------------------------------
    # building

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> Experiment:
        try:
            cfg = validated(raw)
        except SchemaError as exc:
            raise ConfigError(str(exc)) from None
        found = problems(cfg)
        for name, override in cfg["grid"]["variants"].items():
            try:
                variant_cfg = validated(_overlaid(raw, override))
            except SchemaError as exc:
                found += [f"grid.variants.{name}: {p}" for p in exc.problems]
                continue
            prefix = f"grid.variants.{name}: "
            found += [p for p in problems(variant_cfg, where=prefix) if p not in found]
        if found:
            raise ConfigError("invalid config:\n  - " + "\n  - ".join(found))
        return cls(cfg)

    def for_variant(self, name: str) -> Experiment:
        """The experiment as variant ``name`` runs it (the base itself for ``""``)."""
        base = self.base or self
        if name == BASE_VARIANT:
            return base
        variants = base.cfg["grid"]["variants"]
        if name not in variants:
            raise ConfigError(f"unknown variant {name!r}; grid.variants has {sorted(variants)}")
        return Experiment(validated(_overlaid(base.cfg, variants[name])), name, base)

    # ---------------------------------------------------------------------------------------------
    # the grid

    @property
    def results_dir(self) -> str:
        return self.cfg["results_dir"]

    @property
    def data_dir(self) -> str:
        return self.cfg["data_dir"]

    @property
    def datasets(self) -> list[str]:
        return list(self.cfg["grid"]["datasets"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.cfg["grid"]["seeds"]]

    @property
    def rates(self) -> list[str]:
        """Pruning rates as path labels (``"0.5"``)."""
        return [rate_label(r) for r in self.cfg["grid"]["pruning_rates"]]

    @property
    def variants(self) -> list[str]:
        """Variant names, the base (``""``) first."""
        return [BASE_VARIANT, *self.cfg["grid"]["variants"]]

    @property
    def num_phases(self) -> int:
        return len(self.cfg["phases"])

    @property
    def compute(self) -> ComputeSettings:
        return ComputeSettings.from_config(self.cfg["compute"])

    @property
    def fetch_retries(self) -> int:
        return int(self.cfg["fetch"]["retries"])

    def dataset_options(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.cfg["datasets"][name].get("options") or {})

    def dataset_kind(self, name: str) -> str:
        """``datasets.<name>.kind``, or the registered dataset's own kind when the config omits it."""
        return self.cfg["datasets"][name].get("kind") or registry.get(name).kind

    def dataset_spec(self, name: str) -> registry.DatasetSpec:
        """How dataset ``name`` is fetched and prepared (any name of kind ``image_folder`` resolves)."""
        return registry.get(name, self.dataset_kind(name))

    def model_config(self, name: str) -> dict[str, Any]:
        """``datasets.<name>.model``; without one, the default architecture of the dataset's kind."""
        model = self.cfg["datasets"][name].get("model") or {"arch": self.dataset_spec(name).model}
        return copy.deepcopy(model)

    # ---------------------------------------------------------------------------------------------
    # per-step slices (plain JSON-able dicts: Snakemake compares them, steps write them to params.json)

    def admitted_tiers(self, k: int) -> list[int]:
        ph = self.cfg["phases"][k - 1]
        return sorted(ph["tiers"]) if "tiers" in ph else list(range(1, k + 1))

    def training_slice(self, k: int | None = None) -> dict[str, Any]:
        training = copy.deepcopy(self.cfg["training"])
        if k is not None:
            training.update(self.cfg["phases"][k - 1].get("training", {}))
        return TrainSettings.from_config(training).as_dict()

    def phase_slice(self, k: int, seed: int) -> dict[str, Any]:
        rounds = [int(p["rounds"]) for p in self.cfg["phases"]]
        params: dict[str, Any] = {
            "phase": k,
            "rounds": rounds[k - 1],
            "tiers": self.admitted_tiers(k),
            "global_round_offset": sum(rounds[: k - 1]),
            "seed": int(seed),
            "training": self.training_slice(k),
            "check_budget": bool(self.cfg["eligibility"]["check_budget"]),
        }
        if k == 1:
            params["rewind_round"] = int(self.cfg["pruning"]["rewind_round"])
        return self._with_availability(params)

    def availability_slice(self) -> dict[str, Any] | None:
        """What the training steps read of ``clients.availability``; None for a static fleet (the default).

        Left out of the slices when None, so a config without availability keeps its params and outputs.
        """
        return AvailabilitySettings.from_config(self.cfg["clients"]["availability"]).slice()

    def _with_availability(self, params: dict[str, Any]) -> dict[str, Any]:
        availability = self.availability_slice()
        return params if availability is None else {**params, "availability": availability}

    def prune_slice(self, rate: float | str) -> dict[str, Any]:
        p = self.cfg["pruning"]
        return {
            "rate": float(rate),
            "scope": p["scope"],
            "output_rate_factor": float(p["output_rate_factor"]),
            "structure": p["structure"],
            "norm": p["norm"],
        }

    def vanilla_slice(self, seed: int) -> dict[str, Any]:
        params = {
            "rounds": sum(int(p["rounds"]) for p in self.cfg["phases"]),
            "seed": int(seed),
            "training": self.training_slice(),
            "participation": self.cfg["vanilla"]["participation"],
        }
        return self._with_availability(params)

    def clients_slice(self) -> dict[str, Any]:
        """What the clients step (resources, scores, tiers) depends on."""
        return {k: copy.deepcopy(self.cfg["clients"][k]) for k in ("count", "resources", "tiers")}

    def _vanilla_clients_slice(self) -> dict[str, Any]:
        """What vanilla FL reads of the clients: it admits every tier, so the tier thresholds matter only
        when they change who is online (availability with ``tier_factor`` ≠ 1). Without that, variants
        that move only the thresholds share one vanilla run instead of training the same baseline again."""
        clients = self.clients_slice()
        if not AvailabilitySettings.from_config(self.cfg["clients"]["availability"]).reads_tiers:
            del clients["tiers"]
        return clients

    def partition_slice(self) -> dict[str, Any]:
        return {k: copy.deepcopy(self.cfg["clients"][k]) for k in ("count", "partition")}

    def summary_slice(self) -> dict[str, Any]:
        return copy.deepcopy(self.cfg["summary"])

    # ---------------------------------------------------------------------------------------------
    # variants: which outputs a variant shares with the base

    def lineage(self, step: str, k: int | None = None) -> dict[str, Any]:
        """Every setting the outputs of ``step`` (phase/prune ``k``) depend on, seed and rate aside."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; steps are {STEPS}")
        if step == "partition":
            return {"partition": self.partition_slice()}
        out = {"partition": self.partition_slice(), "clients": self.clients_slice()}
        if step == "clients":
            return {"clients": out["clients"]}
        if step == "vanilla":
            return {**out, "clients": self._vanilla_clients_slice(), "vanilla": self.vanilla_slice(0)}
        last = self.num_phases if step == "summary" else int(k or 1)
        out["phases"] = [self.phase_slice(j, 0) for j in range(1, last + 1)]
        if step in ("prune", "summary") or last > 1:
            out["pruning"] = {key: v for key, v in self.prune_slice(0.5).items() if key != "rate"}
        if step == "summary":
            out["vanilla"] = self.vanilla_slice(0)
            out["summary"] = self.summary_slice()
        return out

    def step_variant(self, step: str, k: int | None = None) -> str:
        """The variant key this experiment's ``step`` outputs carry: ``""`` where the base's are the same."""
        if self.base is None:
            return BASE_VARIANT
        return self.variant if self.lineage(step, k) != self.base.lineage(step, k) else BASE_VARIANT


def slice_json(params: Mapping[str, Any]) -> str:
    """The canonical text of a slice (sorted keys): what ``params.json`` holds and tracking reads."""
    return json.dumps(params, sort_keys=True, indent=1) + "\n"
