"""Every tracking test talks to a store it chose itself, never to one a developer's shell points at."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    # store.open_client sets HTTP retry defaults in os.environ; record them so they are undone after each test
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "DO_NOT_TRACK"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
