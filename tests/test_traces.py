"""Availability traces: the CSV reader (every bad row, with its line number) and FedScale's pickles, read
by an unpickler that refuses every global so a hostile file cannot run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from equitable_fl.dynamics import fedscale, traces
from equitable_fl.dynamics.build import round_conditions
from equitable_fl.dynamics.conditions import ClientRound
from equitable_fl.dynamics.settings import AvailabilityError, AvailabilitySettings

HEADER = "client,round,compute,storage,bandwidth,available\n"


def _csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_csv_rows_carry_on_until_the_next_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "0,1,1,1,1,1\n1,1,0.5,2,0.25,true\n0,3,2,1,1,0\n1,2,1,1,1,false\n")
    rows = traces.read_rows(path, 2)
    states = traces.conditions(rows, 2, 4)
    assert [s.available for s in states[0]] == [True, True, False, False]
    assert states[0][2].compute == 2.0
    assert states[1][0] == ClientRound(True, 0.5, 2.0, 0.25)
    assert [s.available for s in states[1]] == [True, False, False, False]


def test_csv_lists_every_bad_line_with_its_number(tmp_path: Path) -> None:
    body = (
        "0,1,1,1,1,1\n"  # line 2: fine
        "1,1,x,1,1,1\n"  # line 3: compute not a number
        "2,0,1,1,1,1\n"  # line 4: round 0
        "7,1,1,1,1,1\n"  # line 5: no client 7
        "1,2,1,-1,1,1\n"  # line 6: negative storage
        "1,3,1,1,1,maybe\n"  # line 7: bad flag
        "0,1,1,1,1,1\n"  # line 8: duplicate of line 2
        "1,4,1,1\n"  # line 9: too few fields
        "1,5,1,1,inf,1\n"  # line 10: bandwidth not finite
    )
    with pytest.raises(AvailabilityError) as err:
        traces.read_rows(_csv(tmp_path, body), 3)
    msg = str(err.value)
    for line, what in [
        (3, "compute 'x'"),
        (4, "round 0"),
        (5, "client 7 is not in 0..2"),
        (6, "storage '-1'"),
        (7, "available 'maybe'"),
        (8, "already set on line 2"),
        (9, "4 fields"),
        (10, "bandwidth 'inf'"),
    ]:
        assert f"line {line}: " in msg and what in msg, (line, what, msg)
    assert "line 2:" not in msg
    assert "clients.availability.trace.path" in msg


def test_csv_header_and_round_one_are_required(tmp_path: Path) -> None:
    bad_header = tmp_path / "h.csv"
    bad_header.write_text("client,round,cpu\n0,1,1\n", encoding="utf-8")
    with pytest.raises(AvailabilityError, match=r"line 1 must be the header client,round,compute"):
        traces.read_rows(bad_header, 1)
    with pytest.raises(AvailabilityError, match=r"clients 1 have no row for round 1"):
        traces.read_rows(_csv(tmp_path, "0,1,1,1,1,1\n1,2,1,1,1,1\n"), 2)
    with pytest.raises(AvailabilityError, match=r"does not exist"):
        traces.read_rows(tmp_path / "missing.csv", 2)


def test_csv_trace_leaving_next_round_is_a_mid_round_departure(tmp_path: Path) -> None:
    path = _csv(tmp_path, "0,1,1,1,1,1\n0,3,1,1,1,0\n")
    settings = AvailabilitySettings.from_config(
        {
            "process": "trace",
            "noise": {"compute": 0.0, "bandwidth": 0.0},
            "trace": {"format": "csv", "path": str(path), "round_seconds": 600},
        }
    )
    conds = round_conditions(settings, seed=0, tiers=[1], first=1, last=3)
    assert conds[1][0].leaves_at_fraction is None  # online in rounds 1 and 2
    assert conds[2][0].available and conds[2][0].leaves_at_fraction is not None  # offline from round 3
    assert 0.0 <= conds[2][0].leaves_at_fraction < 1.0
    assert not conds[3][0].available


# ---------------------------------------------------------------- FedScale


class _RunsCode:
    """What a hostile pickle does: name a callable (os.system) that the unpickler would call on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_naming_a_global_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = tmp_path / "client_behave_trace"
    hostile.write_bytes(pickle.dumps({1: {"active": [0.0], "inactive": [10.0], "x": _RunsCode(marker)}}))
    assert b"system" in hostile.read_bytes()  # the payload really names os.system
    with pytest.raises(AvailabilityError, match=r"refused to load global (posix|os|nt)\.system"):
        fedscale.load_pickle(hostile, "clients.availability.trace.behave_trace")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_every_global_is_refused_even_harmless_ones(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps({1: complex(1, 2)}, protocol=protocol))  # builtins.complex
    with pytest.raises(AvailabilityError, match=r"refused to load global (__builtin__|builtins)\.complex"):
        fedscale.load_pickle(path, "k")


def _fedscale_files(tmp_path: Path) -> tuple[Path, Path]:
    capacity = {
        11: {"computation": 100.0, "communication": 2000.0},
        12: {"computation": 50.0, "communication": 500.0},
        13: {"computation": 200.0, "communication": 1000.0},
    }
    behave = {
        11: {"duration": 100, "active": [0.0, 2000.0], "inactive": [1000.0, 3000.0], "finish_time": 4000},
        12: {"duration": 100, "active": [500.0], "inactive": [4000.0], "finish_time": 4000, "model": "x"},
        13: {"duration": 100, "active": [0.0], "inactive": [4000.0], "finish_time": 4000},
    }
    cap, beh = tmp_path / "client_device_capacity", tmp_path / "client_behave_trace"
    cap.write_bytes(pickle.dumps(capacity))
    beh.write_bytes(pickle.dumps(behave, protocol=0))
    return cap, beh


def test_fedscale_maps_capacity_and_active_intervals(tmp_path: Path) -> None:
    cap, beh = _fedscale_files(tmp_path)
    capacity = fedscale.load_pickle(cap, "c")
    behave = fedscale.load_pickle(beh, "b")
    states = fedscale.conditions(capacity, behave, 3, 4, 600.0, [str(cap), str(beh)])
    # client c takes the c-th id in sorted order: 11, 12, 13; compute = median ms (100) / own ms,
    # bandwidth = own kbps / median kbps (1000)
    assert [s[0].compute for s in states] == [1.0, 2.0, 0.5]
    assert [s[0].bandwidth for s in states] == [2.0, 0.5, 1.0]
    wrapped = fedscale.conditions(capacity, behave, 4, 1, 600.0, [str(cap), str(beh)])
    assert wrapped[3][0].available == wrapped[0][0].available  # client 3 wraps around to id 11
    # id 11: active [0, 1000] and [2000, 3000]; rounds start at 0, 600, 1200, 1800 s
    assert [s.available for s in states[0]] == [True, True, False, False]
    assert states[0][0].leaves_after_seconds == 1000.0 and states[0][1].leaves_after_seconds == 400.0
    # id 12: active from 500 s only
    assert [s.available for s in states[1]] == [False, True, True, True]


def test_fedscale_records_with_missing_fields_say_which(tmp_path: Path) -> None:
    path = tmp_path / "cap"
    path.write_bytes(pickle.dumps({5: {"computation": 1.0}}))
    with pytest.raises(
        AvailabilityError, match=r"client id 5: needs numbers 'computation' and 'communication'"
    ):
        fedscale.capacity_factors(fedscale.load_pickle(path, "k"), 2, path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(AvailabilityError, match=r"is not a readable pickle"):
        fedscale.load_pickle(path, "clients.availability.trace.device_capacity")
