"""One tracked tiny workflow run per test process, and `mlflow server` on its store, for the tests reading it.

The tracking workflow tests and the browser tests read the same finished run (1 dataset × 2 rates × 2
seeds against the default SQLite store). Training it takes minutes on two busy cores, so it is made once
per process and shared: both modules are in the xdist group ``tracking`` (one worker, collection order:
``tests/browser`` reads first, ``tests/tracking`` changes the run last). A run whose results were moved
away by a test is made again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from equitable_fl.tracking import store

# tests/workflow is importable as `workflow` because pytest puts tests/ on sys.path for packaged test dirs
from workflow.snakemake_runner import run, tiny_config, write_config  # isort: skip

RATES = ("0.5", "0.6")
SEEDS = (0, 1)
EXPERIMENT = store.default_experiment("results")
MLFLOW = Path(sys.executable).with_name("mlflow")

_RUNS: dict[str, Path] = {}


def config(rates: tuple[str, ...] = RATES, seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    cfg = tiny_config()
    cfg["grid"]["pruning_rates"] = [float(r) for r in rates]
    cfg["grid"]["seeds"] = list(seeds)
    return cfg


def finished_run(factory: pytest.TempPathFactory) -> Path:
    """The working directory of the finished tiny grid, run with --cores 4 against the default store."""
    workdir = _RUNS.get("grid")
    if workdir is not None and (workdir / "results" / "mlflow" / "logged.json").is_file():
        return workdir
    workdir = factory.mktemp("tracked")
    write_config(workdir, config())
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        run(workdir, "--cores", "4")
    _RUNS["grid"] = workdir
    return workdir


def uri(workdir: Path) -> str:
    return store.default_uri(workdir / "results")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(workdir: Path, timeout: float = 90.0) -> Iterator[str]:
    """`mlflow server` on the run's store on a free local port (one worker, no job runner); its base URL.

    Stopped by its PID afterwards, also when the test fails (SIGTERM ends its workers too).
    """
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        str(MLFLOW), "server",
        "--backend-store-uri", uri(workdir),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    log_path = workdir / f"mlflow-server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, log_path.read_text()
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
            assert time.monotonic() < deadline, f"mlflow server did not answer within {timeout:.0f} s"
            time.sleep(0.5)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
