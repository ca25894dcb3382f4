"""The tracked workflow for real: Snakemake on 4 cores, a 2 × 2 grid, a SQLite MLflow store, `mlflow server`.

The tests of the ``finished`` run are order-dependent on purpose and share one working directory (one
xdist group): reading the store and serving it come first, the reruns that change it come last.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
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
from equitable_fl.tracking import store
from equitable_fl.tracking.cells import SERIES

# tests/workflow is importable as `workflow` because pytest puts tests/ on sys.path for packaged test dirs
from workflow.snakemake_runner import jobs_run, run, tiny_config, write_config  # isort: skip

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("tracking")]

RATES = ("0.5", "0.6")
SEEDS = (0, 1)
ROUNDS = 2  # per phase, in tiny_config
PHASES = (1, 2, 3)
EXPERIMENT = store.default_experiment("results")
TRAINING_RULES = {"prepare", "clients", "partition", "init_model", "phase1", "phase", "prune", "vanilla"}
MLFLOW = Path(sys.executable).with_name("mlflow")


def _cfg(rates: tuple[str, ...] = RATES, seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    cfg = tiny_config()
    cfg["grid"]["pruning_rates"] = [float(r) for r in rates]
    cfg["grid"]["seeds"] = list(seeds)
    return cfg


def _uri(workdir: Path) -> str:
    return store.default_uri(workdir / "results")


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
    workdir = tmp_path_factory.mktemp("tracked")
    write_config(workdir, _cfg())
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        run(workdir, "--cores", "4")
    return workdir


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
    assert row["metrics.size_reduction_pct"] == pytest.approx(final["size_reduction_pct"])
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

    assert listing() == {"figures", "summary", "sparsity"}
    assert listing("figures") == {f"figures/{n}.png" for n in figures.CELL_FIGURES}
    assert listing("sparsity") == {"sparsity/prune1", "sparsity/prune2"}
    local = client.download_artifacts(run_id, "summary/summary.json", str(finished / "dl"))
    assert Path(local).read_bytes() == (cell / "summary.json").read_bytes()
    children = _search(finished, f"tags.`mlflow.parentRunId` = '{run_id}' AND tags.phase = '2'")
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
        assert row["sparsity_pct_mean"] == pytest.approx(100.0 * cells["metrics.sparsity"].mean())
    # the same numbers as the table built from the summaries, by another route
    by_rate = pd.read_csv(tables / "by_rate.csv")
    for col in (
        "final_accuracy_pct_mean",
        "vanilla_accuracy_pct_mean",
        "accuracy_gap_pp_std",
        "size_reduction_pct_mean",
    ):
        assert list(comparison[col]) == pytest.approx(list(by_rate[col]))
    md = (tables / "comparison.md").read_text(encoding="utf-8")
    assert md.count("| mnist-sample |") == 2 and " ± " in md
    # the report's figure is drawn from comparison.csv: redrawing it from the CSV gives the same bytes
    redrawn = figures.plot_accuracy_vs_sparsity_table(comparison, finished / "redrawn")
    assert (finished / "results" / "figures" / "accuracy_vs_sparsity.png").read_bytes() == redrawn[
        0
    ].read_bytes()


_REPORT_ENTRY = re.compile(
    r'"(results/[^"]+\.(?:png|csv))": \{"name": "[^"]*", "filename": "[^"]*", '
    r'"labels": (?:null|\{[^}]*\}), "size": "[^"]*", "caption": "((?:[^"\\]|\\.)*)"'
)


def test_report_contains_every_figure_with_a_caption(finished: Path) -> None:
    run(finished, "--report", "results/report.html")
    html = (finished / "results" / "report.html").read_text(encoding="utf-8")
    captions = dict(_REPORT_ENTRY.findall(html))
    figures_made = {
        p.relative_to(finished).as_posix()
        for p in (finished / "results").rglob("figures/*.png")
        if "mlflow" not in p.parts  # the copies logged as MLflow artifacts
    }
    assert len(figures_made) == len(figures.FIGURES) + len(RATES) * len(SEEDS) * len(figures.CELL_FIGURES)
    assert figures_made | {"results/tables/comparison.csv"} == set(captions)
    for path, caption in captions.items():
        assert len(caption) > 80, path
    assert "0.6, seed 1" in captions["results/mnist-sample/seed1/rate0.6/figures/model_size.png"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(finished: Path) -> Iterator[str]:
    """`mlflow server` on the produced store, on a free local port; stopped by its PID afterwards."""
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        str(MLFLOW), "server",
        "--backend-store-uri", _uri(finished),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    log = (finished / "mlflow-server.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=finished)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (finished / "mlflow-server.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not answer within 90 s"
            time.sleep(0.5)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)  # by PID; SIGTERM ends the server's workers too
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


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
    port = _free_port()  # released at once: nothing listens there
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
