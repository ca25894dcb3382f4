"""Without a reachable source, the workflow stops at the fetch step and leaves nothing to trust."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .snakemake_runner import jobs_run, run, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("offline")]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_mirrors_fail_at_fetch_naming_what_to_do(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/mnist/"
    cfg = tiny_config()
    cfg["grid"]["datasets"] = ["mnist"]
    cfg["datasets"] = {"mnist": {"options": {"mirrors": [dead]}, "model": {"arch": "cnn28"}}}
    write_config(tmp_path, cfg)

    proc = run(tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # the fetch job ran and was retried once (fetch.retries defaults to 1); nothing after it started
    ran = [job.rule for job in jobs_run(proc)]
    assert ran.count("fetch_mnist") == 2
    assert set(ran) <= {"fetch_mnist", "clients"}  # clients.json does not need the data
    assert "Error in rule fetch_mnist" in out
    log = (tmp_path / "results/logs/fetch/mnist.log").read_text()
    assert "could not fetch train-images-idx3-ubyte.gz for dataset 'mnist'" in log
    assert dead in log and "connection refused" in log.lower()
    assert "data/manual/mnist/train-images-idx3-ubyte.gz" in log
    # nothing a later run would trust: no marker, no prepared data, no finished download
    assert not (tmp_path / "results/data/mnist/fetched.json").exists()
    assert not (tmp_path / "results/data/mnist/prepared.npz").exists()
    raw = tmp_path / "data/raw/mnist"
    finished = (
        [p for p in raw.rglob("*") if p.is_file() and not p.name.endswith(".part")] if raw.exists() else []
    )
    assert finished == []
