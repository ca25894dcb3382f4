"""What a reader sees of the runs, without training: rounding, run times, overview pages, the entry URL,
the report's table and headline, and noticing a store that travelled (real SQLite MLflow stores)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from equitable_fl.grid import GridCell
from equitable_fl.records import TimingRecord
from equitable_fl.report import html, tables
from equitable_fl.tracking import compare, precision, relocate, run_card, run_times, store
from equitable_fl.tracking.cells import RunRecord


def test_derived_percentages_are_rounded_to_what_they_measure_and_nothing_else_is() -> None:
    assert precision.metric_value("accuracy_gap_pp", -0.6000000000000005) == -0.6
    assert precision.metric_value("size_reduction_pct", 71.59660918) == 71.6
    zero = precision.metric_value("accuracy_gap_pp", -0.001)
    assert zero == 0.0 and math.copysign(1.0, zero) == 1.0  # no "-0.0" in the UI
    assert precision.metric_value("sparsity", 0.7480392156862745) == 0.7480392156862745
    assert precision.metric_value("flop_speedup_model", 3.883880108311) == 3.883880108311
    assert math.isnan(precision.metric_value("accuracy_gap_pp", math.nan))
    assert precision.is_percentage("final_accuracy_pct_mean") and not precision.is_percentage("n_seeds")
    assert precision.significant(96.89999999999999) == 96.9
    assert precision.significant(1.4142135623730951) == 1.414213562
    assert math.isnan(precision.significant(math.nan))


def test_a_run_spans_its_measured_training_and_ends_when_its_metrics_were_written(tmp_path: Path) -> None:
    timing = TimingRecord(1, [1.25, 2.0], [100, 100], 3.25, 0.01625)
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{}")
    os.utime(metrics, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    assert run_times.step_span(metrics, timing) == (1_700_000_000_123 - 3250, 1_700_000_000_123)
    assert run_times.enclosing([(5, 9), (1, 4), (10, 12)]) == (1, 12)


def test_times_are_not_content_but_rendered_pages_are() -> None:
    record = RunRecord(name="x", metrics={"final_accuracy": 0.9})
    before = record.payload()
    record.start_ms, record.end_ms = 1, 2
    assert record.payload() == before  # re-dated files never relog a cell
    record.texts[run_card.NAME] = "<p>page</p>"
    assert record.payload() != before


def test_every_parent_gets_the_same_overview_rows() -> None:
    eq = run_card.render(
        "ds rate0.5 seed0 equitable-fl",
        GridCell("ds", 0, "0.5"),
        {"final_accuracy": 0.969, "vanilla_accuracy": 0.975, "accuracy_gap_pp": -0.6, "sparsity": 0.748},
    )
    van = run_card.render(
        "ds seed0 vanilla", GridCell("ds", 0), {"final_accuracy": 0.975, "rounds_speedup": 1}
    )
    for page in (eq, van):
        assert page.count("<tr><td>") == len(run_card.ROWS)
        assert [row[0] for row in run_card.ROWS] == [
            line.split("<code>")[1].split("</code>")[0] for line in page.splitlines() if "<code>" in line
        ]
    assert "96.90 %" in eq and "-0.60 pp" in eq and "74.80 %" in eq and "pruning rate 0.5" in eq
    assert "by definition" in van and "pruning rate" not in van and "1.00×" in van
    assert van.count("n/a") == len(run_card.ROWS) - 2


def test_runs_url_lands_on_the_runs_table(tmp_path: Path) -> None:
    sqlite = store.resolve(tmp_path / "results", environ={})
    assert store.runs_url(sqlite, "3") == (
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"
    )
    server = store.resolve(
        tmp_path, environ={"MLFLOW_TRACKING_URI": "https://u:secret@mlflow.example:8443/ml/"}
    )
    assert store.runs_url(server, "7") == (
        "https://mlflow.example:8443/ml/#/experiments/7/runs?workflowType=machine_learning"
    )


def _store_with_a_run(results: Path) -> store.Target:
    target = store.resolve(results, environ={})
    client = store.open_client(target, str(results))
    experiment_id = store.ensure_experiment(client, target)
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    run = client.create_run(experiment_id)
    client.log_text(run.info.run_id, "x", "a.txt")
    client.set_terminated(run.info.run_id)
    return target


def test_a_store_that_travelled_is_noticed_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    monkeypatch.chdir(first)  # results_dir "results" in both places, as with one config
    original = _store_with_a_run(Path("results"))
    assert relocate.check(original) is None and relocate.flags("results") == []

    shutil.copytree(first / "results", second / "results")  # copied: the original is still there
    monkeypatch.chdir(second)
    copied = store.resolve("results", environ={})
    stale = relocate.check(copied)
    assert stale is not None and stale.recorded == original.artifact_location
    assert stale.expected == copied.artifact_location and "belongs to another folder" in stale.reason
    flag = relocate.flag_path("results", stale.pair)
    assert relocate.flags("results") == [flag] and flag.startswith("results/mlflow/moved-")

    shutil.rmtree(first)  # ... and the original deleted: moved
    moved = relocate.check(copied)
    assert moved is not None and "no longer exists" in moved.reason and moved.pair == stale.pair
    relocate.write_flag("results", flag)
    assert relocate.flags("results", earlier=True) == [flag]

    relocate.rebuild(copied, moved)
    assert not Path("results/mlflow/mlflow.db").exists() and not Path("results/mlflow/artifacts").exists()
    assert relocate.check(copied) is None  # no store: track makes a new one
    assert relocate.flags("results") == [] and relocate.flags("results", earlier=True) == [flag]


def test_missing_artifacts_or_a_users_store_are_told_apart(tmp_path: Path) -> None:
    target = _store_with_a_run(tmp_path / "results")
    shutil.rmtree(tmp_path / "results" / "mlflow" / "artifacts")
    missing = relocate.check(target)
    assert missing is not None and "is missing" in missing.reason
    users = store.resolve(tmp_path / "other", environ={"MLFLOW_TRACKING_URI": target.uri})
    assert relocate.check(users) is None  # never rebuilt automatically: it may hold other experiments


def _comparison() -> pd.DataFrame:
    row: dict[str, object] = {c: math.nan for c in compare.COLUMNS}
    row.update(dataset="ds", variant="", pruning_rate=0.5, n_seeds=2)
    for base, (mean, std) in {
        "final_accuracy_pct": (96.9, 0.14),
        "vanilla_accuracy_pct": (97.5, 0.1),
        "accuracy_gap_pp": (-0.6, 0.2),
        "sparsity_pct": (74.8, 0.0),
        "size_reduction_pct": (71.6, 0.0),
        "flop_speedup_model": (4.0, 0.0),
        "wallclock_speedup": (0.99, 0.01),
    }.items():
        row[f"{base}_mean"], row[f"{base}_std"] = mean, std
    other = {**row, "pruning_rate": 0.3, "variant": "strict"}
    return pd.DataFrame([row, other], columns=list(compare.COLUMNS))


def test_report_table_and_headline_show_the_comparison() -> None:
    table = _comparison()
    page = html.table_html(table, "Title <x>", note="units & more")
    assert "<h1>Title &lt;x&gt;</h1>" in page and "units &amp; more" in page
    _, rows, _ = tables.markdown_frame(table)
    assert page.count("<tr>") == 1 + len(rows) and "accuracy_<wbr>gap_<wbr>pp" in page
    assert '<td class="n">-0.60 ± 0.20</td>' in page

    headline = html.headline_rst(table)
    assert headline.startswith("**ds**\n") and "**ds** (variant strict)" in headline
    assert "- pruning rate 0.5, sparsity 74.80 ± 0.00 % (2 seeds)" in headline
    assert (
        "  - accuracy gap -0.60 ± 0.20 pp: 96.90 ± 0.14 % against 97.50 ± 0.10 % for vanilla FL" in headline
    )
    assert "rounds to target n/a" in headline and "measured wall-clock 0.99 ± 0.01×" in headline
    assert html.headline_rst(table.iloc[0:0]).startswith("*No cell")
