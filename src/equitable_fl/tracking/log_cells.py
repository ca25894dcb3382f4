"""Logging grid cells to MLflow exactly once: the body of the workflow's serialised ``track`` rule.

Why one serialised step: SQLite allows one writer, and parallel training jobs that each open the store
race on schema creation and hit ``database is locked``. The workflow therefore logs nothing while it
trains; a single job (``resources: mlflow_db=1``, one process) logs every finished cell afterwards, under
a file lock so that two Snakemake invocations on the same results folder cannot interleave either.

Why it is idempotent: each parent run carries a deterministic ``run_key`` (e.g.
``mnist/seed0/rate0.5/equitable-fl``) and the ``content_hash`` of everything it logs. Before writing, the
experiment is searched once; a cell whose single finished parent has the same hash is kept as it is, any
other state (changed outputs, a duplicate, a run left half-written by a crash or an unreachable store) is
deleted (parent and children) and logged anew. The hash tag and the FINISHED status are written last, so a
cell only counts as logged when all of it is.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from equitable_fl import io
from equitable_fl.progress import LOGGER_NAME
from equitable_fl.tracking import relocate, store
from equitable_fl.tracking.cells import ROLE_CELL, ROLE_PHASE, CellRecord, RunRecord, build_cells

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

HASH_TAG = "content_hash"
PARENT_TAG = "mlflow.parentRunId"
VERSION_PACKAGES = ("equitable-fl", "torch", "torchvision", "numpy", "pandas", "mlflow", "snakemake")
LOCK_TIMEOUT_S = 1800.0

# MLflow's limits per log_batch call: 1000 metrics, 100 params, 100 tags.
MAX_METRICS, MAX_PARAMS_TAGS = 1000, 100

log = logging.getLogger(LOGGER_NAME)


@dataclass
class Logged:
    """Where one cell ended up, and whether this call wrote it (``logged``) or found it current (``kept``)."""

    cell: CellRecord
    content_hash: str
    parent_run_id: str
    child_run_ids: dict[str, str]
    action: str

    def as_json(self) -> dict[str, Any]:
        return {
            **self.cell.describe(),
            "content_hash": self.content_hash,
            "parent_run_id": self.parent_run_id,
            "child_run_ids": self.child_run_ids,
        }


# ----------------------------------------------------------------------------------------------------
# Context tags: describe the logging environment, so they are not part of the content hash


def git_state(source_dir: str | os.PathLike[str] | None) -> dict[str, str]:
    """Commit of the workflow's repository and whether tracked files differ from it ("unknown" outside git).

    ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from taking the index lock, so logging never disturbs
    someone working in the same checkout.
    """
    if source_dir is None:
        return {"git_commit": "unknown"}
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(source_dir), *args], capture_output=True, text=True, env=env, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"git_commit": "unknown"}
    status = git("status", "--porcelain", "--untracked-files=no")
    tags = {"git_commit": commit, "mlflow.source.git.commit": commit}
    if status is not None:
        tags["git_dirty"] = "true" if status else "false"
    return tags


def version_tags() -> dict[str, str]:
    tags = {"version.python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            tags[f"version.{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            tags[f"version.{name}"] = "not installed"
    return tags


# ----------------------------------------------------------------------------------------------------
# Reading what the experiment already holds


def existing_runs(client: MlflowClient, experiment_id: str) -> dict[str, list[Run]]:
    """Active runs of the experiment by ``cell_key`` tag (parents and children); other runs are ignored."""
    by_cell: dict[str, list[Run]] = defaultdict(list)
    token: str | None = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        for run in page:
            key = run.data.tags.get("cell_key")
            if key:
                by_cell[key].append(run)
        token = page.token
        if not token:
            return by_cell


def current_runs(runs: Sequence[Run], cell: CellRecord, digest: str) -> tuple[Run, list[Run]] | None:
    """The (parent, children) logged for exactly this content, or None if the cell must be relogged."""
    parents = [r for r in runs if r.data.tags.get("role") == ROLE_CELL]
    if len(parents) != 1:
        return None
    parent = parents[0]
    children = [r for r in runs if r is not parent]
    ok = (
        parent.info.status == "FINISHED"
        and parent.data.tags.get(HASH_TAG) == digest
        and len(children) == len(cell.children)
        and all(
            c.info.status == "FINISHED"
            and c.data.tags.get(PARENT_TAG) == parent.info.run_id
            and c.data.tags.get("role") == ROLE_PHASE
            for c in children
        )
    )
    return (parent, children) if ok else None


# ----------------------------------------------------------------------------------------------------
# Writing


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log_record(client: MlflowClient, run_id: str, record: RunRecord) -> None:
    """Params, tags, final metrics, per-round series and artifacts of one run, in as few calls as allowed."""
    from mlflow.entities import Metric, Param, RunTag

    now = record.end_ms if record.end_ms is not None else int(time.time() * 1000)
    params = [Param(k, v) for k, v in sorted(record.params.items())]
    tags = [RunTag(k, v) for k, v in sorted(record.tags.items())]
    metrics = [Metric(k, v, now, record.metrics_step) for k, v in sorted(record.metrics.items())]
    metrics += [Metric(k, v, now, step) for k, points in sorted(record.series.items()) for step, v in points]
    for chunk in _chunks(params, MAX_PARAMS_TAGS):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(tags, MAX_PARAMS_TAGS):
        client.log_batch(run_id, tags=chunk)
    for chunk in _chunks(metrics, MAX_METRICS):
        client.log_batch(run_id, metrics=chunk)
    for path, folder in record.artifacts:
        client.log_artifact(run_id, path, folder or None)
    for name, text in sorted(record.texts.items()):
        client.log_text(run_id, text, name)


def log_cell(
    client: MlflowClient, experiment_id: str, cell: CellRecord, digest: str, context: Mapping[str, str]
) -> Logged:
    """Write one cell: parent first, then each phase as a child, then the hash and FINISHED on the parent."""
    parent = client.create_run(
        experiment_id, start_time=cell.parent.start_ms, run_name=cell.parent.name, tags={"cell_key": cell.key}
    )
    parent_id = parent.info.run_id
    _log_record(client, parent_id, cell.parent)
    client.log_batch(parent_id, tags=_tags(context))
    children: dict[str, str] = {}
    for child in cell.children:
        run = client.create_run(
            experiment_id,
            start_time=child.start_ms,
            run_name=child.name,
            tags={"cell_key": cell.key, PARENT_TAG: parent_id, HASH_TAG: digest},
        )
        _log_record(client, run.info.run_id, child)
        client.log_batch(run.info.run_id, tags=_tags(context))
        client.set_terminated(run.info.run_id, "FINISHED", end_time=child.end_ms)
        children[child.tags.get("phase", child.name)] = run.info.run_id
    client.set_tag(parent_id, HASH_TAG, digest)
    client.set_terminated(parent_id, "FINISHED", end_time=cell.parent.end_ms)
    return Logged(cell, digest, parent_id, children, "logged")


def _tags(values: Mapping[str, str]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(k, v) for k, v in sorted(values.items())]


def sync_cells(
    client: MlflowClient, experiment_id: str, cells: Sequence[CellRecord], context: Mapping[str, str]
) -> list[Logged]:
    """Make the experiment hold each cell exactly once with its current content; return where each is."""
    runs = existing_runs(client, experiment_id)
    results: list[Logged] = []
    for cell in cells:
        digest = cell.content_hash()
        found = current_runs(runs.get(cell.key, []), cell, digest)
        if found is not None:
            parent, children = found
            ids = {c.data.tags.get("phase", c.info.run_name): c.info.run_id for c in children}
            results.append(Logged(cell, digest, parent.info.run_id, ids, "kept"))
            log.info("kept     %s (run %s, unchanged)", cell.key, parent.info.run_id)
            continue
        stale = runs.get(cell.key, [])
        for run in stale:
            client.delete_run(run.info.run_id)
        logged = log_cell(client, experiment_id, cell, digest, context)
        if stale:
            logged.action = "replaced"
        results.append(logged)
        log.info(
            "%-8s %s (run %s, %d phase runs; %d old runs deleted)",
            logged.action,
            cell.key,
            logged.parent_run_id,
            len(logged.child_run_ids),
            len(stale),
        )
    others = sorted(set(runs) - {c.key for c in cells})
    if others:
        log.info("left as they are: %d cells in the experiment that this config does not list", len(others))
    return results


# ----------------------------------------------------------------------------------------------------
# The step


def track(
    *,
    cells: Sequence[Mapping[str, Any]],
    results_dir: str,
    source_dir: str | None,
    out_logged: str,
) -> list[Logged]:
    """Log every cell of ``cells`` (file specs from the workflow) and write ``out_logged`` listing the runs.

    Result files are read before the store is touched, so a missing or broken file fails without a
    half-logged cell, and a store that cannot be reached fails with :class:`store.TrackingUnavailable`
    whose message says that training outputs are intact and that rerunning snakemake logs them.
    """
    import requests
    from mlflow.exceptions import MlflowException

    records = build_cells(cells)
    target = store.resolve(results_dir)
    log.info("tracking %d cells to %s, experiment %r", len(records), target.display_uri, target.experiment)
    context = {**git_state(source_dir), **version_tags()}
    target.lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target.lock_path), timeout=LOCK_TIMEOUT_S)
    with lock:
        stale = relocate.check(target)
        if stale is not None:
            relocate.rebuild(target, stale)
        client = store.open_client(target, results_dir)
        try:
            experiment_id = store.ensure_experiment(client, target)
            logged = sync_cells(client, experiment_id, records, context)
        except (MlflowException, OSError, requests.RequestException) as exc:
            raise store.TrackingUnavailable(
                store.unavailable_message(target, exc, results_dir)
                + " Runs of a cell that was being written are replaced on that rerun."
            ) from exc
    counts = {a: sum(r.action == a for r in logged) for a in ("logged", "replaced", "kept")}
    log.info("done: %s", ", ".join(f"{n} {a}" for a, n in counts.items()))
    runs_url = store.runs_url(target, experiment_id)
    if target.default_store:
        log.info(
            "runs table: `mlflow ui --backend-store-uri %s --host 127.0.0.1 --port 5000`, then open %s",
            target.uri,
            runs_url,
        )
    else:
        log.info("runs table: %s", runs_url)
    io.write_json(
        out_logged,
        {
            "tracking_uri": target.display_uri,
            "experiment": target.experiment,
            "experiment_id": experiment_id,
            "runs_url": runs_url,
            "rebuilt": stale.as_json() if stale is not None else None,
            "cells": sorted((r.as_json() for r in logged), key=lambda c: c["cell_key"]),
        },
    )
    return logged
