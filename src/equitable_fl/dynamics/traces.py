"""A per-round trace of every client's resources and availability, as a CSV file.

Header ``client,round,compute,storage,bandwidth,available``; one row sets a client's state from that
global round on, until the client's next row (a trace lists changes, not every round). ``compute``,
``storage`` and ``bandwidth`` are positive factors on the resources the clients step drew (1 = as drawn);
``available`` is 1/0 (or true/false). Every client needs a row for round 1.

The whole file is checked before any training (the config check reads it): every bad line is reported
with its line number and what is wrong, not only the first.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from equitable_fl.dynamics.conditions import ClientRound
from equitable_fl.dynamics.settings import AvailabilityError

HEADER = ("client", "round", "compute", "storage", "bandwidth", "available")
_FLAGS = {"1": True, "0": False, "true": True, "false": False}
MAX_LISTED = 50  # bad lines listed in one message; the count says how many more


@dataclass(frozen=True)
class TraceRow:
    line: int
    client: int
    round: int
    state: ClientRound


def _row(line: int, cells: list[str], num_clients: int) -> tuple[TraceRow | None, list[str]]:
    if len(cells) != len(HEADER):
        return None, [f"line {line}: {len(cells)} fields, expected {len(HEADER)} ({','.join(HEADER)})"]
    bad: list[str] = []
    ints: list[int] = []
    for name, text in zip(HEADER[:2], cells[:2], strict=True):
        try:
            ints.append(int(text))
        except ValueError:
            bad.append(f"line {line}: {name} {text!r} is not an integer")
    if len(ints) == 2:
        client, rnd = ints
        if not 0 <= client < num_clients:
            bad.append(f"line {line}: client {client} is not in 0..{num_clients - 1} (clients.count)")
        if rnd < 1:
            bad.append(f"line {line}: round {rnd} must be ≥ 1 (global rounds count from 1)")
    factors: list[float] = []
    for name, text in zip(HEADER[2:5], cells[2:5], strict=True):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            bad.append(f"line {line}: {name} {text!r} must be a finite number > 0 (a factor, 1 = as drawn)")
        factors.append(value)
    flag = _FLAGS.get(cells[5].strip().lower())
    if flag is None:
        bad.append(f"line {line}: available {cells[5]!r} must be 1, 0, true or false")
    if bad:
        return None, bad
    compute, storage, bandwidth = factors
    return TraceRow(line, ints[0], ints[1], ClientRound(bool(flag), compute, storage, bandwidth)), []


def read_rows(path: str | Path, num_clients: int) -> list[TraceRow]:
    """Every row of the trace, checked; raises listing every bad line."""
    path = Path(path)
    if not path.is_file():
        raise AvailabilityError(
            f"clients.availability.trace.path: {str(path)!r} does not exist; give the CSV trace's path "
            "(relative to the directory Snakemake runs in)"
        )
    with path.open(newline="", encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    if not lines or tuple(c.strip() for c in lines[0]) != HEADER:
        found = ",".join(lines[0]) if lines else "an empty file"
        raise AvailabilityError(f"{path}: line 1 must be the header {','.join(HEADER)}, found {found!r}")
    rows: list[TraceRow] = []
    bad: list[str] = []
    seen: dict[tuple[int, int], int] = {}
    for line, cells in enumerate(lines[1:], start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        row, problems = _row(line, [c.strip() for c in cells], num_clients)
        bad += problems
        if row is None:
            continue
        key = (row.client, row.round)
        if key in seen:
            bad.append(
                f"line {line}: client {row.client}, round {row.round} is already set on line {seen[key]}"
            )
            continue
        seen[key] = line
        rows.append(row)
    missing = sorted(set(range(num_clients)) - {r.client for r in rows if r.round == 1})
    if missing:
        bad.append(f"clients {_ranges(missing)} have no row for round 1 (every client needs one)")
    if bad:
        more = f"\n  … and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise AvailabilityError(
            f"{path}: {len(bad)} problem(s) in clients.availability.trace.path; fix these lines:\n  "
            + "\n  ".join(bad[:MAX_LISTED])
            + more
        )
    return rows


def _ranges(ids: Iterable[int]) -> str:
    ids = list(ids)
    return ", ".join(str(i) for i in ids[:20]) + (f" … ({len(ids)} in all)" if len(ids) > 20 else "")


def conditions(rows: Iterable[TraceRow], num_clients: int, last_round: int) -> list[list[ClientRound]]:
    """The trace as states of every client (rows) at rounds 1..last_round (columns), each row carried on."""
    by_client: dict[int, dict[int, ClientRound]] = {c: {} for c in range(num_clients)}
    for r in rows:
        by_client[r.client][r.round] = r.state
    out = []
    for c in range(num_clients):
        changes, current, states = by_client[c], by_client[c][1], []
        for g in range(1, last_round + 1):
            current = changes.get(g, current)
            states.append(current)
        out.append(states)
    return out
