"""Where runs go: the tracking URI, the experiment and its artifact location, and a fail-fast client.

The URI is always set explicitly: ``MLFLOW_TRACKING_URI`` if the user exported one (their tracking
server), else a SQLite file inside the config's results folder (``<results_dir>/mlflow/mlflow.db`` with
artifacts beside it). MLflow's own default, ``mlflow.db`` in whatever the working directory happens to be,
is never used. One config is one experiment, named after its results folder unless
``MLFLOW_EXPERIMENT_NAME`` says otherwise.

This module imports MLflow only inside the functions that need a client: the Snakefile calls
:func:`describe` while it parses, and importing MLflow there would slow every ``snakemake -n``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from equitable_fl.progress import LOGGER_NAME

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

STORE_DIRNAME = "mlflow"
DB_NAME = "mlflow.db"
ARTIFACTS_DIRNAME = "artifacts"
LOCK_NAME = "track.lock"
EXPERIMENT_PREFIX = "equitable-fl"

# Reaching the store is checked once with no retries and a short timeout, so an unreachable server fails
# the step in well under a second instead of after MLflow's default 7 retries with back-off (minutes).
PROBE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# Once the store answered, a few retries ride out a transient hiccup of a remote server; a user's own
# settings win.
LOGGING_ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}

# MLflow 3's UI opens an experiment on its GenAI overview unless the URL asks for the machine-learning
# view; this path (after the UI's address) is the experiment's runs table. The kind tag says the same to
# the UI's experiment settings.
RUNS_PATH = "#/experiments/{experiment_id}/runs?workflowType=machine_learning"
DEFAULT_UI = "http://127.0.0.1:5000"  # `mlflow ui --host 127.0.0.1 --port 5000`, as docs/tracking.md says
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

EXPERIMENT_NOTE = (
    "Equitable-FL reproduction (arXiv 2309.00864). One parent run per grid cell: Equitable-FL per "
    "(dataset, pruning rate, seed) with one child run per phase, vanilla FL per (dataset, seed). Filter "
    "with `tags.role = 'cell'` for parents; group by `tags.dataset` and `tags.pruning_rate`. Per-round "
    "metrics use the global round as step. Logged by the workflow's `track` rule; see docs/tracking.md."
)


class TrackingUnavailable(RuntimeError):
    """The MLflow store cannot be reached or written; the message says what to do about it."""


@dataclass(frozen=True)
class Target:
    """One resolved tracking destination: URI, experiment, artifact location and the lock that guards it."""

    uri: str
    experiment: str
    artifact_location: str | None  # a file URI for a SQLite store; None lets a tracking server decide
    lock_path: Path
    default_store: bool  # True when the URI is the workflow's own SQLite file (no MLFLOW_TRACKING_URI)

    @property
    def display_uri(self) -> str:
        return redact(self.uri)


def store_dir(results_dir: str | os.PathLike[str]) -> Path:
    return Path(results_dir) / STORE_DIRNAME


def default_uri(results_dir: str | os.PathLike[str]) -> str:
    """``sqlite:////abs/<results_dir>/mlflow/mlflow.db``: absolute, so it never depends on the cwd later."""
    return f"sqlite:///{(store_dir(results_dir) / DB_NAME).resolve().as_posix()}"


def default_experiment(results_dir: str | os.PathLike[str]) -> str:
    """``equitable-fl/results/paper`` for ``results_dir: results/paper``: one experiment per config."""
    return f"{EXPERIMENT_PREFIX}/{Path(os.path.normpath(results_dir)).as_posix()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative or absolute), or None for any other scheme."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


def redact(uri: str) -> str:
    """The URI without a password, fit for logs, params and error messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def resolve(results_dir: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Target:
    """This config's destination: ``MLFLOW_TRACKING_URI`` / ``MLFLOW_EXPERIMENT_NAME``, else defaults."""
    env = os.environ if environ is None else environ
    user_uri = env.get("MLFLOW_TRACKING_URI", "").strip()
    uri = user_uri or default_uri(results_dir)
    db = sqlite_path(uri)
    artifacts = (db.resolve().parent / ARTIFACTS_DIRNAME).as_uri() if db is not None else None
    return Target(
        uri=uri,
        experiment=env.get("MLFLOW_EXPERIMENT_NAME", "").strip() or default_experiment(results_dir),
        artifact_location=artifacts,
        lock_path=store_dir(results_dir).resolve() / LOCK_NAME,
        default_store=not user_uri,
    )


