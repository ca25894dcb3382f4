"""The availability section of a cell summary, and the figures drawn from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from equitable_fl import layout
from equitable_fl.dynamics.participation import availability_summary
from equitable_fl.records import RoundRecord
from equitable_fl.report import tables
from equitable_fl.report.figures import availability


class _Run:
    def __init__(self, rounds: list[tuple[list[int], list[int] | None]]) -> None:
        self.history = [
            RoundRecord(i, i, clients, 0, 0.5, 1.0, None, 0, 0, dropouts=dropouts)
            for i, (clients, dropouts) in enumerate(rounds, start=1)
        ]


TIERS = {0: 1, 1: 1, 2: 2, 3: 3}


def test_dropout_rate_and_participation_by_tier() -> None:
    phases = [_Run([([0, 1], [])]), _Run([([0, 2], [1]), ([1, 2, 3], [0])])]
    vanilla = _Run([([0, 1, 2, 3], []), ([0, 1], [2, 3]), ([0, 1, 2, 3], [])])
    s = availability_summary(phases, vanilla, TIERS)
    assert s is not None
    assert (s.dropouts, s.scheduled, s.dropout_rate) == (2, 9, 2 / 9)
    assert (s.vanilla_dropouts, s.vanilla_scheduled, s.vanilla_dropout_rate) == (2, 12, 2 / 12)
    assert s.participation_by_tier == {"1": [2, 1, 1], "2": [0, 1, 1], "3": [0, 0, 1]}
    assert s.vanilla_participation_by_tier["3"] == [1, 0, 1]


def test_a_static_fleet_has_no_section() -> None:
    assert availability_summary([_Run([([0, 1], None)])], _Run([([0], None)]), TIERS) is None


def _summary(variant: str, dropout: float | None, accuracy: float, target: float) -> dict[str, Any]:
    curve = [
        {"global_round": g, "accuracy": a, "num_clients": 3, "elapsed_simulated_seconds": 10.0 * g}
        for g, a in enumerate([0.5, accuracy - 0.05, accuracy], start=1)
    ]
    van_curve = [
        dict(p, accuracy=p["accuracy"] + 0.01, elapsed_simulated_seconds=20.0 * p["global_round"])
        for p in curve
    ]
    s: dict[str, Any] = {
        "dataset": "mnist-sample",
        "variant": variant,
        "seed": 0,
        "pruning_rate": 0.5,
        "phases": [{"rounds": 1}, {"rounds": 2}],
        "curve": curve,
        "vanilla": {"curve": van_curve},
        "final": {"final_accuracy": accuracy, "vanilla_accuracy": accuracy + 0.01},
        "rounds_to_target": {"target_accuracy": target},
    }
    if dropout is not None:
        s["availability"] = {
            "dropout_rate": dropout,
            "vanilla_dropout_rate": dropout / 2,
            "participation_by_tier": {"1": [1, 1, 1], "2": [0, 1, 2]},
            "vanilla_participation_by_tier": {"1": [1, 1, 1], "2": [2, 2, 2]},
        }
    return s


SUMMARIES = [
    _summary("", None, 0.95, 0.93),
    _summary("churn10", 0.1, 0.94, 0.92),
    _summary("churn50", 0.4, 0.90, 0.80),
]


def test_times_are_to_the_static_cells_target() -> None:
    points = {p["variant"]: p for p in availability.dropout_points(SUMMARIES)}
    assert {p["target"] for p in points.values()} == {0.93}
    assert points["base"]["dropout_rate"] == 0.0
    assert points["churn10"]["seconds_to_target"] == 30.0  # 0.94 ≥ 0.93 first at round 3
    assert points["churn50"]["seconds_to_target"] != points["churn50"]["seconds_to_target"]  # never: NaN
    assert points["churn10"]["vanilla_seconds_to_target"] == 60.0  # 0.95 at round 3


def test_figures_are_written_and_named_as_the_workflow_expects(tmp_path: Path) -> None:
    written = availability.write_availability(SUMMARIES, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        f"{n}.{e}" for n in layout.AVAILABILITY_FIGURES for e in layout.FIGURE_FORMATS
    )
    assert all(p.stat().st_size > 1000 for p in written)
    assert tuple(availability.PLOTS) == layout.AVAILABILITY_FIGURES


def test_dropout_rates_reach_tables_under_one_name() -> None:
    row = tables.cell_row(SUMMARIES[1])
    assert row["dropout_rate_pct"] == pytest.approx(10.0) and row[
        "vanilla_dropout_rate_pct"
    ] == pytest.approx(5.0)
    assert tables.cell_row(SUMMARIES[0])["dropout_rate_pct"] is None


def test_the_section_survives_summary_json() -> None:
    section = availability_summary([_Run([([0, 2], [1])])], _Run([([0], [])]), TIERS)
    assert section is not None
    text = json.dumps(dataclasses.asdict(section), sort_keys=True)
    assert type(section)(**json.loads(text)) == section
