"""DVC versions a run: push to a local remote, pull into a fresh clone, nothing to recompute."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .snakemake_runner import copy_project, jobs_run, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("dvc")]

VENV = Path(sys.executable).parent.parent


def _env() -> dict[str, str]:
    # the workflow's own store: an MLFLOW_TRACKING_URI left by another test would redirect tracking
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {
        **inherited,
        "VENV": str(VENV),
        "NO_INSTALL": "1",  # drive `make` with the test's venv; never install the temporary copy into it
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }


def _sh(cwd: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _versioned(root: Path) -> dict[str, bytes]:
    results = root / "results" / "demo"
    files = [
        *results.rglob("mask.safetensors"),
        *results.rglob("ticket.safetensors"),
        *results.rglob("*.npz"),
    ]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_push_then_pull_into_fresh_clone_restores_masks_and_data(tmp_path: Path) -> None:
    repo, clone, remote = tmp_path / "repo", tmp_path / "clone", tmp_path / "remote"
    copy_project(repo)
    cfg = tiny_config(results_dir="results/demo")
    cfg["grid"]["pruning_rates"] = [0.5]
    (repo / "config" / "demo.yaml").unlink()
    write_config(repo, cfg).rename(repo / "config" / "demo.yaml")
    _sh(repo, "git", "init", "-q", "-b", "main")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "commit", "-q", "-m", "project")

    _sh(repo, "dvc", "remote", "modify", "--local", "local", "url", str(remote))
    _sh(repo, "dvc", "repro", "demo")
    _sh(repo, "dvc", "push")
    _sh(repo, "git", "add", "dvc.lock")
    _sh(repo, "git", "commit", "-q", "-m", "results")
    pushed = _versioned(repo)
    assert any(name.endswith("prune1/mask.safetensors") for name in pushed)
    assert "results/demo/data/mnist-sample/prepared.npz" in pushed

    _sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "results").exists()
    _sh(clone, "dvc", "remote", "modify", "--local", "local", "url", str(remote))
    pulled = _sh(clone, "make", "pull", "STAGE=demo")
    assert _versioned(clone) == pushed
    # after a complete pull only the MLflow store is rebuilt for its new place: nothing is trained
    rules = {j.rule for j in jobs_run(pulled)}
    assert {"store_moved", "track"} <= rules
    assert rules & {"phase1", "phase", "prune", "vanilla", "init_model"} == set()
    assert (clone / "results" / "demo" / "mlflow" / "logged.json").is_file()

    dry = _sh(
        clone,
        str(VENV / "bin" / "snakemake"), "-n",
        "--workflow-profile", "workflow/profiles/default",
        "--configfile", "config/demo.yaml",
    )  # fmt: skip
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert jobs_run(dry) == []