def runs_path(experiment_id: str) -> str:
    """``#/experiments/<id>/runs?workflowType=machine_learning``: append to the UI's address."""
    return RUNS_PATH.format(experiment_id=experiment_id)


def runs_url(target: Target, experiment_id: str) -> str:
    """Where the runs table is: on the tracking server itself, or on ``mlflow ui`` started as documented
    (``--host 127.0.0.1 --port 5000``) for a SQLite store."""
    parts = urlsplit(target.uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port is not None else host
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    else:
        base = DEFAULT_UI
    return f"{base}/{runs_path(experiment_id)}"


def describe(results_dir: str | os.PathLike[str]) -> dict[str, str]:
    """What the Snakemake params trigger should compare: switching the store or experiment relogs."""
    target = resolve(results_dir)
    return {"uri": target.display_uri, "experiment": target.experiment}


@contextlib.contextmanager
def _env(values: Mapping[str, str], *, override: bool) -> Iterator[None]:
    """Set environment variables for the duration of the block (``override=False`` keeps user values)."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for key, value in values.items():
            if override or key not in os.environ:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def unavailable_message(target: Target, error: BaseException, results_dir: str | os.PathLike[str]) -> str:
    """What failed, that nothing is lost, and how to recover: the text users see in the failed job's log."""
    first_line = (str(error).strip().splitlines() or [""])[0][:600]
    fix = (
        "check that the folder is writable"
        if target.default_store
        else "start the tracking server, or unset MLFLOW_TRACKING_URI to use the default SQLite store "
        f"{default_uri(results_dir)}"
    )
    return (
        f"MLflow tracking store {target.display_uri} is unreachable: {type(error).__name__}: {first_line}\n"
        f"Training outputs are intact: nothing under {Path(results_dir).as_posix()}/ was changed or deleted. "
        f"To recover, {fix}, then rerun snakemake: it logs the finished cells without retraining them."
    )


def open_client(target: Target, results_dir: str | os.PathLike[str]) -> MlflowClient:
    """A client bound to ``target.uri`` that has answered one request; else :class:`TrackingUnavailable`.

    Telemetry is switched off here (not only in the Makefile) because Snakemake jobs may run without it.
    """
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["DO_NOT_TRACK"] = "true"
    from mlflow.tracking import MlflowClient

    db = sqlite_path(target.uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=target.uri)
    try:
        with _env(PROBE_ENV, override=True):
            client.search_experiments(max_results=1)
    except Exception as exc:  # any failure to answer means the same to the user: not reachable
        # ``from None``: the message already names the cause; MLflow's chained traceback would bury it.
        raise TrackingUnavailable(unavailable_message(target, exc, results_dir)) from None
    for key, value in LOGGING_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return client


def ensure_experiment(client: MlflowClient, target: Target) -> str:
    """The experiment's id, creating it (with the explicit artifact location) or restoring it if deleted.

    A concurrent creator (another Snakemake invocation against the same server) is tolerated: if creation
    fails because the name now exists, the existing experiment is used.
    """
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(target.experiment)
    if exp is None:
        try:
            return client.create_experiment(
                target.experiment,
                artifact_location=target.artifact_location,
                tags={
                    "mlflow.note.content": EXPERIMENT_NOTE,
                    "project": EXPERIMENT_PREFIX,
                    **EXPERIMENT_KIND,
                },
            )
        except MlflowException:
            exp = client.get_experiment_by_name(target.experiment)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    for key, value in EXPERIMENT_KIND.items():
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    if target.artifact_location is not None and exp.artifact_location != target.artifact_location:
        # MLflow stores artifact locations as absolute paths. The workflow's own store is rebuilt before
        # this point when they do not match (tracking.relocate); a database named by MLFLOW_TRACKING_URI
        # may hold other experiments, so it is left alone: say so instead of hiding it.
        logging.getLogger(LOGGER_NAME).warning(
            "experiment %r keeps its artifacts in %s, not in %s (was the database copied or moved?); "
            "delete its database, or unset MLFLOW_TRACKING_URI, to rebuild the store from the result files",
            target.experiment,
            exp.artifact_location,
            target.artifact_location,
        )
    return str(exp.experiment_id)
