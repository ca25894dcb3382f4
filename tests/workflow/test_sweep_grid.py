"""Sweeps planned by Snakemake: each setting keyed apart, what they share planned once (dry runs)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from equitable_fl.layout import SWEEP_FIGURES

from .snakemake_runner import Job, jobs_run, run, tiny_config, write_config

pytestmark = pytest.mark.workflow

PER_SETTING = ("clients", "phase1")


def _plan(tmp_path: Path, variants: dict) -> tuple[list[Job], Counter[str]]:
    cfg = tiny_config()
    cfg["grid"]["variants"] = variants
    write_config(tmp_path, cfg)
    jobs = jobs_run(run(tmp_path, "-n"))
    keys = [(j.rule, tuple(sorted(j.wildcards.items()))) for j in jobs]
    assert len(keys) == len(set(keys)), f"a job is planned twice: {[k for k in keys if keys.count(k) > 1]}"
    return jobs, Counter(j.rule for j in jobs)


def test_two_threshold_variants_share_data_partition_and_theta0(tmp_path: Path) -> None:
    jobs, per_rule = _plan(
        tmp_path,
        {
            "loose": {"clients": {"tiers": {"thresholds": [0.2, 0.5]}}},
            "two-tiers": {
                "clients": {"tiers": {"count": 2, "thresholds": [0.5]}},
                "phases": [
                    {"rounds": 2, "tiers": [1]},
                    {"rounds": 2, "tiers": [1, 2]},
                    {"rounds": 2, "tiers": [1, 2]},
                ],
            },
        },
    )
    # shared by the three settings (base + 2 variants): planned once
    assert per_rule["prepare"] == 1 and per_rule["partition"] == 1 and per_rule["init_model"] == 1
    # keyed by the setting: the clients and everything downstream of them
    for rule in PER_SETTING:
        assert per_rule[rule] == 3, rule
    assert {j.wildcards.get("vdir", "") for j in jobs if j.rule == "phase1"} == {"", "loose/", "two-tiers/"}
    # vanilla FL never reads the tiers and all three train 6 rounds: one baseline for the three settings
    assert per_rule["vanilla"] == 1
    assert per_rule["summarise_cell"] == 3 * 2 and per_rule["phase"] == 3 * 2 * 2  # × 2 rates (× phases 2, 3)
    # the figures against the thresholds are drawn once, over every setting
    assert per_rule["sweep_figures"] == 1 and per_rule["tables_and_figures"] == 1


def test_alpha_variants_key_the_partition_and_share_the_clients(tmp_path: Path) -> None:
    jobs, per_rule = _plan(
        tmp_path,
        {
            "alpha01": {"clients": {"partition": {"method": "dirichlet", "alpha": 0.1, "min_samples": 5}}},
            "shards2": {"clients": {"partition": {"method": "shards", "shards_per_client": 2}}},
        },
    )
    assert per_rule["prepare"] == 1 and per_rule["init_model"] == 1
    # resources and tiers do not depend on the partition: one clients step for all three settings
    assert per_rule["clients"] == 1
    assert per_rule["partition"] == 3 and per_rule["phase1"] == 3 and per_rule["vanilla"] == 3
    assert {j.wildcards.get("vdir", "") for j in jobs if j.rule == "partition"} == {
        "",
        "alpha01/",
        "shards2/",
    }
    assert per_rule["sweep_figures"] == 1
    assert SWEEP_FIGURES["alpha"] == ("sweep_accuracy_gap_vs_alpha",)


def test_no_sweep_no_sweep_figures(tmp_path: Path) -> None:
    _, per_rule = _plan(tmp_path, {"slower": {"training": {"lr": 0.01}}})
    assert per_rule["sweep_figures"] == 0
    assert per_rule["clients"] == 1 and per_rule["partition"] == 1  # training settings change neither
