"""A real SIGKILL of the whole run mid-phase, then the README's command again: it resumes by itself.

The run goes through the Makefile (``make run CONFIG=…``, what ``make demo`` does with the demo config)
in a copy of the project. It is killed (SIGKILL to the process group: Snakemake and its training job)
while phase 1 is between two round checkpoints; the same command then clears the stale Snakemake lock
(no manual ``--unlock``), reruns the killed job, which resumes from its last round checkpoint, and
finishes with weights, masks and metrics identical to a run that was never interrupted.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .snakemake_runner import REPO, copy_project, tiny_config, write_config

sys.path.insert(0, str(REPO / "tests" / "parity"))
from parity import digest

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("resume")]

VENV = Path(sys.executable).parent.parent
SUMMARY = "results/resume/mnist-sample/seed0/rate0.5/summary.json"


def _config(tmp: Path) -> Path:
    cfg = tiny_config(results_dir="results/resume")
    cfg["grid"]["pruning_rates"] = [0.5]
    cfg["datasets"]["mnist-sample"]["model"] = {"arch": "cnn28", "channels": [8, 16], "hidden": 32}
    cfg["training"] = {"local_epochs": 2, "batch_size": 32, "lr": 0.05, "momentum": 0.9}
    cfg["phases"] = [{"rounds": 6}, {"rounds": 1}, {"rounds": 1}]
    cfg["compute"] = {"train_threads": 1, "checkpoint_every": 2}
    return write_config(tmp, cfg)


def _make(project: Path, config: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "VENV": str(VENV),
        "NO_INSTALL": "1",
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
    }
    # the cell's summary is enough here: tracking, tables and figures are tested elsewhere
    cmd = ["make", "run", f"CONFIG={config}", "CORES=1", f"ARGS={SUMMARY}"]
    return subprocess.Popen(
        cmd,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _results(project: Path) -> dict[str, str]:
    root = project / "results" / "resume"
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.is_file() and (p.suffix == ".safetensors" or p.name in ("metrics.json", "summary.json"))
    ]
    return {str(p.relative_to(root)): digest(p) for p in files}


def _wait_until_released(lock: Path, timeout: float = 60) -> None:
    """Wait until every killed process has let go of the run's folder lock.

    SIGKILL is asynchronous: ``make`` is reaped at once, while Snakemake and its job (which inherit the
    lock) may take a moment longer to exit on a loaded machine; restarting before then would find the lock
    held, which is the wrapper's correct answer to a live run, not what this test is about.
    """
    deadline = time.monotonic() + timeout
    fd = os.open(lock, os.O_RDWR)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                assert time.monotonic() < deadline, f"a killed process still holds {lock}"
                time.sleep(0.1)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
    finally:
        os.close(fd)


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, out
    return out


def test_sigkill_mid_phase_then_same_command_resumes_to_identical_results(tmp_path: Path) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for project in (reference, killed):
        copy_project(project)
    _finish(_make(reference, _config(reference)))

    proc = _make(killed, _config(killed))
    log = killed / "results" / "resume" / "logs" / "mnist-sample" / "seed0" / "phase1.log"
    deadline = time.monotonic() + 300
    try:
        while "phase 1 round 3/6" not in (log.read_text() if log.is_file() else ""):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "phase 1 never reached round 3"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: make, Snakemake, the training job
        proc.wait(timeout=30)
    _wait_until_released(killed / ".snakemake" / "equitable-fl.run.lock")
    assert list((killed / ".snakemake" / "locks").glob("*.lock")), "the kill should leave Snakemake's lock"
    ckpt = killed / "results" / "resume" / "mnist-sample" / "seed0" / "phase1" / ".round-checkpoint"
    assert (ckpt / "manifest.json").is_file()

    out = _finish(_make(killed, _config(killed)))
    assert "clearing a Snakemake lock left behind" in out
    assert "phase 1: resuming after round" in log.read_text()
    assert not ckpt.exists()  # removed once the phase's outputs are written
    assert _results(killed) == _results(reference)
