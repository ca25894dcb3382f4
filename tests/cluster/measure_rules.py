"""Measure what each rule's jobs need (wall time, CPU time, peak memory): the numbers behind the SLURM
profile's ``set-resources`` (workflow/profiles/slurm/config.yaml).

Runs the workflow locally, one job at a time (``--cores 1``, so jobs do not slow each other down and
every sample belongs to one job), and samples the job's process tree every 50 ms with psutil: peak RSS
of the job's processes summed, and their CPU time. A SLURM job also holds the job-step Snakemake process
that runs the job; its RSS is printed separately (``snakemake_rss_mb``, the local Snakemake's own peak,
an upper bound for a one-job job step) and is part of ``need_mb``.

Usage (from the repository root, with the project's venv):

    .venv/bin/python tests/cluster/measure_rules.py                       # the tiny test grid
    .venv/bin/python tests/cluster/measure_rules.py --configfile config/demo.yaml --workdir /tmp/m

Prints one line per rule: jobs, max wall seconds, max CPU seconds, max peak RSS of the job (MB) and
need_mb = that + the Snakemake process.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "workflow"))

from snakemake_runner import tiny_config, write_config  # noqa: E402

_START = re.compile(r"^(?:local)?rule (\w+):\s*$")
_FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w+)\)")


class Sampler:
    """Follows Snakemake's console output and samples the current job's process tree."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.main = psutil.Process(proc.pid)
        self.rule: str | None = None
        self.started = 0.0
        self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.main_rss = 0
        self.jobs: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
        self.lock = threading.Lock()
        self.lines: list[str] = []

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            start, finished = _START.match(line), _FINISHED.match(line)
            with self.lock:
                if start:
                    self.rule, self.started, self.peak_rss, self.cpu = start.group(1), time.monotonic(), 0, {}
                elif finished and self.rule is not None:
                    wall = time.monotonic() - self.started
                    self.jobs[self.rule].append((wall, sum(self.cpu.values()), self.peak_rss))
                    self.rule = None

    def sample(self) -> None:
        while self.proc.poll() is None:
            try:
                children = self.main.children(recursive=True)
                self.main_rss = max(self.main_rss, self.main.memory_info().rss)
            except psutil.Error:
                break
            rss, cpu = 0, {}
            for child in children:
                try:
                    rss += child.memory_info().rss
                    t = child.cpu_times()
                    cpu[child.pid] = t.user + t.system + t.children_user + t.children_system
                except psutil.Error:
                    continue
            with self.lock:
                if self.rule is not None:
                    self.peak_rss = max(self.peak_rss, rss)
                    for pid, seconds in cpu.items():
                        self.cpu[pid] = max(self.cpu.get(pid, 0.0), seconds)
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", type=Path, help="config to run (default: the tiny test grid)")
    parser.add_argument("--workdir", type=Path, help="working directory (default: a temporary one)")
    parser.add_argument("targets", nargs="*", help="Snakemake targets (default: the config's all)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="measure-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = args.configfile.resolve() if args.configfile else write_config(workdir, tiny_config())
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MLFLOW_DISABLE_TELEMETRY": "true"}
        cmd = [
            str(Path(sys.executable).with_name("snakemake")),
            "-s", str(REPO / "Snakefile"),
            "--workflow-profile", str(REPO / "workflow" / "profiles" / "default"),
            "--configfile", str(cfg),
            "--cores", "1",
            *args.targets,
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        sampler = Sampler(proc)
        reader = threading.Thread(target=sampler.read, daemon=True)
        reader.start()
        sampler.sample()
        proc.wait()
        reader.join(timeout=10)
        if proc.returncode != 0:
            print("".join(sampler.lines[-40:]), file=sys.stderr)
            return proc.returncode

    mb = 1024 * 1024
    main_mb = sampler.main_rss / mb
    print(f"cpu: {psutil.cpu_count()} cores; snakemake_rss_mb {main_mb:.0f}")
    print(f"{'rule':<20} {'jobs':>4} {'wall_s':>7} {'cpu_s':>7} {'rss_mb':>7} {'need_mb':>8}")
    for rule, jobs in sorted(sampler.jobs.items()):
        wall = max(j[0] for j in jobs)
        cpu = max(j[1] for j in jobs)
        rss = max(j[2] for j in jobs) / mb
        print(f"{rule:<20} {len(jobs):>4} {wall:>7.1f} {cpu:>7.1f} {rss:>7.0f} {rss + main_mb:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
