"""FedScale's published device traces, read without running any code from the file.

FedScale ships two pickles (``benchmark/dataset/data/device_info``, format in its ``docs``):

- ``client_device_capacity``: client id → ``{"computation": ms per sample, "communication": kbps}``;
- ``client_behave_trace``: client id → ``{"active": [t…], "inactive": [t…], "finish_time": t, …}``,
  seconds; the client is online in each ``[active[i], inactive[i]]`` and the pattern repeats every
  ``finish_time`` seconds (FedScale's ``ClientMetadata.is_active``).

A pickle can name any importable callable and have it run on load, so these are read with an unpickler
whose ``find_class`` refuses every global: the published files hold only dicts, lists, strings and
numbers, which need none. A file that names a global (numpy scalars included: convert them to plain
floats) fails with the global it asked for, and nothing runs.

Mapping onto our fleet: client ``c`` takes the ``c``-th FedScale id in sorted order (wrapping around if
the trace has fewer). Capacity becomes factors relative to the mapped clients' median (faster than the
median > 1), so the config's resources keep their scale and FedScale supplies the spread. Global round
``g`` starts at trace time ``(g - 1) × round_seconds``: the client is available if it is active then,
and leaves when its active interval ends, if that is before it would finish.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl.dynamics.conditions import ClientRound
from equitable_fl.dynamics.settings import AvailabilityError

MAX_TRACE_BYTES = 512 << 20  # FedScale's own files are a few tens of MB


class _NoGlobals(pickle.Unpickler):
    """An unpickler that builds only pickle's own types: every global and persistent id is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise AvailabilityError(
            f"refused to load global {module}.{name}: a FedScale trace holds only dicts, lists, strings and "
            "numbers; a file that names a callable could run code. Re-save it with plain Python types"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise AvailabilityError("refused a persistent id: a FedScale trace holds only plain Python types")


def load_pickle(path: str | Path, key: str) -> Any:
    """The object in ``path`` (config key ``key``), built without calling any global."""
    path = Path(path)
    if not path.is_file():
        raise AvailabilityError(f"{key}: {str(path)!r} does not exist; give the path of FedScale's pickle")
    size = path.stat().st_size
    if size > MAX_TRACE_BYTES:
        raise AvailabilityError(f"{key}: {path} is {size:,} bytes, more than {MAX_TRACE_BYTES:,}")
    try:
        return _NoGlobals(io.BytesIO(path.read_bytes())).load()
    except AvailabilityError as exc:
        raise AvailabilityError(f"{key}: {path}: {exc}") from None
    except Exception as exc:  # a truncated or non-pickle file
        raise AvailabilityError(f"{key}: {path} is not a readable pickle ({exc})") from None


def _mapping(obj: Any, key: str, path: str | Path) -> dict[Any, Any]:
    if not isinstance(obj, Mapping) or not obj:
        raise AvailabilityError(f"{key}: {path} must hold a non-empty dict of client id → record")
    return dict(obj)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(repr(value))
    return float(value)


def capacity_factors(obj: Any, num_clients: int, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Compute and bandwidth factors of our clients from ``client_device_capacity``."""
    key = "clients.availability.trace.device_capacity"
    table = _mapping(obj, key, path)
    ids = sorted(table)
    ms, kbps, bad = [], [], []
    for c in range(num_clients):
        cid = ids[c % len(ids)]
        rec = table[cid]
        try:
            ms.append(_number(rec["computation"]))
            kbps.append(_number(rec["communication"]))
        except (KeyError, TypeError, ValueError) as exc:
            bad.append(f"client id {cid!r}: needs numbers 'computation' and 'communication' ({exc})")
    if not bad and (min(ms) <= 0 or min(kbps) <= 0):
        bad.append("computation and communication must be > 0")
    if bad:
        raise AvailabilityError(f"{key}: {path}: " + "; ".join(bad[:20]))
    ms_a, kbps_a = np.asarray(ms), np.asarray(kbps)
    return np.median(ms_a) / ms_a, kbps_a / np.median(kbps_a)


def _intervals(rec: Any, cid: Any) -> tuple[list[tuple[float, float]], float]:
    try:
        active = [_number(t) for t in rec["active"]]
        inactive = [_number(t) for t in rec["inactive"]]
        period = _number(rec["finish_time"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"client id {cid!r}: needs lists 'active', 'inactive' and 'finish_time' ({exc})"
        ) from None
    if len(active) != len(inactive) or not active or period <= 0:
        raise ValueError(f"client id {cid!r}: 'active' and 'inactive' need equal, non-zero lengths")
    if any(b < a for a, b in zip(active, inactive, strict=True)):
        raise ValueError(f"client id {cid!r}: an interval ends before it starts")
    return list(zip(active, inactive, strict=True)), period


def behaviour(
    obj: Any, num_clients: int, last_round: int, round_seconds: float, path: str | Path
) -> list[list[tuple[bool, float | None]]]:
    """Per client and round 1..last_round: active at the round's start, and seconds until it leaves."""
    key = "clients.availability.trace.behave_trace"
    table = _mapping(obj, key, path)
    ids = sorted(table)
    out, bad = [], []
    for c in range(num_clients):
        cid = ids[c % len(ids)]
        try:
            spans, period = _intervals(table[cid], cid)
        except ValueError as exc:
            bad.append(str(exc))
            continue
        states = []
        for g in range(1, last_round + 1):
            t = ((g - 1) * round_seconds) % period
            span = next(((a, b) for a, b in spans if a <= t <= b), None)
            states.append((False, None) if span is None else (True, span[1] - t))
        out.append(states)
    if bad:
        raise AvailabilityError(f"{key}: {path}: " + "; ".join(bad[:20]))
    return out


def conditions(
    capacity: Any | None,
    behave: Any | None,
    num_clients: int,
    last_round: int,
    round_seconds: float,
    paths: Sequence[str],
) -> list[list[ClientRound]]:
    """Both traces (either may be None) as every client's state over rounds 1..last_round."""
    compute = bandwidth = np.ones(num_clients)
    if capacity is not None:
        compute, bandwidth = capacity_factors(capacity, num_clients, paths[0])
    online = (
        behaviour(behave, num_clients, last_round, round_seconds, paths[1])
        if behave is not None
        else [[(True, None)] * last_round for _ in range(num_clients)]
    )
    return [
        [
            ClientRound(on, float(compute[c]), 1.0, float(bandwidth[c]), None, leaves if on else None)
            for on, leaves in online[c]
        ]
        for c in range(num_clients)
    ]
