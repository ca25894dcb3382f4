"""The tracked workflow for real: Snakemake on 4 cores, a 2 × 2 grid, a SQLite MLflow store, `mlflow server`.

The tests of the ``finished`` run are order-dependent on purpose and share one working directory (one
xdist group, with the browser tests that read the same run, see ``tiny_run``): reading the store and
serving it come first, the reruns that change it come last, and moving the results folder away comes at
the very end.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from equitable_fl import io
from equitable_fl.report import figures
from equitable_fl.tracking import precision, run_card
from equitable_fl.tracking.cells import SERIES
from tracking import tiny_run
from tracking.tiny_run import EXPERIMENT, RATES, SEEDS
from tracking.tiny_run import config as _cfg
from tracking.tiny_run import uri as _uri

# tests/workflow is importable as `workflow` because pytest puts tests/ on sys.path for packaged test dirs
from workflow.snakemake_runner import jobs_run, run, write_config  # isort: skip

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("tracking")]

ROUNDS = 2  # per phase, in tiny_config
PHASES = (1, 2, 3)
TRAINING_RULES = {"prepare", "clients", "partition", "init_model", "phase1", "phase", "prune", "vanilla"}
DOCS = Path(__file__).parents[2] / "docs" / "tracking.md"


def _search(workdir: Path, filter_string: str = "") -> pd.DataFrame:
    """Active runs of the experiment, through mlflow.search_runs as a user would read them."""
    mlflow.set_tracking_uri(_uri(workdir))
    df = mlflow.search_runs(
        experiment_names=[EXPERIMENT], filter_string=filter_string, output_format="pandas"
    )
    assert isinstance(df, pd.DataFrame)
    return df


def _parents(workdir: Path) -> pd.DataFrame:
    return _search(workdir, "tags.role = 'cell'")


def _run_ids(workdir: Path) -> set[str]:
    return set(_search(workdir)["run_id"])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny 1 dataset × 2 rates × 2 seeds grid, run once with --cores 4 against the default store."""
    return tiny_run.finished_run(tmp_path_factory)


def _cell_dir(workdir: Path, seed: int) -> Path:
    return workdir / "results" / "mnist-sample" / f"seed{seed}"


def _phase_metrics(workdir: Path, seed: int, rate: str, k: int) -> dict[str, Any]:
    base = _cell_dir(workdir, seed)
    path = base / "phase1" if k == 1 else base / f"rate{rate}" / f"phase{k}"
    return io.read_json(path / "metrics.json")


