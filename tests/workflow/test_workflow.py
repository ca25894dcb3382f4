"""Real Snakemake runs of the whole pipeline on a tiny config (mnist-sample, 2 pruning rates)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from equitable_fl.mask import Mask

from .snakemake_runner import jobs_run, run, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("workflow")]

CELL = "results/mnist-sample/seed0"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory in which the tiny workflow has run to completion once."""
    workdir = tmp_path_factory.mktemp("run_a")
    write_config(workdir, tiny_config())
    run(workdir)
    return workdir


def _deterministic_files(workdir: Path) -> dict[str, str]:
    """sha256 of every output that must be bit-identical across reruns (all but measured times)."""
    hashes: dict[str, str] = {}
    for path in sorted((workdir / "results").rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if not path.is_file() or "/logs/" in f"/{rel}" or path.name in ("timing.json", "measured.json"):
            continue
        if "/tables/" in rel or "/figures/" in rel:
            continue  # they carry the measured wall-clock column
        if "/mlflow/" in rel:
            continue  # the tracking store: run ids and logging times differ by design
        data = path.read_bytes()
        if path.name == "summary.json":
            summary = json.loads(data)
            summary.pop("measured")
            data = json.dumps(summary, sort_keys=True).encode()
        hashes[rel] = hashlib.sha256(data).hexdigest()
    return hashes


def test_outputs_of_every_step_exist(finished: Path) -> None:
    results = finished / "results"
    for name in ["accuracy_vs_round", "accuracy_vs_sparsity", "model_size", "clients_per_phase"]:
        assert (results / "figures" / f"{name}.png").stat().st_size > 1000
        assert (results / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    cells = (results / "tables" / "cells.csv").read_text().strip().splitlines()
    assert len(cells) == 1 + 2  # header + one row per pruning rate
    assert (results / "tables" / "cells.md").read_text().count("| mnist-sample |") == 2
    # phase 1 and vanilla are shared by both pruning rates; later phases are per rate
    assert (finished / CELL / "phase1" / "rewind.safetensors").is_file()
    assert (finished / CELL / "vanilla" / "metrics.json").is_file()
    for rate in ("0.5", "0.6"):
        for k in (2, 3):
            assert (finished / CELL / f"rate{rate}" / f"phase{k}" / "weights.safetensors").is_file()


def test_final_phase_is_pruned_and_summary_is_consistent(finished: Path) -> None:
    summary = json.loads((finished / CELL / "rate0.5" / "summary.json").read_text())
    mask = Mask.load(finished / CELL / "rate0.5" / "phase3" / "mask.safetensors")
    assert summary["final"]["sparsity"] == pytest.approx(mask.sparsity)
    # two pruning steps at 0.5 (output layer at 0.25): between 70% and 75% of the weights removed
    assert 0.70 < mask.sparsity <= 0.75
    assert [p["phase"] for p in summary["phases"]] == [1, 2, 3]
    assert [p["admitted_tiers"] for p in summary["phases"]] == [[1], [1, 2], [1, 2, 3]]
    history = [p["global_round"] for p in summary["curve"]]
    assert history == list(range(1, 7))
    assert len(summary["vanilla"]["curve"]) == 6


def test_each_training_job_logs_one_line_per_round(finished: Path) -> None:
    log = (finished / "results/logs/mnist-sample/seed0/rate0.6/phase3.log").read_text()
    lines = [line for line in log.splitlines() if "phase 3 round" in line]
    assert len(lines) == 2
    assert "round 2/2 clients" in lines[-1] and "acc " in lines[-1] and "elapsed" in lines[-1]


def test_second_run_has_nothing_to_do(finished: Path) -> None:
    proc = run(finished)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert jobs_run(proc) == []


def test_same_config_and_seed_give_identical_bits(finished: Path, tmp_path: Path) -> None:
    write_config(tmp_path, tiny_config())
    run(tmp_path)
    first, second = _deterministic_files(finished), _deterministic_files(tmp_path)
    assert any(name.endswith("mask.safetensors") for name in first)
    assert any(name.endswith("weights.safetensors") for name in first)
    assert first == second


def test_changing_phase3_rounds_reruns_only_phase3_and_after(finished: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "copy"
    shutil.copytree(finished, workdir, symlinks=True)
    phase1 = workdir / CELL / "phase1" / "weights.safetensors"
    before = phase1.read_bytes()
    cfg = tiny_config()
    cfg["phases"][2]["rounds"] = 3
    write_config(workdir, cfg)

    proc = run(workdir)
    jobs = jobs_run(proc)
    ran = Counter(job.rule for job in jobs)
    assert ran["phase1"] == 0 and ran["prune"] == 0 and ran["init_model"] == 0
    assert ran["partition"] == 0 and ran["prepare"] == 0
    phases = sorted((job.wildcards["rate"], job.wildcards["k"]) for job in jobs if job.rule == "phase")
    assert phases == [("0.5", "3"), ("0.6", "3")]
    assert ran["summarise_cell"] == 2 and ran["tables_and_figures"] == 1
    # vanilla FL trains for the total number of rounds, which changed with phase 3
    assert ran["vanilla"] == 1
    assert phase1.read_bytes() == before
    metrics = json.loads((workdir / CELL / "rate0.5" / "phase3" / "metrics.json").read_text())
    assert metrics["rounds"] == 3 and len(metrics["history"]) == 3


def test_invalid_config_fails_before_any_job(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["grid"]["datasets"] = ["mnist-sample", "no-such-data"]
    cfg["phases"][1]["tiers"] = [1, 5]
    write_config(tmp_path, cfg)
    proc = run(tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "unknown dataset 'no-such-data'" in out
    assert "tier(s) [5] do not exist" in out
    assert not (tmp_path / "results").exists()


def test_schema_rejects_unknown_keys(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["training"]["learning_rate"] = 0.1
    write_config(tmp_path, cfg)
    proc = run(tmp_path, check=False)
    assert proc.returncode != 0
    assert "learning_rate" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
