"""Worker processes that train a round's cohort side by side, one intra-op thread each.

Why: a small CNN at batch 20–32 keeps one core busy but not two, so one process with two intra-op
threads wastes much of the second core on synchronisation; two processes that each train whole clients
on one thread do not. Measured, same clients, side by side: 1.10–1.18× on an AMD Zen 3
(``shared/notes/performance.md``); see the README ("The engine's own speed") for this Xeon.

How:

- the pool *forks* its workers when a phase starts: the dataset tensors, the model, the mask and the
  client shards are inherited copy-on-write and never written, so no worker copies the dataset and
  nothing is pickled or re-imported;
- every round the parent writes the global weights into one shared-memory state that all workers read
  (the broadcast), and puts the round's tasks on one queue that idle workers pull from;
- each worker trains a client with :func:`~equitable_fl.federation.client.train_client` and sends the
  update back (its tensors travel through shared memory, torch.multiprocessing's reduction); the
  parent puts the updates back in cohort order and the strategy aggregates them there.

A client's training depends only on the global weights and its task seed, and each worker runs one
intra-op thread, so the updates are bit-identical to the serial engine's at one thread whichever worker
trains which client, and the aggregate (summed in cohort order) is too. Workers are stopped when the
phase ends or fails (a stop message, then SIGTERM, then SIGKILL) and exit on their own if the parent
dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
import torch.multiprocessing as mp
from torch import nn

from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.client import ClientTask, ClientUpdate, MaskedParams, State, train_client
from equitable_fl.federation.execution import Execution
from equitable_fl.progress import LOGGER_NAME

_POLL_SECONDS = 1.0  # how often a waiting worker checks its parent, and the parent its workers
_STOP_SECONDS = 5.0  # how long a worker may take to leave after the stop message
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerError(RuntimeError):
    """A worker process failed or died; the message carries its traceback or exit code."""


@dataclass(frozen=True)
class _Failure:
    """What a worker sends back instead of an update when training a client raised."""

    pid: int
    text: str


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs, inherited through fork (never pickled)."""

    model: nn.Module
    masked: MaskedParams
    data: TensorData
    client_indices: Sequence[torch.Tensor]
    execution: Execution
    shared_state: State
    parent: int


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its parent dies (best effort; polling covers the rest)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _serve(job: _Job, tasks: Any, results: Any) -> None:
    """A worker's loop: take a task, train the client from the shared state, send the update back."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the pool
    torch.set_num_threads(1)
    while True:
        try:
            message = tasks.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != job.parent:  # the parent died without stopping us
                return
            continue
        if message is None:
            return
        position, task = message
        try:
            update: ClientUpdate | _Failure = train_client(
                job.model,
                job.shared_state,
                job.masked,
                job.data,
                job.client_indices[task.client],
                task,
                job.execution,
            )
        except Exception:
            update = _Failure(os.getpid(), traceback.format_exc())
        results.put((position, update))


class WorkerPool:
    """``workers`` forked processes that train clients; use as a context manager around a phase."""

    def __init__(
        self,
        workers: int,
        model: nn.Module,
        masked: MaskedParams,
        data: TensorData,
        client_indices: Sequence[torch.Tensor],
        template: Mapping[str, torch.Tensor],
        execution: Execution,
    ) -> None:
        if workers < 2:
            raise ValueError(f"a worker pool needs at least 2 workers, got {workers}")
        self.workers = workers
        shared = {k: torch.empty_like(v, device="cpu").share_memory_() for k, v in template.items()}
        self._job = _Job(model, masked, data, client_indices, execution, shared, os.getpid())
        self._ctx = mp.get_context("fork")
        self._tasks: Any = None
        self._results: Any = None
        self._procs: list[Any] = []

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(int(p.pid) for p in self._procs)

    def __enter__(self) -> WorkerPool:
        self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
        try:
            for i in range(self.workers):
                proc = self._ctx.Process(
                    target=_serve,
                    args=(self._job, self._tasks, self._results),
                    name=f"equitable-fl-worker-{i}",
                    daemon=True,
                )
                proc.start()
                self._procs.append(proc)
        except BaseException:
            self.close(graceful=False)
            raise
        logging.getLogger(LOGGER_NAME).info(
            "training clients in %d worker processes × 1 thread (pids %s)",
            self.workers,
            " ".join(map(str, self.pids)),
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # after an error the queue may still hold tasks: stop at once instead of letting them run
        self.close(graceful=kind is None)

    def train(self, state: Mapping[str, torch.Tensor], tasks: Sequence[ClientTask]) -> list[ClientUpdate]:
        """Every task trained from ``state``; the updates in the order of ``tasks``."""
        if not self._procs:
            raise RuntimeError("the worker pool is not running: use it inside a with block")
        with torch.no_grad():
            for k, v in self._job.shared_state.items():
                v.copy_(state[k])
        for position, task in enumerate(tasks):
            self._tasks.put((position, task))
        updates: list[ClientUpdate | None] = [None] * len(tasks)
        for _ in tasks:
            position, update = self._next_result()
            if isinstance(update, _Failure):
                task = tasks[position]
                raise WorkerError(
                    f"worker process {update.pid} failed training client {task.client} in round "
                    f"{task.round}:\n{update.text}"
                )
            updates[position] = update
        return [u for u in updates if u is not None]

    def _next_result(self) -> tuple[int, ClientUpdate | _Failure]:
        while True:
            try:
                return self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise WorkerError(
                        f"worker process {dead[0].pid} exited with code {dead[0].exitcode} while training "
                        "(a negative code is the signal that ended it: -9 is often the kernel's "
                        "out-of-memory killer; lower compute.workers or the batch size)"
                    ) from None

    def close(self, graceful: bool = True) -> None:
        """Stop every worker and reap it: a stop message (graceful), then SIGTERM, then SIGKILL."""
        procs, self._procs = self._procs, []
        if graceful and self._tasks is not None:
            for _ in procs:
                self._tasks.put(None)
        for proc in procs:
            if graceful:
                proc.join(_STOP_SECONDS)
            if proc.is_alive():
                proc.terminate()
                proc.join(_STOP_SECONDS)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for q in (self._tasks, self._results):
            if q is not None:
                q.cancel_join_thread()
                q.close()
        self._tasks = self._results = None
