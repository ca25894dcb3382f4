"""The config: JSON schema (types, unknown keys, defaults), semantic checks and per-rule slices."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from equitable_fl import config as eqcfg
from equitable_fl.config import ConfigError, Experiment

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
CONFIGS = ["demo.yaml", "config.yaml"]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8"))


def validated(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    validate(cfg, SCHEMA)
    return cfg


@pytest.fixture
def demo() -> dict[str, Any]:
    return validated(load("demo.yaml"))


# --- schema ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_validate_and_check(name: str) -> None:
    cfg = validated(load(name))
    Experiment.load(cfg)
    assert cfg["results_dir"].startswith("results/")


def test_validate_fills_defaults() -> None:
    raw = load("demo.yaml")
    for key in ("pruning", "training", "eligibility", "vanilla", "summary", "compute", "results_dir"):
        raw.pop(key)
    raw["clients"] = {"count": 12}
    cfg = validated(raw)
    assert cfg["pruning"] == {
        "scope": "layerwise",
        "output_rate_factor": 0.5,
        "rewind_round": 0,
        "structure": "unstructured",
        "norm": "l1",
    }
    assert cfg["training"]["lr"] == 0.05
    assert cfg["training"]["batch_size"] == 32
    assert cfg["training"]["local_epochs"] == 2
    assert cfg["eligibility"] == {"check_budget": True}
    assert cfg["vanilla"] == {"participation": "all"}
    assert cfg["summary"] == {"target_tolerance": 0.01}
    expected_compute = {
        "train_threads": 1,
        "device": "auto",
        "engine": "inprocess",
        "precision": "fp32",
        "channels_last": "auto",
        "checkpoint_every": 5,
    }
    assert {k: cfg["compute"][k] for k in expected_compute} == expected_compute
    assert cfg["results_dir"] == "results"
    assert cfg["clients"]["partition"] == {"method": "iid"}
    assert cfg["clients"]["tiers"] == {"count": 3, "method": "quantile"}
    assert cfg["clients"]["resources"]["distribution"] == "uniform"
    Experiment.load(cfg)  # a minimal config with defaults is a valid config


def test_validate_keeps_given_values() -> None:
    raw = load("demo.yaml")
    raw["pruning"] = {"scope": "global"}
    cfg = validated(raw)
    assert cfg["pruning"] == {
        "scope": "global",
        "output_rate_factor": 0.5,
        "rewind_round": 0,
        "structure": "unstructured",
        "norm": "l1",
    }


def _set(cfg: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = cfg
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("bogus", 1, "'bogus' was unexpected"),
        ("training.learning_rate", 0.1, "'learning_rate' was unexpected"),
        ("phases.0.epochs", 3, "'epochs' was unexpected"),
        ("clients.count", "thirty", "is not of type 'integer'"),
        ("phases.0.rounds", 0, "minimum"),
        ("grid.pruning_rates", [0.5, 1.0], "maximum"),
        ("grid.seeds", [0, 0], "non-unique"),
        ("training.lr", "fast", "is not of type 'number'"),
        ("pruning.scope", "per-channel", "is not one of"),
        ("clients.partition.method", "quantity", "is not one of"),
        ("eligibility.check_budget", "yes", "is not of type 'boolean'"),
        ("datasets.mnist-sample.model.arch", "resnet", "is not one of"),
        ("compute.device", "gpu", "does not match"),
    ],
)
def test_schema_rejects_unknown_keys_and_bad_values(path: str, value: Any, match: str) -> None:
    cfg = load("demo.yaml")
    _set(cfg, path, value)
    with pytest.raises(WorkflowError, match=match):
        validate(cfg, SCHEMA)


def test_schema_requires_top_level_sections() -> None:
    cfg = load("demo.yaml")
    del cfg["phases"]
    with pytest.raises(WorkflowError, match="'phases' is a required property"):
        validate(cfg, SCHEMA)


# --- check() -----------------------------------------------------------------------------------


def test_check_lists_every_problem_at_once(demo: dict[str, Any]) -> None:
    cfg = copy.deepcopy(demo)
    cfg["grid"]["datasets"] = ["mnist-sample", "imagenet", "cifar10"]  # unknown; known without settings
    cfg["phases"][2]["tiers"] = [1, 2, 5]
    cfg["pruning"]["rewind_round"] = cfg["phases"][0]["rounds"] + 1
    cfg["pruning"]["output_rate_factor"] = 2.0  # × top rate 0.6 = 1.2
    with pytest.raises(ConfigError) as info:
        Experiment.load(cfg)
    msg = str(info.value)
    problems = [line for line in msg.splitlines() if line.startswith("  - ")]
    assert len(problems) == 5, msg
    assert "unknown dataset 'imagenet'" in msg
    assert "datasets.cifar10" in msg and "missing" in msg
    assert "phases[2].tiers" in msg and "[5]" in msg
    assert "rewind_round 11 is past phase 1's 10 rounds" in msg
    assert "output_rate_factor 2.0" in msg and "0.6" in msg


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c["clients"]["tiers"].update(thresholds=[0.5]), "3 tiers need 2 thresholds, got 1"),
        (lambda c: c["clients"]["resources"].update(low=2.0, high=1.0), r"low: 2.0 must be smaller than"),
        (lambda c: c["clients"].update(count=2), "clients.count: 2 is smaller than the 3 tiers"),
        (lambda c: c["pruning"].update(output_rate_factor=1 / 0.6), "must stay below 1"),
    ],
)
def test_check_single_problems(demo: dict[str, Any], edit, match: str) -> None:
    edit(demo)
    with pytest.raises(ConfigError, match=match):
        Experiment.load(demo)


def test_check_boundaries_that_are_allowed(demo: dict[str, Any]) -> None:
    demo["pruning"]["rewind_round"] = demo["phases"][0]["rounds"]  # the last round of phase 1 is fine
    demo["phases"][1]["tiers"] = [3]
    demo["clients"]["count"] = 3
    demo["clients"]["resources"] = {
        "distribution": "lognormal",
        "low": 2.0,
        "high": 1.0,
    }  # unused by lognormal
    Experiment.load(demo)
    assert issubclass(ConfigError, ValueError)


# --- slices ------------------------------------------------------------------------------------


def test_phase_slice_offsets_tiers_and_rewind(demo: dict[str, Any]) -> None:
    demo["phases"] = [{"rounds": 4}, {"rounds": 6}, {"rounds": 7, "tiers": [3, 1]}]
    s1, s2, s3 = (Experiment.load(demo).phase_slice(k, 5) for k in (1, 2, 3))
    assert [s["global_round_offset"] for s in (s1, s2, s3)] == [0, 4, 10]
    assert [s["rounds"] for s in (s1, s2, s3)] == [4, 6, 7]
    assert [s["phase"] for s in (s1, s2, s3)] == [1, 2, 3]
    assert s1["tiers"] == [1]  # default tiers 1..k
    assert s2["tiers"] == [1, 2]
    assert s3["tiers"] == [1, 3]  # explicit, sorted
    assert all(s["seed"] == 5 for s in (s1, s2, s3))
    assert s1["rewind_round"] == 0
    assert "rewind_round" not in s2 and "rewind_round" not in s3
    assert s1["check_budget"] is True
    assert s1["training"] == demo["training"]


def test_phase_training_override_is_merged_over_training() -> None:
    raw = load("demo.yaml")
    raw["phases"][1]["training"] = {"lr": 0.01}
    raw["training"]["batch_size"] = 64
    cfg = copy.deepcopy(raw)  # unvalidated: the override holds exactly what the user wrote
    t1, t2 = (
        Experiment.load(cfg).phase_slice(1, 0)["training"],
        Experiment.load(cfg).phase_slice(2, 0)["training"],
    )
    assert t1["lr"] == 0.05 and t2["lr"] == 0.01
    assert t2["batch_size"] == 64
    assert {k: v for k, v in t2.items() if k != "lr"} == {k: v for k, v in t1.items() if k != "lr"}
    # the merge does not write back into the config
    assert cfg["training"]["lr"] == 0.05


def test_phase_training_override_after_validation_keeps_user_training() -> None:
    raw = load("demo.yaml")
    raw["phases"][1]["training"] = {"lr": 0.01}
    raw["training"]["batch_size"] = 64
    cfg = validated(raw)
    t2 = Experiment.load(cfg).phase_slice(2, 0)["training"]
    assert t2["lr"] == 0.01
    assert t2["batch_size"] == 64


def test_changing_phase3_rounds_changes_only_phase3_slice(demo: dict[str, Any]) -> None:
    before = {k: Experiment.load(demo).phase_slice(k, 0) for k in (1, 2, 3)}
    edited = copy.deepcopy(demo)
    edited["phases"][2]["rounds"] += 5
    after = {k: Experiment.load(edited).phase_slice(k, 0) for k in (1, 2, 3)}
    assert after[1] == before[1]
    assert after[2] == before[2]
    assert after[3] != before[3]
    assert after[3]["rounds"] == before[3]["rounds"] + 5
    # the vanilla baseline trains for the total, so it does change
    assert (
        Experiment.load(edited).vanilla_slice(0)["rounds"]
        == Experiment.load(demo).vanilla_slice(0)["rounds"] + 5
    )


def test_changing_phase1_rounds_shifts_later_offsets(demo: dict[str, Any]) -> None:
    edited = copy.deepcopy(demo)
    edited["phases"][0]["rounds"] = 3
    assert Experiment.load(edited).phase_slice(2, 0)["global_round_offset"] == 3
    assert Experiment.load(edited).phase_slice(3, 0)["global_round_offset"] == 3 + demo["phases"][1]["rounds"]


def test_pruning_settings_do_not_touch_phase_slices(demo: dict[str, Any]) -> None:
    edited = copy.deepcopy(demo)
    edited["pruning"]["scope"] = "global"
    edited["pruning"]["output_rate_factor"] = 0.25
    for k in (1, 2, 3):
        assert Experiment.load(edited).phase_slice(k, 0) == Experiment.load(demo).phase_slice(k, 0)
    assert Experiment.load(edited).prune_slice(0.5) != Experiment.load(demo).prune_slice(0.5)


def test_vanilla_slice(demo: dict[str, Any]) -> None:
    s = Experiment.load(demo).vanilla_slice(3)
    assert s == {
        "rounds": sum(p["rounds"] for p in demo["phases"]),
        "seed": 3,
        "training": demo["training"],
        "participation": "all",
    }
    assert s["rounds"] == 35


def test_prune_slice(demo: dict[str, Any]) -> None:
    assert Experiment.load(demo).prune_slice(0.5) == {
        "rate": 0.5,
        "scope": "layerwise",
        "output_rate_factor": 0.5,
        "structure": "unstructured",
        "norm": "l1",
    }
    assert isinstance(Experiment.load(demo).prune_slice("0.3")["rate"], float)


def test_clients_slice_is_a_copy(demo: dict[str, Any]) -> None:
    s = Experiment.load(demo).clients_slice()
    assert s == {k: demo["clients"][k] for k in ("count", "resources", "tiers")}
    s["resources"]["low"] = 99
    assert demo["clients"]["resources"]["low"] == 0.25


@pytest.mark.parametrize(
    ("rate", "label"), [(0.5, "0.5"), (0.47, "0.47"), (1e-3, "0.001"), (0.2, "0.2"), ("0.55", "0.55")]
)
def test_rate_label(rate: Any, label: str) -> None:
    assert eqcfg.rate_label(rate) == label


@pytest.mark.parametrize("rate", [0.3, 0.47, 0.55, 1e-3, 0.25, 0.9])
def test_rate_label_round_trips_common_rates(rate: float) -> None:
    assert float(eqcfg.rate_label(rate)) == rate


def test_rate_label_is_exact_for_long_rates() -> None:
    a, b = 0.1234567, 0.1234568
    assert float(eqcfg.rate_label(a)) == a
    assert eqcfg.rate_label(a) != eqcfg.rate_label(b)
