"""How many worker processes a training job forks (``compute.workers``), decided from the setting alone.

It lives with the config, not with the pool (:mod:`equitable_fl.federation.workers`), because the config
checks run it before any job (the memory estimate counts each worker) and must not import the training
code that imports the config.
"""

from __future__ import annotations

import torch

WORKERS_KEY = "compute.workers"


def resolve_workers(setting: str | int, threads: int, device: torch.device) -> int:
    """Worker processes for a training job from ``compute.workers``; 0 = the job's own process.

    ``auto`` uses one worker per thread when the job has more than one thread on a CPU: a fixed rule
    from the benchmark (``benchmarks/engine.py``), not a timing taken at run time, because workers
    train at one thread each and a timing-based choice would make the results depend on the load.
    An explicit ``N`` is checked against the job: ``1`` is the serial engine; more workers than
    threads would oversubscribe the cores the scheduler gave the job, and a GPU runs one process.
    """
    threads = max(1, int(threads))
    if setting == "auto":
        return threads if threads > 1 and device.type == "cpu" else 0
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"{WORKERS_KEY}: {setting!r} is not allowed; use auto or an integer ≥ 1")
    if setting == 1:
        return 0
    if device.type != "cpu":
        raise ValueError(
            f"{WORKERS_KEY}: {setting} worker processes need the CPU, but training runs on {device}; "
            "set compute.workers to auto or 1 (or compute.device to cpu)"
        )
    if setting > threads:
        raise ValueError(
            f"{WORKERS_KEY}: {setting} workers of one thread each need {setting} threads, but the job has "
            f"compute.train_threads {threads}; set compute.workers ≤ {threads} or auto"
        )
    return setting
