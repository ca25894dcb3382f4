"""Starting a phase's Flower run from a training job: the app folder, ``flwr run``, the run's status.

The app is the smallest Flower App there can be: a ``pyproject.toml`` whose components are this
package's ``server_app:app`` and ``client_app:app``, written into the job folder for every run (so
``flwr run`` never rewrites a file of the repository). Its code is not in the bundle: the SuperLink's and
the SuperNodes' Python environments must have equitable-fl installed, and the SuperLink must be started
with ``--disable-runtime-dependency-installation`` (otherwise Flower builds a fresh per-run environment
without it).

``flwr run APP CONNECTION --stream`` submits the run and streams its log until the run ends; every
line goes to this job's log. ``flwr run`` exits 0 even when the run failed, so the status is then read
with ``flwr ls CONNECTION --run-id ID --format json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from equitable_fl.progress import LOGGER_NAME

APP_PYPROJECT = """\
# Written by equitable_fl.federation.flower.launch for one phase (README "Run on real devices with Flower")
[project]
name = "equitable-fl-phase"
version = "1.0.0"
description = "One Equitable-FL phase on Flower"
license = "MIT"
dependencies = []  # the SuperLink's and SuperNodes' environments have equitable-fl installed

[tool.flwr.app]
publisher = "equitable-fl"

[tool.flwr.app.components]
serverapp = "equitable_fl.federation.flower.server_app:app"
clientapp = "equitable_fl.federation.flower.client_app:app"

[tool.flwr.app.config]
job = ""  # the job folder (equitable_fl.federation.flower.job)
"""

# No Flower tool may phone home (telemetry, update check, Ray's usage stats): the pipeline runs offline.
QUIET = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1", "RAY_USAGE_STATS_ENABLED": "0"}
_STARTED = re.compile(r"Successfully started run (\d+)")
STREAM_GRACE = 2.0  # seconds


class FlowerRunError(RuntimeError):
    """The Flower run could not be started, failed, or did not finish in time."""


@dataclass(frozen=True)
class RunStatus:
    run_id: int
    status: str  # e.g. finished:completed
    details: str
    traffic: dict[str, int]


def write_app(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(APP_PYPROJECT, encoding="utf-8")
    return folder


def flwr_executable() -> str:
    """The ``flwr`` command of this environment (beside the running Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("flwr")
    found = str(beside) if beside.is_file() else shutil.which("flwr")
    if found is None:
        raise FlowerRunError(
            "compute.engine flower needs Flower's `flwr` command: install the project's dependencies "
            "(pip install -c requirements/lock.txt -e .) in this environment"
        )
    return found


def flower_env() -> dict[str, str]:
    return {**os.environ, **QUIET}


def _forward(stream, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger(LOGGER_NAME)
    for line in stream:
        line = line.rstrip()
        lines.append(line)
        if line:
            log.info("flower | %s", line)


def run_app(
    app: Path, connection: str, job_folder: Path, federation_config: str | None, timeout: float
) -> int:
    """Submit the run and stream its log until the ServerApp has written ``result.json``; its run id.

    Once the result is written the run only has Flower's bookkeeping left: the log stream gets
    ``STREAM_GRACE`` seconds to end by itself, then it is closed (the run finishes regardless).
    """
    flwr = flwr_executable()
    cmd = [
        flwr,
        "run",
        str(app),
        connection,
        "--run-config",
        f"job={json.dumps(str(job_folder))}",
        "--stream",
    ]
    if federation_config:
        cmd += ["--federation-config", federation_config]
    lines: list[str] = []
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=flower_env(), cwd=app
    )
    reader = threading.Thread(target=_forward, args=(proc.stdout, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if (job_folder / "result.json").is_file():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=STREAM_GRACE)
                break
            if time.monotonic() > deadline:
                run_id = _run_id(lines)
                if run_id is not None:
                    stop = [flwr, "stop", str(run_id), connection]
                    subprocess.run(stop, env=flower_env(), capture_output=True, timeout=60)
                raise FlowerRunError(
                    f"the Flower run did not finish within {timeout:.0f} s (raise "
                    "compute.flower.round_timeout_seconds or check that the SuperNodes are running)"
                )
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
        reader.join(timeout=10)
    run_id = _run_id(lines)
    if run_id is None:
        tail = "\n".join(lines[-20:])
        raise FlowerRunError(
            f"`flwr run` did not start a run on SuperLink connection {connection!r} "
            f"(exit {proc.returncode}):\n"
            f"{tail}\nIs the connection in $FLWR_HOME/config.toml and its SuperLink running?"
        )
    return run_id


def _run_id(lines: list[str]) -> int | None:
    for line in lines:
        m = _STARTED.search(line)
        if m:
            return int(m.group(1))
    return None


def run_status(connection: str, run_id: int) -> RunStatus:
    proc = subprocess.run(
        [flwr_executable(), "ls", connection, "--run-id", str(run_id), "--format", "json"],
        capture_output=True,
        text=True,
        env=flower_env(),
        timeout=120,
    )
    try:
        (row,) = json.loads(proc.stdout)["runs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FlowerRunError(
            f"cannot read the status of Flower run {run_id}: {proc.stdout}{proc.stderr}"
        ) from exc
    traffic = {k: int(v) for k, v in row.get("network-traffic", {}).items()}
    return RunStatus(run_id, str(row["status"]), str(row.get("status-details", "")), traffic)
