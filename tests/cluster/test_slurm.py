"""The tiny workflow on a real (single-node) SLURM cluster, through the project's SLURM profile.

``slurm.sh up`` starts munged, slurmctld and slurmd on this machine (loopback, state in a temp dir);
the tiny grid (``tests/workflow/snakemake_runner.tiny_config``, 1 dataset × 2 pruning rates, 2 phases)
then runs to its per-cell summaries twice at the same time: through ``snakemake-executor-plugin-slurm``
with ``workflow/profiles/slurm`` (every job an ``sbatch`` job), and locally as ``tests/parity``'s
reference run. The test checks that

- weights, masks, tickets and metrics (minus measured times) are bit-identical between the two runs
  (``tests/parity/parity.py``'s file selection and digests), and
- every job, the training jobs included, really went through ``sbatch``: each job the plugin reports
  submitting is known to slurmctld under this run's name, with its rule in the comment, COMPLETED on
  node ``localhost``, is in the job-completion log, and left its SLURM log file; no job ran locally.

Needs root and Debian's ``slurm-wlm`` and ``munge``: skipped without them, except under CI=true, where
that is a failure (``.ci/run`` installs them). Every wait is bounded; the cluster is stopped by PID at the
end, also on failure. Job status is polled with ``squeue`` (the profile's ``slurm-status-command``): this
cluster has no accounting database, and the plugin's default ``sacct`` would never see a job finish.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SLURM_SH = REPO / "tests" / "cluster" / "slurm.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
sys.path.insert(0, str(REPO / "tests" / "parity"))

import parity  # noqa: E402
from snakemake_runner import jobs_run, tiny_config, write_config  # noqa: E402  (put on the path by parity)

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

UP_SECONDS = 90  # slurm.sh up: its own waits add up to 80 s at most; ~1.5 s seen
DOWN_SECONDS = 120  # slurm.sh down: its own waits add up to ~75 s at most
# both workflow runs together: a guard against hangs, not a budget. Seen: 2.0-2.5 min for the whole
# test on 2 cores shared with another test run (load ~4), 5 min under load 8
RUN_SECONDS = 600
# First status check this many seconds after a submission (plugin default 40, tuned for big clusters).
# Until a check sees a job finish, the plugin waits 10 s longer each time (INIT, INIT+10, ...), so a
# stage of the DAG costs INIT if its jobs finish within INIT, else 2 INIT + 10. A job here is two
# Snakemake start-ups plus the script: 7-9 s (light) and 15-20 s (training) on idle cores, 10-16 s
# each on 2 cores shared with another test run. 15 s costs ~140 s for the 6 stages in both cases
# (10 s: 100 s idle, 180 s busy).
INIT_SECONDS = 15
# The tiny grid with two phases instead of three: every rule still runs (phase k >= 2 is one rule), and
# each phase more would add two sequential SLURM round trips (prune, phase: ~40 s) to the test.
CONFIG = tiny_config(phases=[{"rounds": 2}, {"rounds": 2}])
TRAINING_RULES = {"phase1": 1, "phase": 2, "vanilla": 1}
_SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run installs slurm-wlm and munge)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running single-node SLURM cluster; its directory holds the logs and the job-completion log."""
    check = subprocess.run(["bash", str(SLURM_SH), "check"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        _unavailable(check.stderr.strip() or f"slurm.sh check exited {check.returncode}")
    if find_spec("snakemake_executor_plugin_slurm") is None:
        _unavailable(
            "snakemake-executor-plugin-slurm is not installed: "
            ".venv/bin/pip install -c requirements/lock.txt -e '.[dev]'"
        )
    directory = tmp_path_factory.mktemp("slurm")
    try:
        up = subprocess.run(
            ["bash", str(SLURM_SH), "up", str(directory)], capture_output=True, text=True, timeout=UP_SECONDS
        )
        assert up.returncode == 0, f"slurm.sh up failed:\n{up.stdout}\n{up.stderr}"
        yield directory
    finally:
        down = subprocess.run(
            ["bash", str(SLURM_SH), "down", str(directory)],
            capture_output=True,
            text=True,
            timeout=DOWN_SECONDS,
        )
        assert down.returncode == 0, f"slurm.sh down failed:\n{down.stdout}\n{down.stderr}"


@dataclass
class Run:
    """A Snakemake run in its own process group, its output in a file, killed as a group if late."""

    name: str
    workdir: Path
    cmd: list[str]
    niceness: int = 0

    def start(self) -> None:
        self.log = self.workdir / f"{self.name}.out"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.workdir,
                env={**parity.snakemake_env(REPO), "PYTHONHASHSEED": "0"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=(lambda: os.nice(self.niceness)) if self.niceness else None,
            )

    def wait(self, deadline: float) -> str:
        try:
            self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # SIGTERM lets the SLURM executor scancel its jobs; SIGKILL if that takes over 20 s
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            pytest.fail(f"{self.name} run did not finish in {RUN_SECONDS} s:\n{self.output()[-4000:]}")
        output = self.output()
        assert self.proc.returncode == 0, f"{self.name} run failed:\n{output[-6000:]}"
        return output

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass(frozen=True)
class SlurmJob:
    name: str
    comment: str
    state: str
    node: str
    cpus: int
    mem_mb: int
    minutes: int


def _minutes(limit: str) -> int:
    """SLURM's time limit ``[D-][H:]M:S`` in minutes."""
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 1440 + parts[0] * 60 + parts[1] + (parts[2] > 0)


def _slurm_jobs() -> dict[str, SlurmJob]:
    """Every job slurmctld still knows (finished ones stay listed for MinJobAge), by job id."""
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i|%j|%k|%T|%N|%C|%m|%l"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        if line:
            i, name, comment, state, node, cpus, mem, limit = line.split("|")
            assert mem.endswith("M"), line
            jobs[i] = SlurmJob(name, comment, state, node, int(cpus), int(mem[:-1]), _minutes(limit))
    return jobs


def _requested(rule: str, key: str) -> object:
    """What the SLURM profile asks for ``rule``: its set-resources entry, else the default."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    return profile["set-resources"].get(rule, {}).get(key, profile["default-resources"][key])


def test_tiny_grid_on_slurm_equals_local_run(cluster: Path, tmp_path: Path) -> None:
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_dir.mkdir()
    slurm_dir.mkdir()
    local_cfg = write_config(local_dir, CONFIG)
    slurm_cfg = write_config(slurm_dir, CONFIG)

    # the reference run yields the CPU to the SLURM jobs (nice 19) and fills the gaps between them:
    # niceness changes no result, and the SLURM run's jobs wait for status checks half of the time
    local = Run("local", local_dir, parity.grid_command(REPO, local_cfg), niceness=19)
    slurm = Run(
        "slurm",
        slurm_dir,
        [
            str(Path(sys.executable).with_name("snakemake")),
            "-s", str(REPO / "Snakefile"),
            "--workflow-profile", str(PROFILE),
            "--configfile", str(slurm_cfg),
            "--slurm-init-seconds-before-status-checks", str(INIT_SECONDS),
            "--slurm-keep-successful-logs",
            *parity.TARGETS,
        ],
    )  # fmt: skip
    deadline = time.monotonic() + RUN_SECONDS
    slurm.start()
    local.start()
    output = slurm.wait(deadline)
    local.wait(deadline)

    # (1) the same bits as the local run: weights, masks, tickets, metrics and summaries minus times
    local_hashes = parity.hash_results(local_dir / "results")
    slurm_hashes = parity.hash_results(slurm_dir / "results")
    cell = "mnist-sample/seed0"
    for path in [
        f"{cell}/init/weights.safetensors",
        f"{cell}/phase1/weights.safetensors",
        f"{cell}/phase1/mask.safetensors",
        f"{cell}/vanilla/metrics.json",
        f"{cell}/rate0.5/prune1/ticket.safetensors",
        f"{cell}/rate0.6/phase2/mask.safetensors",
        f"{cell}/rate0.6/phase2/metrics.json",
        f"{cell}/rate0.5/summary.json",
    ]:
        assert path in local_hashes, f"the local run did not write {path}"
    assert parity.compare(local_hashes, slurm_hashes) == []

    # (2) every job went through sbatch, and SLURM ran it to completion
    submitted = {slurm_id: log for _, slurm_id, log in _SUBMITTED.findall(output)}
    announced = jobs_run(subprocess.CompletedProcess([], 0, output, ""))
    # 12 jobs: prepare, clients, partition, init_model, phase1, vanilla, 2 × (prune, phase, summary)
    assert len(submitted) == len(announced) >= 12, output[-4000:]
    assert "localrule " not in output  # no job of these targets may run on the submit host
    rules = Counter(re.search(r"/rule_(\w+)/", log).group(1) for log in submitted.values())
    assert {rule: rules[rule] for rule in TRAINING_RULES} == TRAINING_RULES, rules

    known = _slurm_jobs()
    completions = (cluster / "log" / "jobcomp.log").read_text()
    run_names = set()
    for slurm_id, log in submitted.items():
        assert slurm_id in known, f"SLURM job {slurm_id} unknown to slurmctld: {known}"
        job = known[slurm_id]
        rule = re.search(r"/rule_(\w+)/", log).group(1)
        assert job.comment.startswith(f"rule_{rule}_wildcards_"), (slurm_id, job)
        assert (job.state, job.node) == ("COMPLETED", "localhost"), (slurm_id, job)
        assert re.search(rf"^JobId={slurm_id} .*JobState=COMPLETED .*NodeList=localhost ", completions, re.M)
        assert "Finished jobid" in Path(log).read_text(errors="replace"), f"SLURM log of {slurm_id}: {log}"
        run_names.add(job.name)
        # sbatch got the profile's resources: its time limit, its memory, one CPU per train thread
        assert job.minutes == _requested(rule, "runtime"), (rule, job)
        mem = _requested(rule, "mem_mb")
        assert (job.mem_mb == mem) if isinstance(mem, int) else (job.mem_mb >= 1500), (rule, job)
        assert job.cpus == CONFIG["compute"]["train_threads"] == 1, (rule, job)
    assert len(run_names) == 1  # one workflow run: the plugin names every job after its run id
