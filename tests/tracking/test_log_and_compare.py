"""Idempotent logging and the comparison table, against a real SQLite MLflow store in a temporary folder.

Cells here are built directly as records (no training), so every number is known and the tests are fast;
the workflow tests in ``test_tracking_workflow.py`` cover records built from real result files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from equitable_fl.grid import GridCell
from equitable_fl.report import figures
from equitable_fl.stages import report as report_stage
from equitable_fl.tracking import compare, store
from equitable_fl.tracking.cells import (
    EQUITABLE,
    ROLE_CELL,
    ROLE_PHASE,
    VANILLA,
    CellRecord,
    RunRecord,
)
from equitable_fl.tracking.log_cells import sync_cells

FIXTURE = Path(__file__).parents[1] / "fixtures" / "summary_mnist-sample_rate0.5_seed0.json"
CONTEXT = {"git_commit": "test"}


def _series(first: int, rounds: int, acc: float) -> dict[str, list[tuple[int, float]]]:
    steps = range(first, first + rounds)
    return {
        "accuracy": [(s, acc * s / (first + rounds - 1)) for s in steps],
        "loss": [(s, 1.0 / s) for s in steps],
        "clients": [(s, 4.0) for s in steps],
        "round_bytes_communicated": [(s, 1000.0) for s in steps],
    }


def eq_cell(dataset: str, seed: int, rate: str, acc: float, **metrics: float) -> CellRecord:
    """An Equitable-FL cell with two phases of two rounds and the given final metrics."""
    key = GridCell(dataset, seed, rate).key
    base = {"method": EQUITABLE, "dataset": dataset, "seed": str(seed), "pruning_rate": rate, "cell_key": key}
    parent = RunRecord(
        name=f"{dataset} rate{rate} seed{seed}",
        params={"dataset": dataset, "seed": str(seed), "pruning_rate": rate},
        tags={**base, "role": ROLE_CELL, "run_key": key},
        metrics={"final_accuracy": acc, "sparsity": 0.5, **metrics},
        metrics_step=4,
        series=_series(1, 4, acc),
    )
    children = [
        RunRecord(
            name=f"phase {k}",
            params={"phase": str(k)},
            tags={**base, "role": ROLE_PHASE, "run_key": f"{key}/phase{k}", "phase": str(k)},
            metrics={"final_accuracy": acc},
            metrics_step=2 * k,
            series=_series(2 * k - 1, 2, acc),
        )
        for k in (1, 2)
    ]
    return CellRecord(key, EQUITABLE, dataset, seed, rate, parent, children)


def van_cell(dataset: str, seed: int, acc: float) -> CellRecord:
    key = GridCell(dataset, seed).key
    parent = RunRecord(
        name=f"{dataset} seed{seed} vanilla",
        params={"dataset": dataset, "seed": str(seed)},
        tags={
            "method": VANILLA,
            "dataset": dataset,
            "seed": str(seed),
            "cell_key": key,
            "role": ROLE_CELL,
            "run_key": key,
        },
        metrics={"final_accuracy": acc, "sparsity": 0.0},
        metrics_step=4,
        series=_series(1, 4, acc),
    )
    return CellRecord(key, VANILLA, dataset, seed, None, parent, [])


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[store.Target, MlflowClient, str, str]:
    results = str(tmp_path / "results")
    target = store.resolve(results, environ={})
    client = store.open_client(target, results)
    return target, client, store.ensure_experiment(client, target), results


def _active(client: MlflowClient, experiment_id: str) -> list[Any]:
    return list(client.search_runs([experiment_id], max_results=1000))


def test_second_sync_keeps_every_run(tracked: tuple[store.Target, MlflowClient, str, str]) -> None:
    _, client, exp, _ = tracked
    cells = [eq_cell("ds", 0, "0.5", 0.9), eq_cell("ds", 0, "0.7", 0.8), van_cell("ds", 0, 0.95)]
    first = sync_cells(client, exp, cells, CONTEXT)
    assert [r.action for r in first] == ["logged"] * 3
    runs = _active(client, exp)
    assert len(runs) == 3 + 2 * 2
    second = sync_cells(client, exp, cells, CONTEXT)
    assert [r.action for r in second] == ["kept"] * 3
    assert {r.info.run_id for r in _active(client, exp)} == {r.info.run_id for r in runs}
    assert [r.parent_run_id for r in second] == [r.parent_run_id for r in first]
    assert second[0].child_run_ids == first[0].child_run_ids

    parent = client.get_run(first[0].parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["git_commit"] == "test"
    assert parent.data.params["pruning_rate"] == "0.5"
    history = client.get_metric_history(first[0].parent_run_id, "accuracy")
    assert [m.step for m in history] == [1, 2, 3, 4]
    child = client.get_run(first[0].child_run_ids["2"])
    assert child.data.tags["mlflow.parentRunId"] == first[0].parent_run_id
    assert [m.step for m in client.get_metric_history(child.info.run_id, "clients")] == [3, 4]


def test_changed_cell_replaces_parent_and_children(
    tracked: tuple[store.Target, MlflowClient, str, str],
) -> None:
    _, client, exp, _ = tracked
    cells = [eq_cell("ds", 0, "0.5", 0.9), van_cell("ds", 0, 0.95)]
    first = sync_cells(client, exp, cells, CONTEXT)
    changed = [eq_cell("ds", 0, "0.5", 0.91), van_cell("ds", 0, 0.95)]
    second = sync_cells(client, exp, changed, CONTEXT)
    assert [r.action for r in second] == ["replaced", "kept"]
    assert second[0].parent_run_id != first[0].parent_run_id
    for old in [first[0].parent_run_id, *first[0].child_run_ids.values()]:
        assert client.get_run(old).info.lifecycle_stage == "deleted"
    assert len(_active(client, exp)) == 2 + 2
    assert client.get_run(second[0].parent_run_id).data.metrics["final_accuracy"] == pytest.approx(0.91)


def test_half_written_or_duplicated_cells_are_rewritten(
    tracked: tuple[store.Target, MlflowClient, str, str],
) -> None:
    """A run left RUNNING (the store went away mid-cell) or a second parent never survives a sync."""
    _, client, exp, _ = tracked
    a, b = eq_cell("ds", 0, "0.5", 0.9), eq_cell("ds", 1, "0.5", 0.9)
    partial = client.create_run(exp, tags={"cell_key": a.key})  # crashed before its tags and hash
    sync_cells(client, exp, [b], CONTEXT)
    extra = client.create_run(exp, tags={"cell_key": b.key, "role": ROLE_CELL})  # a duplicate parent
    client.set_terminated(extra.info.run_id)
    result = sync_cells(client, exp, [a, b], CONTEXT)
    assert [r.action for r in result] == ["replaced", "replaced"]
    assert client.get_run(partial.info.run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(extra.info.run_id).info.lifecycle_stage == "deleted"
    parents = [r for r in _active(client, exp) if r.data.tags.get("role") == ROLE_CELL]
    assert sorted(r.data.tags["cell_key"] for r in parents) == sorted([a.key, b.key])


def test_comparison_pairs_vanilla_by_seed_and_averages_over_seeds(
    tracked: tuple[store.Target, MlflowClient, str, str], tmp_path: Path
) -> None:
    target, client, exp, results = tracked
    eq_acc = {("0.5", 0): 0.90, ("0.5", 1): 0.92, ("0.5", 2): 0.97, ("0.7", 0): 0.80, ("0.7", 1): 0.84}
    van_acc = {0: 0.95, 1: 0.96, 2: 0.99}
    cells = [
        eq_cell("ds", seed, rate, acc, flop_speedup_model=2.0 + seed, wallclock_speedup=1.0)
        for (rate, seed), acc in eq_acc.items()
    ]
    cells += [van_cell("ds", seed, acc) for seed, acc in van_acc.items()]
    cells.append(eq_cell("ds", 0, "0.9", 0.1))  # an older config's rate: in the store, not in the grid
    sync_cells(client, exp, cells, CONTEXT)

    grid = {"datasets": ["ds"], "pruning_rates": ["0.5", "0.7"], "seeds": [0, 1, 2]}
    with pytest.raises(ValueError, match=r"no run for \['ds/seed2/rate0.7/equitable-fl'\]"):
        compare.build(
            results_dir=results, grid=grid, out_csv=str(tmp_path / "c.csv"), out_md=str(tmp_path / "c.md")
        )

    grid["seeds"] = [0, 1]
    table = compare.build(
        results_dir=results, grid=grid, out_csv=str(tmp_path / "c.csv"), out_md=str(tmp_path / "c.md")
    )
    assert list(table.columns) == list(compare.COLUMNS)
    assert list(table["pruning_rate"]) == [0.5, 0.7]
    assert list(table["n_seeds"]) == [2, 2]
    row = table.iloc[0]
    eq = np.array([90.0, 92.0])
    van = np.array([95.0, 96.0])
    assert row["final_accuracy_pct_mean"] == pytest.approx(eq.mean())
    assert row["final_accuracy_pct_std"] == pytest.approx(eq.std(ddof=1))
    assert row["vanilla_accuracy_pct_mean"] == pytest.approx(van.mean())  # seed 2's vanilla is not paired
    assert row["accuracy_gap_pp_mean"] == pytest.approx((eq - van).mean())
    assert row["accuracy_gap_pp_std"] == pytest.approx((eq - van).std(ddof=1))
    assert row["sparsity_pct_mean"] == pytest.approx(50.0)
    assert row["flop_speedup_model_mean"] == pytest.approx(2.5)
    assert math.isnan(row["rounds_speedup_mean"])  # never logged: n/a, not 0
    back = pd.read_csv(tmp_path / "c.csv")
    np.testing.assert_allclose(back["accuracy_gap_pp_mean"], table["accuracy_gap_pp_mean"], rtol=0, atol=0)
    md = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert f"{eq.mean():.2f} ± {eq.std(ddof=1):.2f}" in md
    assert "mlflow.search_runs" in md

    extra = client.create_run(exp, tags={"cell_key": "x", "role": ROLE_CELL, "method": VANILLA})
    client.set_tag(extra.info.run_id, "dataset", "ds")
    client.set_tag(extra.info.run_id, "seed", "1")
    with pytest.raises(ValueError, match="more than one run"):
        compare.comparison_table(compare.search_cells(target), grid)


def _comparison_frame(accuracy: float) -> pd.DataFrame:
    row: dict[str, Any] = {c: float("nan") for c in compare.COLUMNS}
    row.update(
        dataset="mnist-sample",
        pruning_rate=0.5,
        n_seeds=2,
        final_accuracy_pct_mean=accuracy,
        final_accuracy_pct_std=1.0,
        vanilla_accuracy_pct_mean=97.0,
        vanilla_accuracy_pct_std=0.5,
        sparsity_pct_mean=74.0,
        sparsity_pct_std=0.0,
    )
    return pd.DataFrame([row], columns=list(compare.COLUMNS))


def test_accuracy_vs_sparsity_figure_plots_the_comparison_table(tmp_path: Path) -> None:
    """The stage draws the figure from comparison.csv, not from the summaries it also reads."""
    table = _comparison_frame(accuracy=80.0)
    csv = tmp_path / "comparison.csv"
    table.to_csv(csv, index=False)
    report_stage.build(
        [str(FIXTURE)], str(tmp_path / "tables"), str(tmp_path / "fig"), comparison_csv=str(csv)
    )

    points = figures.sparsity_points(pd.read_csv(csv))["mnist-sample"]
    assert [(p.rate, p.sparsity, p.accuracy, p.vanilla) for p in points] == [(0.5, 74.0, 80.0, 97.0)]
    expected = figures.plot_accuracy_vs_sparsity_table(pd.read_csv(csv), tmp_path / "expected")
    assert (tmp_path / "fig" / "accuracy_vs_sparsity.png").read_bytes() == expected[0].read_bytes()
    from_summaries = figures.plot_accuracy_vs_sparsity([json.loads(FIXTURE.read_text())], tmp_path / "s")
    assert from_summaries[0].read_bytes() != expected[0].read_bytes()  # the fixture says ~97 %, not 80 %
