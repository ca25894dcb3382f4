"""When a run started and ended: the training it stands for, not the moment the ``track`` step logged it.

Each training step (a phase, or vanilla FL) writes ``metrics.json`` as its last act of training, so the
file's modification time is when training ended. Its ``timing.json`` holds the measured seconds of every
round's client training; their sum (``train_seconds``) is the run's duration, so a run starts that long
before it ended and the UI's *Duration* column shows the measured training time (evaluation and job
start-up are not in it). A parent run spans its children: from the first phase's start to the last
phase's end.

File times survive what keeps them (``cp -a``, ``rsync -a``, ``shutil.copytree``); ``dvc pull`` and
``snakemake --touch`` re-date files, so a pulled results folder shows the pull's times with the measured
durations. Times are milliseconds since the epoch, as MLflow takes them, and are not part of a cell's
content hash: re-dating files never relogs a cell.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from equitable_fl.records import TimingRecord

Span = tuple[int, int]


def step_span(metrics_path: str | os.PathLike[str], timing: TimingRecord) -> Span:
    """(start, end) in ms of one training step: end = ``metrics.json``'s mtime, start = end − training."""
    end_ms = os.stat(metrics_path).st_mtime_ns // 1_000_000
    return end_ms - round(1000.0 * timing.train_seconds), end_ms


def enclosing(spans: Iterable[Span]) -> Span:
    """The span from the earliest start to the latest end (a parent run over its phases)."""
    spans = list(spans)
    return min(s for s, _ in spans), max(e for _, e in spans)
