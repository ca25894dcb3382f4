"""Two tier-threshold settings side by side: a dry run plans each shared step once, vanilla FL included."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .snakemake_runner import jobs_run, run, tiny_config, write_config

pytestmark = pytest.mark.workflow


def test_variant_dry_run_shares_what_it_does_not_change(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["grid"]["variants"] = {"strict": {"clients": {"tiers": {"thresholds": [0.5, 0.8]}}}}
    write_config(tmp_path, cfg)
    jobs = jobs_run(run(tmp_path, "-n"))
    per_rule = Counter(j.rule for j in jobs)
    keys = [(j.rule, tuple(sorted(j.wildcards.items()))) for j in jobs]
    assert len(keys) == len(set(keys)), "a job is planned twice"
    # shared by both settings: the data, the partition and θ0
    assert per_rule["prepare"] == 1 and per_rule["partition"] == 1 and per_rule["init_model"] == 1
    # keyed by the setting: the clients and the phases, which admit clients by tier
    assert per_rule["clients"] == 2 and per_rule["phase1"] == 2
    # vanilla FL admits every tier: one baseline serves both settings
    assert per_rule["vanilla"] == 1
    assert [j.wildcards.get("vdir", "") for j in jobs if j.rule == "vanilla"] == [""]
    assert per_rule["summarise_cell"] == 2 * 2  # 2 settings × 2 pruning rates
    assert {j.wildcards.get("vdir", "") for j in jobs if j.rule == "clients"} == {"", "strict/"}
