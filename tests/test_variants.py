"""Typed config read once, grid cells, the layout, and the variant axis (which outputs a variant shares)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from equitable_fl.config import ConfigError, Experiment, TrainSettings, section_defaults
from equitable_fl.grid import GridCell
from equitable_fl.layout import PATTERN, Layout

ROOT = Path(__file__).resolve().parent.parent
STRICT = {"clients": {"tiers": {"thresholds": [0.5, 0.8]}}}
LONGER3 = {"phases": [{"rounds": 10, "tiers": [1]}, {"rounds": 10, "tiers": [1, 2]}, {"rounds": 20}]}


def demo(**variants: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    raw["grid"]["variants"] = copy.deepcopy(variants)
    return raw


def test_train_settings_take_every_default_from_the_schema() -> None:
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(TrainSettings))
    defaults = section_defaults("training")
    assert set(defaults) == {f.name for f in dataclasses.fields(TrainSettings)}
    assert TrainSettings.from_config({}).as_dict() == defaults
    assert TrainSettings.from_config({"lr": 0.2}).lr == 0.2


def test_unknown_training_key_names_key() -> None:
    with pytest.raises(ValueError, match="lrate"):
        TrainSettings.from_config({"lrate": 0.1})


def test_base_paths_are_the_documented_ones() -> None:
    exp = Experiment.load(demo())
    lay = Layout(exp.results_dir, exp)
    cell = GridCell("mnist-sample", 0, "0.5")
    assert lay.phase_dir(cell, 1) == "results/demo/mnist-sample/seed0/phase1"
    assert lay.phase_dir(cell, 3) == "results/demo/mnist-sample/seed0/rate0.5/phase3"
    assert lay.prune_dir(cell, 2) == "results/demo/mnist-sample/seed0/rate0.5/prune2"
    assert lay.clients(cell) == "results/demo/clients/seed0/clients.json"
    assert lay.summary(cell) == "results/demo/mnist-sample/seed0/rate0.5/summary.json"
    assert lay.vanilla_dir(cell) == "results/demo/mnist-sample/seed0/vanilla"
    assert lay.ticket_start(cell, 2)["card"] == "results/demo/mnist-sample/seed0/rate0.5/prune1/model.json"
    assert lay.ticket_start(cell, 1)["card"] == "results/demo/mnist-sample/seed0/init/model.json"


def test_pattern_paths_carry_wildcards() -> None:
    lay = Layout("r")
    assert lay.phase_dir(PATTERN, "{k}") == "r/{dataset}/{vdir}seed{seed}/rate{rate}/phase{k}"
    assert lay.phase_dir(PATTERN, 1) == "r/{dataset}/{vdir}seed{seed}/phase1"
    assert lay.clients(PATTERN) == "r/clients/{vdir}seed{seed}/clients.json"


def test_threshold_variant_shares_data_partition_and_theta0() -> None:
    exp = Experiment.load(demo(strict=STRICT))
    lay = Layout(exp.results_dir, exp)
    base, strict = GridCell("mnist-sample", 0, "0.5"), GridCell("mnist-sample", 0, "0.5", "strict")
    assert lay.partition(strict) == lay.partition(base)
    assert lay.init_dir(strict) == lay.init_dir(base)
    assert lay.clients(strict) == "results/demo/clients/strict/seed0/clients.json"
    assert lay.phase_dir(strict, 1) == "results/demo/mnist-sample/strict/seed0/phase1"
    assert lay.summary(strict) == "results/demo/mnist-sample/strict/seed0/rate0.5/summary.json"
    # vanilla FL admits every tier: moving the thresholds does not train the same baseline twice
    assert lay.vanilla_dir(strict) == lay.vanilla_dir(base) == "results/demo/mnist-sample/seed0/vanilla"


def test_thresholds_key_vanilla_when_the_tiers_change_who_is_online() -> None:
    """With a Markov fleet whose weaker tiers drop more (tier_factor ≠ 1), the tiers decide who is online
    in vanilla FL too, so a threshold variant of that fleet trains its own vanilla run."""
    churn = {"process": "markov", "markov": {"tier_factor": 2.0}}
    raw = demo(strict=STRICT)
    raw["clients"]["availability"] = churn
    exp = Experiment.load(raw)
    lay = Layout(exp.results_dir, exp)
    base, strict = GridCell("mnist-sample", 0, "0.5"), GridCell("mnist-sample", 0, "0.5", "strict")
    assert lay.vanilla_dir(strict) == "results/demo/mnist-sample/strict/seed0/vanilla"
    assert lay.vanilla_dir(base) == "results/demo/mnist-sample/seed0/vanilla"
    raw["clients"]["availability"] = {**churn, "markov": {"tier_factor": 1.0}}
    exp = Experiment.load(raw)
    assert Layout(exp.results_dir, exp).vanilla_dir(strict) == lay.vanilla_dir(base)


def test_variant_of_phase3_rounds_shares_everything_before_phase3() -> None:
    exp = Experiment.load(demo(longer=LONGER3))
    lay = Layout(exp.results_dir, exp)
    base, longer = GridCell("mnist-sample", 0, "0.5"), GridCell("mnist-sample", 0, "0.5", "longer")
    for k in (1, 2):
        assert lay.phase_dir(longer, k) == lay.phase_dir(base, k)
        assert lay.prune_dir(longer, k) == lay.prune_dir(base, k)
    assert lay.phase_dir(longer, 3) != lay.phase_dir(base, 3)
    assert lay.clients(longer) == lay.clients(base)
    # vanilla FL trains for the total number of rounds: it depends on phase 3's rounds too
    assert lay.vanilla_dir(longer) != lay.vanilla_dir(base)


def test_bad_variant_is_rejected_with_its_name() -> None:
    raw = demo(bad={"clients": {"tiers": {"thresholds": [0.5]}}})
    with pytest.raises(ConfigError, match=r"grid.variants.bad: clients.tiers: 3 tiers need 2 thresholds"):
        Experiment.load(raw)
    with pytest.raises(ConfigError, match=r"grid\.variants\.typo"):
        Experiment.load(demo(typo={"training": {"lrate": 0.1}}))
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        Experiment.load(demo()).for_variant("nope")


def test_grid_cell_keys_tags_and_labels() -> None:
    cell = GridCell("mnist", 0, "0.5")
    assert cell.key == "mnist/seed0/rate0.5/equitable-fl"
    assert cell.shared().key == "mnist/seed0/vanilla"
    assert cell.tags() == {"method": "equitable-fl", "dataset": "mnist", "seed": "0", "pruning_rate": "0.5"}
    assert "pruning_rate" not in cell.shared().tags()
    v = GridCell("mnist", 1, None, "strict")
    assert v.key == "mnist/strict/seed1/vanilla" and v.tags()["variant"] == "strict"
    assert v.label == "mnist seed1 strict"
    wc = {"dataset": "mnist", "seed": "3", "rate": "0.6", "vdir": "strict/"}
    assert GridCell.from_wildcards(wc) == GridCell("mnist", 3, "0.6", "strict")
