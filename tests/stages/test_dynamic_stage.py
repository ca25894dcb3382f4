"""The training steps with a dynamic fleet (``clients.availability``), from Python on real files: the
config's slice reaches the step, every round records its dropouts, and the same config and seed give the
same bits."""

from __future__ import annotations

import copy
from pathlib import Path

from equitable_fl import io
from equitable_fl.config import Experiment
from equitable_fl.records import PhaseRecord

from .test_train_stage import CONFIG, SEED, Cell, cell, files_of, run_phase, run_vanilla  # noqa: F401

CHURN = {
    "process": "markov",
    "markov": {"on_to_off": 0.5, "off_to_on": 0.5, "tier_factor": 1.0},
    "noise": {"compute": 0.3, "bandwidth": 0.3},
}


def _experiment(availability: dict) -> Experiment:
    raw = copy.deepcopy(CONFIG)
    raw["clients"]["availability"] = availability
    raw["phases"] = [{"rounds": 6, "tiers": [1, 2, 3]}]
    return Experiment.load(raw)


def test_vanilla_with_churn_records_dropouts_and_is_reproducible(cell: Cell, tmp_path: Path) -> None:  # noqa: F811
    params = _experiment(CHURN).vanilla_slice(SEED)
    assert params["availability"]["process"] == "markov"
    a = run_vanilla(cell, tmp_path / "a", params)
    record = PhaseRecord.from_json(io.read_json(a.metrics))
    payload = record.size.encoded_bytes
    assert all(r.dropouts is not None for r in record.history)
    assert sum(len(r.dropouts or []) for r in record.history) > 0  # on_to_off 0.5 over 6 rounds × 6 clients
    for r in record.history:
        assert not set(r.clients) & set(r.dropouts or [])
        assert r.bytes_down == payload * (len(r.clients) + len(r.dropouts or []))
        assert r.bytes_up == payload * len(r.clients)
    b = run_vanilla(cell, tmp_path / "b", params)
    for name, path in files_of(a).items():
        if name != "timing":
            assert path.read_bytes() == files_of(b)[name].read_bytes(), name


def test_static_fleet_phase_is_as_before(cell: Cell, tmp_path: Path) -> None:  # noqa: F811
    """The schema's availability defaults leave a phase's slice, and so its outputs, as they were."""
    static = _experiment({"process": "always"}).phase_slice(1, SEED)
    assert "availability" not in static
    plain = copy.deepcopy(CONFIG)
    plain["phases"] = [{"rounds": 6, "tiers": [1, 2, 3]}]
    assert static == Experiment.load(plain).phase_slice(1, SEED)
    out = run_phase(cell, tmp_path / "p", static)
    assert "dropouts" not in io.read_json(out.metrics)["history"][0]
