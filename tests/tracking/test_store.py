"""Where runs go, and failing fast with a useful message when the store is down (real MLflow, no mocks)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from equitable_fl.tracking import store


def _closed_port() -> int:
    """A port nothing listens on: bound once to get a free number, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_default_store_is_sqlite_inside_results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = store.resolve("results/demo", environ={})
    db = (tmp_path / "results" / "demo" / "mlflow" / "mlflow.db").resolve()
    assert target.uri == f"sqlite:///{db.as_posix()}"  # absolute: four slashes, never cwd-relative later
    assert target.uri.startswith("sqlite:////")
    assert target.artifact_location == (db.parent / "artifacts").as_uri()
    assert target.experiment == "equitable-fl/results/demo"
    assert target.default_store
    assert target.lock_path == db.parent / "track.lock"


def test_environment_overrides_uri_and_experiment(tmp_path: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": "http://user:secret@mlflow.example:5000", "MLFLOW_EXPERIMENT_NAME": "mine"}
    target = store.resolve(tmp_path / "results", environ=env)
    assert target.uri == env["MLFLOW_TRACKING_URI"]
    assert target.artifact_location is None  # a server decides where artifacts go
    assert target.experiment == "mine"
    assert not target.default_store
    assert target.display_uri == "http://user:***@mlflow.example:5000"
    other_db = tmp_path / "elsewhere" / "x.db"
    sqlite = store.resolve(tmp_path / "results", environ={"MLFLOW_TRACKING_URI": f"sqlite:///{other_db}"})
    assert sqlite.artifact_location == (other_db.parent / "artifacts").as_uri()


def test_describe_changes_with_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Snakemake params trigger relogs when the user switches store; no secret reaches the params."""
    before = store.describe(tmp_path / "r")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://u:pw@host/mlflow")
    after = store.describe(tmp_path / "r")
    assert before != after
    assert "pw" not in str(after)


def test_unreachable_server_fails_fast_with_recovery_hint(tmp_path: Path) -> None:
    port = _closed_port()
    target = store.resolve(tmp_path / "results", environ={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    start = time.monotonic()
    with pytest.raises(store.TrackingUnavailable) as err:
        store.open_client(target, str(tmp_path / "results"))
    assert time.monotonic() - start < 10  # no minutes of retries with back-off
    message = str(err.value)
    assert f"http://127.0.0.1:{port} is unreachable" in message
    assert "Training outputs are intact" in message
    assert "rerun snakemake" in message and "without retraining" in message
    assert not (tmp_path / "results").exists()  # nothing was written anywhere


def test_sqlite_store_and_experiment_are_created_once(tmp_path: Path) -> None:
    results = tmp_path / "results"
    target = store.resolve(results, environ={})
    client = store.open_client(target, str(results))
    first = store.ensure_experiment(client, target)
    assert store.ensure_experiment(client, target) == first
    exp = client.get_experiment(first)
    assert exp.name == target.experiment
    assert exp.artifact_location == target.artifact_location
    assert (results / "mlflow" / "mlflow.db").is_file()
    client.delete_experiment(first)
    assert store.ensure_experiment(client, target) == first  # restored, not duplicated
    assert client.get_experiment(first).lifecycle_stage == "active"
