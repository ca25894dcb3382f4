"""Run the workflow so that a killed run resumes with the same command: ``python -m equitable_fl.run``.

Snakemake locks a working directory while it runs and leaves the lock behind when it is killed
(SIGKILL, a lost SSH session, an OOM kill); the next run then stops with a LockException until someone
runs ``--unlock``. Unlocking blindly is unsafe when another run is alive. This wrapper holds an exclusive
``flock`` on ``.snakemake/equitable-fl.run.lock`` for the run's whole lifetime (kept across ``exec`` into
Snakemake, released by the kernel however the run ends), so:

- if it cannot take the lock, another run of this folder is alive: it says so and exits (75);
- if it can, no run of this folder is alive, so a Snakemake lock left behind is stale: it clears it,
  logs that, and starts Snakemake with the given arguments; ``rerun-incomplete`` (workflow profile)
  redoes the jobs that were killed, and training jobs resume from their round checkpoints.

Runs started with ``snakemake`` directly do not take this lock; mixing both in one folder is not safe.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

LOCK_NAME = "equitable-fl.run.lock"
EX_TEMPFAIL = 75


def snakemake_binary() -> str:
    return str(Path(sys.executable).with_name("snakemake"))


def stale_locks(workdir: Path) -> list[Path]:
    return sorted((workdir / ".snakemake" / "locks").glob("*.lock"))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    workdir = Path.cwd()
    (workdir / ".snakemake").mkdir(exist_ok=True)
    lock_path = workdir / ".snakemake" / LOCK_NAME
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lock_path.read_text(encoding="utf-8").strip() or "unknown"
        print(
            f"another run of this folder is in progress (pid {holder}); wait for it to finish or stop it, "
            "then run the same command again",
            file=sys.stderr,
        )
        return EX_TEMPFAIL
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    snakemake = snakemake_binary()
    if stale_locks(workdir):
        print(
            "clearing a Snakemake lock left behind by a run that was killed (no run of this folder is alive)"
        )
        unlock = [snakemake, *args, "--unlock"]
        done = subprocess.run(unlock, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
    os.set_inheritable(fd, True)  # Snakemake inherits the lock: it is held until the run ends
    os.execv(snakemake, [snakemake, *args])
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
