"""Running the real workflow from tests, and reading back which jobs Snakemake ran."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

_RULE = re.compile(r"^(?:local)?rule (\w+):\s*$")
_WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")


@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: dict[str, str]


def tiny_config(results_dir: str = "results", **overrides: Any) -> dict[str, Any]:
    """A grid of 1 dataset × 2 pruning rates × 1 seed that trains in seconds."""
    cfg: dict[str, Any] = {
        "results_dir": results_dir,
        "grid": {"datasets": ["mnist-sample"], "pruning_rates": [0.5, 0.6], "seeds": [0]},
        "datasets": {
            "mnist-sample": {
                "options": {"test_size": 500, "split_seed": 0},
                "model": {"arch": "cnn28", "channels": [4, 8], "hidden": 16},
            }
        },
        "clients": {
            "count": 6,
            "partition": {"method": "iid"},
            "resources": {"distribution": "uniform", "low": 0.25, "high": 1.6, "jitter": 0.15},
            "tiers": {"count": 3, "method": "quantile"},
        },
        "training": {"local_epochs": 1, "batch_size": 64, "lr": 0.05, "momentum": 0.9},
        "phases": [{"rounds": 2}, {"rounds": 2}, {"rounds": 2}],
        "pruning": {"scope": "layerwise", "output_rate_factor": 0.5, "rewind_round": 0},
        "eligibility": {"check_budget": True},
        "vanilla": {"participation": "all"},
        "compute": {"train_threads": 1},
    }
    cfg.update(overrides)
    return cfg


def write_config(workdir: Path, cfg: dict[str, Any]) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def copy_project(dest: Path) -> None:
    """The project's files as a clone would have them (tracked + new, not ignored), tests left out."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file() and not rel.startswith("tests/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run Snakemake on the repository's workflow with ``workdir`` as working directory."""
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONHASHSEED": "0",
    }
    cmd = [
        str(SNAKEMAKE),
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--workflow-profile", str(REPO / "workflow" / "profiles" / "default"),
        "--configfile", str(workdir / "config.yaml"),
        "--cores", "2",
        *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def jobs_run(proc: subprocess.CompletedProcess[str]) -> list[Job]:
    """The jobs Snakemake announced (rule name and wildcards), from its console output."""
    jobs: list[Job] = []
    rule: str | None = None
    wildcards: dict[str, str] = {}
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        m = _RULE.match(line)
        if m:
            if rule is not None:
                jobs.append(Job(rule, wildcards))
            rule, wildcards = m.group(1), {}
            continue
        w = _WILDCARDS.match(line)
        if w and rule is not None:
            wildcards = dict(kv.split("=", 1) for kv in w.group(1).split(", "))
    if rule is not None:
        jobs.append(Job(rule, wildcards))
    return jobs
