"""The researcher's view, in headless Chromium: MLflow's runs table at the documented address, and the report.

The MLflow UI and Snakemake's report are JavaScript apps: each check waits, with a deadline, until the
rendered page shows what a reader would look for. Both read the shared tiny run (``tracking.tiny_run``),
so this module is in the xdist group ``tracking``. On a failure the page is saved as a PNG in the test's
temporary folder (never committed). Needs Debian's ``chromium``: skipped without it, failed in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tracking import tiny_run

from browser import chromium
from equitable_fl import io
from equitable_fl.grid import GridCell
from equitable_fl.report import tables
from equitable_fl.tracking import run_card, store

# tests/workflow is importable as `workflow` because pytest puts tests/ on sys.path for packaged test dirs
from workflow.snakemake_runner import run  # isort: skip

pytestmark = [pytest.mark.workflow, pytest.mark.browser, pytest.mark.xdist_group("tracking")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chromium.Chromium]:
    """Headless Chromium for the module, stopped by its PID at the end (requested first: skips early)."""
    exe = chromium.executable()
    if exe is None:
        message = (
            f"headless Chromium is missing: install Debian's package `{chromium.PACKAGES}` "
            f"(apt-get install -y {chromium.PACKAGES}; .ci/run does)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with chromium.Chromium(tmp_path_factory.mktemp("chromium"), exe) as browser:
        yield browser


@pytest.fixture(scope="module")
def finished(browser: chromium.Chromium, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run.finished_run(tmp_path_factory)


def _parent_names(logged: dict) -> list[str]:
    """The run names a reader looks for: one per grid cell and method (independent of MLflow)."""
    names = []
    for cell in logged["cells"]:
        grid_cell = GridCell(cell["dataset"], int(cell["seed"]), cell["pruning_rate"])
        names.append(f"{grid_cell.label} {cell['method']}")
    return names


def _js_all_shown(texts: list[str]) -> str:
    return " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)


def test_runs_table_at_the_documented_address_lists_every_cell(
    browser: chromium.Chromium, finished: Path, tmp_path: Path
) -> None:
    logged = io.read_json(finished / "results" / "mlflow" / "logged.json")
    names = _parent_names(logged)
    assert len(names) == len(tiny_run.SEEDS) * (len(tiny_run.RATES) + 1)
    with tiny_run.mlflow_server(finished) as base:
        page = browser.new_page(logged["runs_url"].replace(store.DEFAULT_UI, base))
        try:
            page.wait_for(_js_all_shown(names), 90, "every cell's parent run in the runs table")
            assert page.evaluate("location.hash").startswith(f"#/experiments/{logged['experiment_id']}/runs")
            assert page.evaluate("document.title").startswith("Runs")

            # the compare view of an Equitable-FL run and its vanilla run has a common artifact to show
            pair = [
                next(c["parent_run_id"] for c in logged["cells"] if c["method"] == method)
                for method in ("equitable-fl", "vanilla")
            ]
            page.navigate(
                f"{base}/#/compare-runs?runs={json.dumps(pair)}"
                f"&experiments={json.dumps([logged['experiment_id']])}&workflowType=machine_learning"
            )
            page.wait_for(
                _js_all_shown([run_card.NAME, "Run details"]), 60, "overview.html in the compare view"
            )
        except BaseException:
            page.screenshot(tmp_path / "mlflow.png")
            raise


def test_report_shows_the_headline_results_and_the_comparison_table(
    browser: chromium.Chromium, finished: Path, tmp_path: Path
) -> None:
    run(finished, "--report", "results/report.html")
    comparison = pd.read_csv(finished / "results" / "tables" / "comparison.csv")
    comparison["variant"] = comparison["variant"].astype(object).where(comparison["variant"].notna(), "")
    page = browser.new_page((finished / "results" / "report.html").as_uri())
    try:
        front = page.wait_for(
            "document.body.innerText.includes('How to read them') && document.body.innerText",
            60,
            "the report's front page",
        )
        assert "Headline results" in front and "mnist-sample" in front
        for row in comparison.to_dict(orient="records"):
            gap, size = row["accuracy_gap_pp_mean"], row["size_reduction_pct_mean"]
            gap = f"accuracy gap {gap:+.2f} ± {row['accuracy_gap_pp_std']:.2f} pp"
            size = f"size reduction {size:.2f} ± {row['size_reduction_pct_std']:.2f} %"
            assert f"pruning rate {row['pruning_rate']:g}, sparsity" in front
            assert gap in front and size in front
            assert f"FLOPs of the final model {row['flop_speedup_model_mean']:.2f}" in front

        # Tables → the comparison table, shown inline
        assert page.evaluate(
            "(() => { const a = [...document.querySelectorAll('a')]"
            ".find(e => e.innerText.trim() === 'Tables');"
            " if (!a) return false; a.click(); return true; })()"
        )
        page.wait_for(  # press the entry's view button until its frame shows (the list may still be settling)
            "(() => { if (document.querySelector('iframe[src^=\"data:text/html\"]')) return true;"
            " const tr = [...document.querySelectorAll('tr')]"
            ".find(r => r.innerText.includes('Equitable-FL vs vanilla FL'));"
            " if (tr) tr.querySelector('a').click(); return false; })()",
            30,
            "the comparison table under Tables",
        )
        frame = page.frame_context("data:text/html")
        shown = page.wait_for(
            "document.querySelectorAll('tr').length > 1"
            " && [...document.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.innerText.trim()))",
            30,
            "the comparison table's rows",
            context_id=frame,
        )
        headers, rows, _ = tables.markdown_frame(comparison)
        assert shown == [headers, *rows]
    except BaseException:
        page.screenshot(tmp_path / "report.png")
        raise
