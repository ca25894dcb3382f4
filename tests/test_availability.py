"""The availability process (``clients.availability``): seeded, reproducible, with the configured rates,
and a config that goes wrong says which key, which value and how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from equitable_fl.config import ConfigError, Experiment
from equitable_fl.dynamics import markov
from equitable_fl.dynamics.build import fleet_availability, round_conditions
from equitable_fl.dynamics.settings import AvailabilitySettings

DEMO = Path(__file__).parents[1] / "config" / "demo.yaml"


def _markov(
    on_to_off: float, off_to_on: float, tier_factor: float = 1.0, **noise: float
) -> AvailabilitySettings:
    return AvailabilitySettings.from_config(
        {
            "process": "markov",
            "markov": {"on_to_off": on_to_off, "off_to_on": off_to_on, "tier_factor": tier_factor},
            "noise": {"compute": noise.get("compute", 0.0), "bandwidth": noise.get("bandwidth", 0.0)},
        }
    )


def _transition_rates(online: np.ndarray) -> tuple[float, float]:
    """Observed on→off and off→on frequencies of a (rounds × clients) online matrix."""
    now, nxt = online[:-1], online[1:]
    return float((now & ~nxt).sum() / now.sum()), float((~now & nxt).sum() / (~now).sum())


def test_chain_recovers_its_rates_over_many_rounds() -> None:
    conds = round_conditions(_markov(0.2, 0.6), seed=3, tiers=[1] * 40, first=1, last=1500)
    online = fleet_availability(conds)
    on_to_off, off_to_on = _transition_rates(online)
    assert on_to_off == pytest.approx(0.2, abs=0.01)
    assert off_to_on == pytest.approx(0.6, abs=0.02)
    # started from its stationary distribution: the online share is 0.6 / 0.8 throughout
    assert online.mean() == pytest.approx(0.75, abs=0.01)
    assert online[:50].mean() == pytest.approx(0.75, abs=0.05)


def test_weaker_tiers_drop_more_with_tier_factor() -> None:
    tiers = [1] * 30 + [3] * 30
    online = fleet_availability(round_conditions(_markov(0.1, 0.5, 2.0), 0, tiers, 1, 1500))
    tier1, _ = _transition_rates(online[:, :30])
    tier3, _ = _transition_rates(online[:, 30:])
    assert tier1 == pytest.approx(0.1, abs=0.01)
    assert tier3 == pytest.approx(0.4, abs=0.02)  # 0.1 × 2^(3-1)
    assert markov.off_rate(0.4, 2.0, 3) == 1.0  # capped


def test_process_is_seeded_reproducible_and_prefix_stable() -> None:
    s = _markov(0.3, 0.4, compute=0.5, bandwidth=0.2)
    a = round_conditions(s, 7, [1, 2, 3] * 5, 1, 60)
    assert a == round_conditions(s, 7, [1, 2, 3] * 5, 1, 60)
    assert a != round_conditions(s, 8, [1, 2, 3] * 5, 1, 60)
    # a later phase (rounds 21..60 of the run) sees exactly the same rounds as one long run
    later = round_conditions(s, 7, [1, 2, 3] * 5, 21, 60)
    assert all(later[g] == a[g] for g in range(21, 61))
    # and a run that stops at round 20 sees the same first 20 rounds
    short = round_conditions(s, 7, [1, 2, 3] * 5, 1, 20)
    assert all(short[g] == a[g] for g in range(1, 20))  # round 20's departure depends on round 21


def test_noise_is_mean_one_lognormal_per_client_and_round() -> None:
    conds = round_conditions(_markov(0.0, 1.0, compute=0.4, bandwidth=0.8), 1, [1] * 50, 1, 400)
    compute = np.array([[c.compute for c in conds[g]] for g in conds])
    bandwidth = np.array([[c.bandwidth for c in conds[g]] for g in conds])
    assert compute.mean() == pytest.approx(1.0, abs=0.02)
    assert bandwidth.mean() == pytest.approx(1.0, abs=0.04)
    assert np.log(compute).std() == pytest.approx(0.4, abs=0.01)
    assert np.log(bandwidth).std() == pytest.approx(0.8, abs=0.02)
    assert all(c.storage == 1.0 and c.available for g in conds for c in conds[g])  # never offline


def test_departures_follow_the_chain() -> None:
    conds = round_conditions(_markov(0.5, 0.5), 0, [1] * 20, 1, 100)
    online = fleet_availability(round_conditions(_markov(0.5, 0.5), 0, [1] * 20, 1, 101))
    for g in range(1, 101):
        for c, state in enumerate(conds[g]):
            leaves = bool(online[g - 1, c] and not online[g, c])
            assert (state.leaves_at_fraction is not None) == leaves
            if leaves:
                assert 0.0 <= state.leaves_at_fraction < 1.0


# ---------------------------------------------------------------- config


def _demo(**availability: Any) -> dict[str, Any]:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["clients"]["availability"] = availability
    return raw


def test_static_fleet_leaves_every_slice_as_before() -> None:
    exp = Experiment.load(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    assert exp.availability_slice() is None
    assert "availability" not in exp.phase_slice(1, 0) and "availability" not in exp.vanilla_slice(0)
    assert "availability" not in exp.clients_slice()


def test_an_availability_variant_keys_training_but_shares_the_clients() -> None:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["grid"]["variants"] = {"churn": {"clients": {"availability": {"process": "markov"}}}}
    churn = Experiment.load(raw).for_variant("churn")
    assert churn.phase_slice(1, 0)["availability"]["markov"] == {
        "on_to_off": 0.1,
        "off_to_on": 0.5,
        "tier_factor": 1.0,
    }
    assert churn.step_variant("clients") == "" and churn.step_variant("partition") == ""
    assert churn.step_variant("phase", 1) == "churn" and churn.step_variant("vanilla") == "churn"


@pytest.mark.parametrize(
    ("availability", "expected"),
    [
        (
            {"process": "sometimes"},
            r'clients\.availability\.process: "sometimes" .*allowed: "always", "markov", "trace"',
        ),
        (
            {"process": "markov", "markov": {"on_to_off": 1.5}},
            r"clients\.availability\.markov\.on_to_off.*1\.5",
        ),
        ({"noise": {"compute": -0.1}}, r"clients\.availability\.noise\.compute.*-0\.1"),
        ({"process": "trace"}, r"clients\.availability\.trace: format 'csv' reads path.*set the trace"),
        (
            {"process": "trace", "trace": {"path": "no/such/trace.csv"}},
            r"clients\.availability\.trace\.path: 'no/such/trace\.csv' does not exist; give",
        ),
        (
            {"process": "markov", "markov": {"tier_factor": 0}},
            r"clients\.availability\.markov\.tier_factor.*0",
        ),
    ],
)
def test_config_errors_name_key_value_and_fix(availability: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        Experiment.load(_demo(**availability))


def test_bad_trace_rows_fail_the_config_before_any_job(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("client,round,compute,storage,bandwidth,available\n0,1,1,1,1,2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2: available '2' must be 1, 0, true or false"):
        Experiment.load(_demo(process="trace", trace={"path": str(trace)}))


def test_a_dynamic_fleet_runs_on_either_engine_with_the_same_slices() -> None:
    """The Flower engine gets the fleet's dynamics in its job folder (tests/flower): same params."""
    raw = _demo(process="markov")
    inprocess = Experiment.load(raw)
    raw["compute"]["engine"] = "flower"
    raw["compute"]["flower"] = {"connection": "local"}
    flower = Experiment.load(raw)
    assert flower.phase_slice(2, 0) == inprocess.phase_slice(2, 0)
    assert flower.phase_slice(2, 0)["availability"]["process"] == "markov"
    assert flower.vanilla_slice(0) == inprocess.vanilla_slice(0)
