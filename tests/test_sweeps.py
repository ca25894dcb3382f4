"""Sweeps: variants as a grid axis read back as settings, coverage in the summary, the sweep figures,
and the config errors of the shards partition.

Summaries are the recorded fixture re-labelled per variant (as ``test_report`` does), so the figures are
built from files of the shape the summary step writes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from equitable_fl.config import ConfigError, Experiment
from equitable_fl.coverage import Coverage, coverage
from equitable_fl.layout import SWEEP_FIGURES
from equitable_fl.report import figures, tables
from equitable_fl.report.figures import sweeps
from equitable_fl.stages import report as report_stage
from equitable_fl.sweep import ALPHA, THRESHOLDS, SweepPoint, sweep_points, swept_axes

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "summary_mnist-sample_rate0.5_seed0.json").read_text())


def load(name: str) -> Experiment:
    return Experiment.load(yaml.safe_load((ROOT / "config" / name).read_text(encoding="utf-8")))


def summary(variant: str, rate: float, seed: int = 0, **final: float) -> dict[str, Any]:
    """The fixture as the cell (variant, rate, seed), with a coverage section and given final numbers."""
    s = copy.deepcopy(FIXTURE)
    s.update(variant=variant, pruning_rate=rate, seed=seed)
    s["final"].update(final)
    s["final"]["accuracy_gap_pp"] = 100.0 * (s["final"]["final_accuracy"] - s["final"]["vanilla_accuracy"])
    s["coverage"] = {
        "clients": 30,
        "samples": 4000,
        "clients_took_part": 24,
        "client_coverage": 0.8,
        "data_coverage": 0.75 + 0.01 * seed,
        "vanilla_clients_took_part": 30,
        "vanilla_client_coverage": 1.0,
        "vanilla_data_coverage": 1.0,
    }
    return s


# ----------------------------------------------------------------------------------------------------
# the axis: settings read from each variant's config


def test_threshold_sweep_points_resolve_default_thresholds_and_tier_counts() -> None:
    exp = load("beyond/thresholds.yaml")
    points = {p.variant: p for p in sweep_points(exp)}
    assert points[""].thresholds == pytest.approx((1 / 3, 2 / 3))  # no thresholds given: equal splits
    assert points["q20-50"].thresholds == (0.2, 0.5)
    assert points["two-tiers"].tier_count == 2 and points["two-tiers"].thresholds == (0.5,)
    assert {p.partition for p in points.values()} == {"iid"}
    assert swept_axes(list(points.values())) == [THRESHOLDS]
    assert points["q50-80"].thresholds_label() == "0.5 · 0.8"


def test_skew_sweep_points_read_alpha_and_shards_from_the_config() -> None:
    points = {p.variant: p for p in sweep_points(load("beyond/skew.yaml"))}
    assert points[""].partition == "iid" and points[""].alpha is None
    assert points["alpha03"].alpha == 0.3 and points["alpha1"].alpha == 1.0
    assert points["shards2"].shards_per_client == 2 and points["shards2"].alpha is None
    assert points["shards2"].partition_label() == "shards × 2"
    assert swept_axes(list(points.values())) == [ALPHA]


def test_a_config_without_variants_sweeps_nothing() -> None:
    assert swept_axes(sweep_points(load("demo.yaml"))) == []
    # a variant that changes no tier or partition setting sweeps nothing either
    assert swept_axes(sweep_points(load("structured.yaml"))) == []


def test_sweep_point_json_round_trip() -> None:
    point = sweep_points(load("beyond/thresholds.yaml"))[1]
    assert SweepPoint.from_json(json.loads(json.dumps(point.to_json()))) == point


# ----------------------------------------------------------------------------------------------------
# coverage: the summary's share of clients and of data that ever took part


def test_coverage_weighs_clients_by_the_samples_they_hold() -> None:
    samples = [100, 300, 50, 50]  # 500 samples over 4 clients
    cov = coverage([1, 1, 3], [0, 1, 2, 3], samples)
    assert cov.clients_took_part == 2 and cov.client_coverage == 0.5
    assert cov.data_coverage == pytest.approx(350 / 500)
    assert cov.vanilla_client_coverage == 1.0 and cov.vanilla_data_coverage == 1.0
    with pytest.raises(ValueError, match="rerun the partition step"):
        coverage([4], [], samples)


def test_coverage_goes_through_summary_json_and_the_tables() -> None:
    s = summary("", 0.5)
    assert asdict(Coverage(**s["coverage"])) == s["coverage"]  # the section is the record, field for field
    row = tables.cell_table([s]).iloc[0]
    assert row["client_coverage_pct"] == pytest.approx(80.0)
    assert row["data_coverage_pct"] == pytest.approx(75.0)
    assert row["vanilla_data_coverage_pct"] == pytest.approx(100.0)
    assert row["bytes_communicated"] == s["final"]["bytes_communicated"]
    old = copy.deepcopy(s)
    del old["coverage"]  # a summary from before coverage: n/a, not an error
    assert np.isnan(tables.cell_table([old]).iloc[0]["client_coverage_pct"])


def test_by_rate_table_keeps_variants_apart() -> None:
    cells = [
        summary(v, 0.5, seed, final_accuracy=acc)
        for v, acc in (("", 0.9), ("strict", 0.8))
        for seed in (0, 1)
    ]
    by_rate = tables.grouped_table(cells)
    assert list(by_rate["variant"]) == ["", "strict"]
    assert list(by_rate["n_seeds"]) == [2, 2]
    assert list(by_rate["final_accuracy_pct_mean"]) == pytest.approx([90.0, 80.0])


# ----------------------------------------------------------------------------------------------------
# the figures, from summaries


def test_sweep_values_are_the_summaries_numbers_per_setting() -> None:
    cells = sweeps.group_cells(
        [
            summary("", 0.5, final_accuracy=0.9),
            summary("q50-80", 0.5, 0, final_accuracy=0.8),
            summary("q50-80", 0.5, 1, final_accuracy=0.7),
        ]
    )["mnist-sample"]
    values = sweeps.sweep_values(cells, ["", "q50-80", "missing"], sweeps.ACCURACY, [0.5])
    assert values[0.5][0] == pytest.approx((90.0, 0.0))
    assert values[0.5][1] == pytest.approx((75.0, np.std([80.0, 70.0], ddof=1)))
    assert np.isnan(values[0.5][2][0])  # a setting with no summary is a gap, not a zero
    vanilla = 100.0 * FIXTURE["final"]["vanilla_accuracy"]
    assert values[sweeps.VANILLA][0] == pytest.approx((vanilla, 0.0))
    data = sweeps.sweep_values(cells, ["q50-80"], sweeps.DATA_COVERAGE, [0.5])
    assert data[0.5][0][0] == pytest.approx(75.5)  # seeds 0 and 1: 75% and 76%


@pytest.mark.parametrize(
    ("config", "axis"), [("beyond/thresholds.yaml", THRESHOLDS), ("beyond/skew.yaml", ALPHA)]
)
def test_sweep_figures_build_from_summaries(tmp_path: Path, config: str, axis: str) -> None:
    points = sweep_points(load(config))
    paths = []
    for k, p in enumerate(points):
        for rate in (0.3, 0.5):
            s = summary(p.variant, rate, final_accuracy=0.9 - 0.02 * k - 0.05 * rate)
            path = tmp_path / "cells" / f"{p.variant or 'base'}-{rate}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(s))
            paths.append(str(path))
    names = list(SWEEP_FIGURES[axis])
    report_stage.sweep_figures(paths, [p.to_json() for p in points], names, str(tmp_path / "figures"))
    for name in names:
        for ext in ("png", "pdf"):
            data = (tmp_path / "figures" / f"{name}.{ext}").read_bytes()
            assert len(data) > 5_000 and data[:4] in (b"\x89PNG", b"%PDF")
    assert set(SWEEP_FIGURES[axis]) <= set(figures.SWEEP_PLOTS)


def test_gap_against_alpha_needs_an_alpha(tmp_path: Path) -> None:
    points = [p for p in sweep_points(load("beyond/skew.yaml")) if p.alpha is None]
    with pytest.raises(ValueError, match="no Dirichlet partition"):
        sweeps.plot_accuracy_gap_vs_alpha([summary("", 0.5)], points, tmp_path / "gap")
    with pytest.raises(ValueError, match="unknown sweep figures"):
        figures.write_sweeps([summary("", 0.5)], points, ["sweep_nonsense"], tmp_path)


# ----------------------------------------------------------------------------------------------------
# config errors name the key, the value and the fix


def demo(**clients: Any) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    raw["clients"].update(clients)
    return raw


def test_too_many_shards_for_the_data_name_key_value_and_what_fits() -> None:
    # mnist-sample keeps 4,000 training images: 30 clients × 200 shards would need 6,000
    raw = demo(partition={"method": "shards", "shards_per_client": 200})
    with pytest.raises(ConfigError) as err:
        Experiment.load(raw)
    msg = str(err.value)
    assert "clients.partition.shards_per_client: 200" in msg and "6000 shards" in msg
    assert "allowed: 1..133 with 30 clients (or change clients.count)" in msg


def test_an_option_of_another_partition_method_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"clients\.partition\.alpha: 0\.3 is an option of method dirichlet"
    ):
        Experiment.load(demo(partition={"method": "shards", "alpha": 0.3}))
    with pytest.raises(
        ConfigError, match=r"remove shards_per_client, or set clients\.partition\.method to shards"
    ):
        Experiment.load(demo(partition={"method": "iid", "shards_per_client": 2}))


def test_a_shards_variant_of_a_dirichlet_base_drops_alpha() -> None:
    raw = demo(partition={"method": "dirichlet", "alpha": 0.5})
    raw["grid"]["variants"] = {
        "patho": {"clients": {"partition": {"method": "shards", "shards_per_client": 2}}}
    }
    exp = Experiment.load(raw)
    assert exp.for_variant("patho").cfg["clients"]["partition"] == {
        "method": "shards",
        "shards_per_client": 2,
    }
    # a variant that only changes α keeps the base's method
    raw["grid"]["variants"] = {"skewed": {"clients": {"partition": {"alpha": 0.1}}}}
    part = Experiment.load(raw).for_variant("skewed").cfg["clients"]["partition"]
    assert part == {"method": "dirichlet", "alpha": 0.1}


def test_a_tier_count_variant_whose_phases_admit_a_missing_tier_is_refused() -> None:
    raw = demo()
    raw["grid"]["variants"] = {"two": {"clients": {"tiers": {"count": 2, "thresholds": [0.5]}}}}
    # demo.yaml's phase 3 admits tiers [1, 2, 3]: the variant must say which phases admit its 2 tiers
    with pytest.raises(
        ConfigError, match=r"grid\.variants\.two: phases\[2\]\.tiers: \[1, 2, 3\]: tier\(s\) \[3\]"
    ):
        Experiment.load(raw)