def _expected_series(history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    return {
        "accuracy": [(r["global_round"], r["accuracy"]) for r in history],
        "loss": [(r["global_round"], r["loss"]) for r in history],
        "clients": [(r["global_round"], float(r["num_clients"])) for r in history],
        "round_bytes_communicated": [
            (r["global_round"], float(r["bytes_down"] + r["bytes_up"])) for r in history
        ],
    }


def _history(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    out = {}
    for key in SERIES:
        points = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        out[key] = [(m.step, pytest.approx(m.value)) for m in points]
    return out


def test_every_cell_has_one_parent_with_its_phases_and_complete_rounds(finished: Path) -> None:
    parents = _parents(finished)
    eq_keys = {f"mnist-sample/seed{s}/rate{r}/equitable-fl" for r in RATES for s in SEEDS}
    van_keys = {f"mnist-sample/seed{s}/vanilla" for s in SEEDS}
    assert Counter(parents["tags.run_key"]) == Counter(eq_keys | van_keys)  # each exactly once
    assert set(parents["status"]) == {"FINISHED"}
    children = _search(finished, "tags.role = 'phase'")
    assert len(children) == len(eq_keys) * len(PHASES)
    by_parent = children.groupby("tags.mlflow.parentRunId")["tags.phase"].apply(sorted).to_dict()

    client = MlflowClient(tracking_uri=_uri(finished))
    for row in parents.to_dict(orient="records"):
        run_id, seed = row["run_id"], int(row["tags.seed"])
        if row["tags.method"] == "vanilla":
            assert run_id not in by_parent  # one training stage: its rounds are on the parent
            assert "params.pruning_rate" not in row or pd.isna(row["params.pruning_rate"])
            history = io.read_json(_cell_dir(finished, seed) / "vanilla" / "metrics.json")["history"]
            assert _history(client, run_id) == _expected_series(history)
            continue
        rate = row["tags.pruning_rate"]
        assert by_parent[run_id] == ["1", "2", "3"]
        assert row["params.pruning_rate"] == rate
        phases = [_phase_metrics(finished, seed, rate, k) for k in PHASES]
        whole = _expected_series([r for m in phases for r in m["history"]])
        assert [s for s, _ in whole["accuracy"]] == list(range(1, ROUNDS * len(PHASES) + 1))
        assert _history(client, run_id) == whole  # step = global round, every round of every phase
        for child in children[children["tags.mlflow.parentRunId"] == run_id].to_dict(orient="records"):
            k = int(child["tags.phase"])
            assert _history(client, child["run_id"]) == _expected_series(phases[k - 1]["history"])
            assert child["metrics.sparsity"] == pytest.approx(phases[k - 1]["sparsity"])


def test_parent_runs_carry_final_metrics_params_tags_and_artifacts(finished: Path) -> None:
    parents = _parents(finished).set_index("tags.run_key")
    row = parents.loc["mnist-sample/seed1/rate0.6/equitable-fl"]
    cell = _cell_dir(finished, 1) / "rate0.6"
    summary = io.read_json(cell / "summary.json")
    final = summary["final"]
    assert row["metrics.final_accuracy"] == pytest.approx(final["final_accuracy"])
    assert row["metrics.sparsity"] == pytest.approx(final["sparsity"])
    assert row["metrics.size_reduction_pct"] == round(final["size_reduction_pct"], 2)  # docs: to 0.01
    assert row["metrics.flop_speedup_model"] == pytest.approx(final["flop_speedup_model"])
    assert row["metrics.flop_speedup_training"] == pytest.approx(final["flop_speedup_training"])
    assert row["metrics.wallclock_speedup"] == pytest.approx(summary["measured"]["wallclock_speedup"])
    assert row["params.training.lr"] == "0.05"
    assert row["params.phases.3.rounds"] == str(ROUNDS)
    assert row["params.pruning.rate"] == "0.6"
    assert row["params.model.channels"] == "[4,8]"
    assert re.fullmatch(r"[0-9a-f]{40}", row["tags.git_commit"])
    assert re.fullmatch(r"[0-9a-f]{64}", row["tags.config_sha256"])
    npz = finished / "results" / "data" / "mnist-sample" / "prepared.npz"
    assert row["tags.dataset_sha256"] == io.sha256_file(npz)
    assert row["tags.weights_sha256"] == io.sha256_file(cell / "phase3" / "weights.safetensors")
    assert row["tags.mask_sha256"] == io.sha256_file(cell / "phase3" / "mask.safetensors")
    assert row["tags.version.mlflow"] == mlflow.__version__
    assert row["tags.version.torch"]

    client = MlflowClient(tracking_uri=_uri(finished))
    run_id = row["run_id"]

    def listing(path: str | None = None) -> set[str]:
        return {a.path for a in client.list_artifacts(run_id, path)}

    assert listing() == {"figures", "summary", "sparsity", run_card.NAME}
    assert listing("figures") == {f"figures/{n}.png" for n in figures.CELL_FIGURES}
    assert listing("sparsity") == {"sparsity/prune1", "sparsity/prune2"}
    local = client.download_artifacts(run_id, "summary/summary.json", str(finished / "dl"))
    assert Path(local).read_bytes() == (cell / "summary.json").read_bytes()
    overview = Path(client.download_artifacts(run_id, run_card.NAME, str(finished / "dl"))).read_text()
    assert "<h1>mnist-sample rate0.6 seed1 equitable-fl</h1>" in overview
    assert f"{100 * final['final_accuracy']:.2f} %" in overview  # rendered from the logged metrics
    assert overview.count("<tr><td>") == len(run_card.ROWS)
    children = _search(finished, f"tags.`mlflow.parentRunId` = '{run_id}' AND tags.phase = '2'")
    assert children["params.method"].tolist() == ["equitable-fl"]  # every run says its method
    child_files = {a.path for a in client.list_artifacts(children["run_id"].iloc[0])}
    assert child_files == {
        "metrics.json",
        "participation.json",
        "timing.json",
        "params.json",
        "sparsity.json",
    }


def test_logged_json_lists_the_runs_in_the_store(finished: Path) -> None:
    logged = io.read_json(finished / "results" / "mlflow" / "logged.json")
    assert logged["experiment"] == EXPERIMENT
    parents = _parents(finished).set_index("run_id")
    assert {c["parent_run_id"] for c in logged["cells"]} == set(parents.index)
    for cell in logged["cells"]:
        assert parents.loc[cell["parent_run_id"], "tags.content_hash"] == cell["content_hash"]
        assert len(cell["child_run_ids"]) == (3 if cell["method"] == "equitable-fl" else 0)
    # the documented entry point: the experiment's runs table in the machine-learning view
    runs_path = f"#/experiments/{logged['experiment_id']}/runs?workflowType=machine_learning"
    assert logged["runs_url"] == f"http://127.0.0.1:5000/{runs_path}"
    assert logged["rebuilt"] is None
    assert logged["runs_url"] in (finished / "results" / "logs" / "track.log").read_text()


def test_runs_start_and_end_with_their_training(finished: Path) -> None:
    """A run ends when its step wrote metrics.json and lasts its measured training seconds."""
    client = MlflowClient(tracking_uri=_uri(finished))
    logged = io.read_json(finished / "results" / "mlflow" / "logged.json")

    def span(step_dir: Path) -> tuple[int, int]:
        end = (step_dir / "metrics.json").stat().st_mtime_ns // 1_000_000
        return end - round(1000 * io.read_json(step_dir / "timing.json")["train_seconds"]), end

    def times(run_id: str) -> tuple[int, int]:
        info = client.get_run(run_id).info
        return info.start_time, info.end_time

    for cell in logged["cells"]:
        base = _cell_dir(finished, cell["seed"])
        if cell["method"] == "vanilla":
            assert times(cell["parent_run_id"]) == span(base / "vanilla")
            continue
        rate = base / f"rate{cell['pruning_rate']}"
        spans = [span(base / "phase1"), span(rate / "phase2"), span(rate / "phase3")]
        assert [times(cell["child_run_ids"][str(k)]) for k in PHASES] == spans
        assert times(cell["parent_run_id"]) == (spans[0][0], spans[-1][1])
        assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0]  # phases one after the other


def _documented_metrics() -> dict[str, dict[str, set[str]]]:
    """docs/tracking.md's metric tables: per kind of run, the metrics marked ✓ (always) and (✓) (maybe)."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("### Metrics") : text.index("### Artifacts")]
    kinds = ("Equitable-FL parent", "phase child", "vanilla parent")
    out: dict[str, dict[str, set[str]]] = {k: {"always": set(), "maybe": set()} for k in kinds}
    header: list[str] | None = None
    rows = 0
    for line in section.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "metric":
            header = cells
            continue
        if header is None or set(cells[0]) <= set("-: "):
            continue
        names = re.findall(r"`([a-z_]+)`", cells[0])
        assert names, line
        rows += 1
        for kind in kinds:
            mark = cells[header.index(kind)]
            assert mark in ("✓", "(✓)", ""), line
            if mark:
                out[kind]["always" if mark == "✓" else "maybe"].update(names)
    assert rows > 20, "the metric tables of docs/tracking.md were not found"
    return out


def test_docs_list_exactly_the_metrics_each_kind_of_run_logs(finished: Path) -> None:
    documented = _documented_metrics()
    parents = _parents(finished)
    runs = {
        "Equitable-FL parent": parents[parents["tags.method"] == "equitable-fl"]["run_id"],
        "phase child": _search(finished, "tags.role = 'phase'")["run_id"],
        "vanilla parent": parents[parents["tags.method"] == "vanilla"]["run_id"],
    }
    client = MlflowClient(tracking_uri=_uri(finished))
    for kind, run_ids in runs.items():
        always, maybe = documented[kind]["always"], documented[kind]["maybe"]
        assert len(run_ids) > 0
        for run_id in run_ids:
            metrics = client.get_run(run_id).data.metrics
            assert set(metrics) - always - maybe == set(), f"{kind}: logged but not in docs/tracking.md"
            assert always - set(metrics) == set(), f"{kind}: in docs/tracking.md but not logged"
            for name, value in metrics.items():  # derived percentages without float noise
                if precision.is_percentage(name):
                    assert value == round(value, precision.PERCENT_DECIMALS), (name, value)


def test_comparison_tables_and_figure_come_from_the_store(finished: Path) -> None:
    tables = finished / "results" / "tables"
    comparison = pd.read_csv(tables / "comparison.csv")
    assert list(comparison["pruning_rate"]) == [0.5, 0.6]
    assert list(comparison["n_seeds"]) == [2, 2]
    parents = _parents(finished)
    eq = parents[parents["tags.method"] == "equitable-fl"]
    van = parents[parents["tags.method"] == "vanilla"].set_index("tags.seed")
    for rate, row in zip(RATES, comparison.to_dict(orient="records"), strict=True):
        cells = eq[eq["tags.pruning_rate"] == rate]
        acc = 100.0 * cells["metrics.final_accuracy"]
        gaps = acc.to_numpy() - 100.0 * van.loc[cells["tags.seed"], "metrics.final_accuracy"].to_numpy()
        assert row["final_accuracy_pct_mean"] == pytest.approx(acc.mean())
        assert row["final_accuracy_pct_std"] == pytest.approx(acc.std(ddof=1))
        assert row["accuracy_gap_pp_mean"] == pytest.approx(gaps.mean())
        # per-cell percentages are rounded to 0.01 before averaging
        assert row["sparsity_pct_mean"] == pytest.approx(100.0 * cells["metrics.sparsity"].mean(), abs=0.005)
    # the same numbers as the table built from the summaries, by another route
    by_rate = pd.read_csv(tables / "by_rate.csv")
    for col in (
        "final_accuracy_pct_mean",
        "vanilla_accuracy_pct_mean",
        "accuracy_gap_pp_std",
        "size_reduction_pct_mean",
    ):
        assert list(comparison[col]) == pytest.approx(list(by_rate[col]), abs=0.01)
    # no float noise such as 96.89999999999999 in the CSV
    assert not re.search(r"\d\.\d*(?:0{6}|9{6})\d", (tables / "comparison.csv").read_text())
    md = (tables / "comparison.md").read_text(encoding="utf-8")
    assert md.count("| mnist-sample |") == 2 and " ± " in md
    # the report's figure is drawn from comparison.csv: redrawing it from the CSV gives the same bytes
    redrawn = figures.plot_accuracy_vs_sparsity_table(comparison, finished / "redrawn")
    assert (finished / "results" / "figures" / "accuracy_vs_sparsity.png").read_bytes() == redrawn[
        0
    ].read_bytes()


_REPORT_ENTRY = re.compile(
    r'"(results/[^"]+\.(?:png|csv|html))": \{"name": "[^"]*", "filename": "[^"]*", '
    r'"labels": (null|\{[^}]*\}), "size": "[^"]*", "caption": "((?:[^"\\]|\\.)*)"'
)


def test_report_contains_every_figure_with_a_caption(finished: Path) -> None:
    run(finished, "--report", "results/report.html")
    html = (finished / "results" / "report.html").read_text(encoding="utf-8")
    entries = {path: (json.loads(labels), caption) for path, labels, caption in _REPORT_ENTRY.findall(html)}
    captions = {path: caption for path, (_, caption) in entries.items()}
    figures_made = {
        p.relative_to(finished).as_posix()
        for p in (finished / "results").rglob("figures/*.png")
        if "mlflow" not in p.parts  # the copies logged as MLflow artifacts
    }
    assert len(figures_made) == len(figures.FIGURES) + len(RATES) * len(SEEDS) * len(figures.CELL_FIGURES)
    assert figures_made | {"results/tables/comparison.html"} == set(captions)  # the table inline, as HTML
    for path, caption in captions.items():
        assert len(caption) > 80, path
    assert "0.6, seed 1" in captions["results/mnist-sample/seed1/rate0.6/figures/model_size.png"]
    for path, (labels, _) in entries.items():  # grid figures labelled like the per-cell ones
        if "/figures/" in path:
            assert set(labels) == {"figure", "pruning rate", "seed"}, path
    assert entries["results/figures/model_size.png"][0] == {
        "figure": "model size",
        "pruning rate": "all",
        "seed": "all",
    }
    # the front page carries the headline results (rendered in a browser by tests/browser)
    assert "Headline results" in html and "pruning rate 0.6, sparsity" in html


@pytest.fixture
def mlflow_server(finished: Path) -> Iterator[str]:
    """`mlflow server` on the produced store, on a free local port; stopped by its PID afterwards."""
    with tiny_run.mlflow_server(finished) as base:
        yield base


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def _get(base: str, path: str) -> bytes:
    with urllib.request.urlopen(base + path, timeout=30) as resp:
        return resp.read()


def test_mlflow_server_serves_the_runs_over_rest(finished: Path, mlflow_server: str) -> None:
    experiments = _post(mlflow_server, "/api/2.0/mlflow/experiments/search", {"max_results": 100})
    exp_id = next(e["experiment_id"] for e in experiments["experiments"] if e["name"] == EXPERIMENT)
    found = _post(
        mlflow_server,
        "/api/2.0/mlflow/runs/search",
        {"experiment_ids": [exp_id], "filter": "tags.role = 'cell'", "max_results": 1000},
    )["runs"]
    logged = io.read_json(finished / "results" / "mlflow" / "logged.json")
    assert {r["info"]["run_id"] for r in found} == {c["parent_run_id"] for c in logged["cells"]}
    cell = next(c for c in logged["cells"] if c["cell_key"] == "mnist-sample/seed0/rate0.5/equitable-fl")
    history = json.loads(
        _get(
            mlflow_server,
            f"/api/2.0/mlflow/metrics/get-history?run_id={cell['parent_run_id']}&metric_key=accuracy",
        )
    )["metrics"]
    assert sorted(int(m["step"]) for m in history) == list(range(1, ROUNDS * len(PHASES) + 1))
    summary = _get(mlflow_server, f"/get-artifact?path=summary/summary.json&run_uuid={cell['parent_run_id']}")
    assert summary == (_cell_dir(finished, 0) / "rate0.5" / "summary.json").read_bytes()


def test_rerunning_the_workflow_adds_no_runs(finished: Path) -> None:
    before = _run_ids(finished)
    assert len(before) == 6 + 4 * 3
    proc = run(finished, "--cores", "4")
    assert jobs_run(proc) == []
    assert _run_ids(finished) == before
    # even forcing the logging step again keeps every run: same content, same runs
    proc = run(finished, "--cores", "4", "--forcerun", "track")
    assert "track" in {job.rule for job in jobs_run(proc)}
    assert _run_ids(finished) == before
    assert "6 kept" in (finished / "results" / "logs" / "track.log").read_text()


def test_rerunning_one_cell_replaces_only_that_cells_runs(finished: Path) -> None:
    parents = _parents(finished).set_index("tags.run_key")["run_id"].to_dict()
    key = "mnist-sample/seed1/rate0.6/equitable-fl"
    old_ids = set(_search(finished, f"tags.cell_key = '{key}'")["run_id"])
    assert len(old_ids) == 4
    proc = run(
        finished, "--cores", "4", "--forcerun", "results/mnist-sample/seed1/rate0.6/phase3/metrics.json"
    )
    ran = Counter(job.rule for job in jobs_run(proc))
    assert ran["phase"] == 1 and ran["phase1"] == 0 and ran["vanilla"] == 0 and ran["track"] == 1
    after = _parents(finished).set_index("tags.run_key")["run_id"].to_dict()
    assert set(after) == set(parents)
    assert after[key] != parents[key]  # retrained (new timings): the cell's runs were replaced
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in parents.items() if k != key}
    new_ids = set(_search(finished, f"tags.cell_key = '{key}'")["run_id"])
    assert len(new_ids) == 4 and not new_ids & old_ids
    client = MlflowClient(tracking_uri=_uri(finished))
    assert {client.get_run(i).info.lifecycle_stage for i in old_ids} == {"deleted"}
    assert len(_run_ids(finished)) == 6 + 4 * 3


def test_unreachable_store_fails_at_logging_and_rerun_logs_without_training(tmp_path: Path) -> None:
    write_config(tmp_path, _cfg(rates=("0.5",), seeds=(0,)))
    port = tiny_run.free_port()  # released at once: nothing listens there
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        failed = run(tmp_path, "--cores", "4", check=False)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert f"MLflow tracking store http://127.0.0.1:{port} is unreachable" in out
    assert "Training outputs are intact" in out and "rerun snakemake" in out
    assert "Error in rule track" in out
    assert {job.rule for job in jobs_run(failed)} >= TRAINING_RULES
    cell = tmp_path / "results" / "mnist-sample" / "seed0"
    trained = [cell / "rate0.5" / "phase3" / "weights.safetensors", cell / "vanilla" / "weights.safetensors"]
    summary = cell / "rate0.5" / "summary.json"
    assert all(p.is_file() for p in [*trained, summary])
    stamps = {p: p.stat().st_mtime_ns for p in [*trained, summary]}
    assert not (tmp_path / "results" / "mlflow" / "logged.json").exists()

    rerun = run(tmp_path, "--cores", "4")  # the default store is reachable
    ran = {job.rule for job in jobs_run(rerun)}
    assert ran == {"track", "compare", "tables_and_figures", "all"}
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing retrained
    keys = sorted(_parents(tmp_path)["tags.run_key"])
    assert keys == ["mnist-sample/seed0/rate0.5/equitable-fl", "mnist-sample/seed0/vanilla"]
    assert len(_search(tmp_path, "tags.role = 'phase'")) == 3


def test_a_results_folder_moved_elsewhere_gets_its_store_rebuilt(finished: Path, tmp_path: Path) -> None:
    """Copy the results folder elsewhere and delete the original: the next plain run rebuilds the store.

    Last in this module: it takes the shared run's results away (``tiny_run`` makes a new one if asked).
    """
    original = finished / "results"
    old_artifacts = (original / "mlflow" / "artifacts").resolve().as_uri()
    moved = tmp_path / "elsewhere"
    shutil.copytree(original, moved / "results")  # keeps file times, as cp -a does; no .snakemake
    write_config(moved, _cfg())
    shutil.rmtree(original)
    rebuild = {"store_moved", "track", "compare", "tables_and_figures", "all"}
    assert {job.rule for job in jobs_run(run(moved, "-n"))} == rebuild  # visible before it happens

    proc = run(moved, "--cores", "2")
    assert {job.rule for job in jobs_run(proc)} == rebuild  # nothing retrained
    log = (moved / "results" / "logs" / "track.log").read_text()
    assert f"its artifact root {old_artifacts} no longer exists" in log
    assert "rebuilding the MLflow store" in log and "6 logged" in log
    logged = io.read_json(moved / "results" / "mlflow" / "logged.json")
    assert logged["rebuilt"]["recorded_artifact_root"] == old_artifacts
    flags = list((moved / "results" / "mlflow").glob("moved-*.json"))
    assert [io.read_json(f)["recorded_artifact_root"] for f in flags] == [old_artifacts]

    client = MlflowClient(tracking_uri=_uri(moved))
    root = client.get_experiment(logged["experiment_id"]).artifact_location
    assert root == (moved / "results" / "mlflow" / "artifacts").resolve().as_uri()
    for cell in logged["cells"]:
        for run_id in [cell["parent_run_id"], *cell["child_run_ids"].values()]:
            assert client.get_run(run_id).info.artifact_uri.startswith(root)
        page = client.download_artifacts(cell["parent_run_id"], run_card.NAME, str(tmp_path / "dl"))
        assert f"seed{cell['seed']}" in Path(page).read_text()  # artifacts readable where they now are
    assert len(_run_ids(moved)) == 6 + 4 * 3  # the rebuilt runs only
    assert jobs_run(run(moved, "-n")) == []  # and then the folder is current
