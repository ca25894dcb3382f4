"""A store that travelled with its results folder (copied, moved, ``dvc pull``-ed): noticed and rebuilt.

MLflow records an experiment's artifact root, and every run's artifact URI, as absolute ``file://`` paths.
A results folder copied or pulled to another place brings ``mlflow/mlflow.db`` along, but the runs in it
still point at the old folder: their artifacts are missing in the UI (or, worse, new ones are written
into the other folder). The store is a view of the result files, so the fix is to rebuild it: the
``track`` step deletes the workflow's own store (``mlflow.db`` and ``artifacts/`` under
``<results_dir>/mlflow``) and logs every cell again, with a log line saying why.

"Stale" means one of two things, read from the SQLite file directly (no MLflow import, so the Snakefile
can ask while it parses, and no MLflow connection is open on a file about to be deleted):

- the experiment's artifact root is not this results folder's ``mlflow/artifacts`` (copied or moved);
- it is, but that folder does not exist while the experiment has runs (artifacts deleted or not pulled).

Only the workflow's default store is rebuilt. A database named by ``MLFLOW_TRACKING_URI`` may hold other
people's experiments, so there the step only warns (:func:`store.ensure_experiment`).

A stale store also needs ``track`` to run at all, although its output ``logged.json`` looks up to date
(and a pulled folder has no Snakemake metadata whose params could differ): while the store is stale, the
workflow's default target and ``track`` get one more input, :func:`flag_path`, made by a rule of its own.
Snakemake then makes the flag and reruns ``track`` after it. The flag is named after the stale pair of
locations, so every relocation has a new one; the few bytes it holds record what was rebuilt and why.
``track`` keeps every flag of its folder as an input, also once the store is current again, so that its
set of inputs does not change after the rebuild (Snakemake's ``input`` trigger would rerun it once more).
(Deleting it, or a ``temp()`` flag, does not work: the target checks its inputs after ``track``, and a
missing ``temp()`` file is not remade while its consumer's output is current.)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from equitable_fl import io
from equitable_fl.progress import LOGGER_NAME
from equitable_fl.tracking import store

FLAG_NAME = "moved-{pair}.json"
_DB_SUFFIXES = ("", "-journal", "-wal", "-shm")

log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class Stale:
    """Why the store must be rebuilt: where its artifacts are recorded, where they belong, what is wrong."""

    recorded: str
    expected: str
    reason: str

    @property
    def pair(self) -> str:
        """12 hex digits naming this relocation (recorded → expected), for the flag file."""
        return hashlib.sha256(f"{self.recorded}\n{self.expected}".encode()).hexdigest()[:12]

    def as_json(self) -> dict[str, str]:
        return {
            "recorded_artifact_root": self.recorded,
            "artifact_root": self.expected,
            "reason": self.reason,
        }


def flag_path(results_dir: str | os.PathLike[str], pair: str = "{pair}") -> str:
    """``<results_dir>/mlflow/moved-<pair>.json`` (the rule's pattern with the default ``{pair}``)."""
    return (store.store_dir(results_dir) / FLAG_NAME.format(pair=pair)).as_posix()


def flags(results_dir: str | os.PathLike[str], *, earlier: bool = False) -> list[str]:
    """The flag the workflow's target needs while the store is stale (none otherwise); with ``earlier``,
    also every flag already in the folder (``track``'s inputs)."""
    found = check_results(results_dir)
    current = [] if found is None else [flag_path(results_dir, found.pair)]
    if not earlier:
        return current
    existing = sorted(p.as_posix() for p in store.store_dir(results_dir).glob(FLAG_NAME.format(pair="*")))
    return sorted({*existing, *current})


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return Path(uri) if not parts.scheme else None


def check(target: store.Target) -> Stale | None:
    """Whether the workflow's own store must be rebuilt; None if it is fine, absent, or not ours."""
    db = store.sqlite_path(target.uri)
    if not target.default_store or db is None or target.artifact_location is None or not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            row = con.execute(
                "SELECT experiment_id, artifact_location FROM experiments WHERE name = ?",
                (target.experiment,),
            ).fetchone()
            runs = 0
            if row is not None:
                runs = con.execute("SELECT count(*) FROM runs WHERE experiment_id = ?", (row[0],)).fetchone()[
                    0
                ]
        finally:
            con.close()
    except sqlite3.Error:
        return None  # not a store this code can read: MLflow itself will say what is wrong with it
    if row is None or not row[1]:
        return None
    recorded, expected = str(row[1]), target.artifact_location
    if recorded != expected:
        where = _local_path(recorded)
        gone = where is not None and not where.exists()
        reason = (
            f"its artifact root {recorded} {'no longer exists' if gone else 'belongs to another folder'}"
            " (results folder copied, moved or pulled?)"
        )
        return Stale(recorded, expected, reason)
    here = _local_path(expected)
    if runs and here is not None and not here.is_dir():
        return Stale(recorded, expected, f"its artifact root {expected} is missing")
    return None


def check_results(results_dir: str | os.PathLike[str]) -> Stale | None:
    """:func:`check` for a config's results folder (what the Snakefile asks while it parses)."""
    return check(store.resolve(results_dir))


def write_flag(results_dir: str | os.PathLike[str], out: str) -> None:
    """The flag rule's output: what was found stale (for the log; ``track`` checks again itself)."""
    found = check_results(results_dir)
    io.write_json(out, found.as_json() if found else {"reason": "store is current"})


def rebuild(target: store.Target, stale: Stale) -> None:
    """Delete the workflow's own store (database and artifacts) so that ``track`` logs it anew."""
    db = store.sqlite_path(target.uri)
    assert db is not None and target.default_store, "only the workflow's own SQLite store is rebuilt"
    log.warning(
        "rebuilding the MLflow store %s from the result files: %s; its artifacts belong in %s",
        target.display_uri,
        stale.reason,
        stale.expected,
    )
    for suffix in _DB_SUFFIXES:
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    artifacts = _local_path(stale.expected)
    if artifacts is not None and artifacts.is_dir():
        shutil.rmtree(artifacts)
