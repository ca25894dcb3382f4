"""Simulated client resources, heterogeneity scores, tiers and profiles."""

from __future__ import annotations

import numpy as np
import pytest

from equitable_fl.resources import (
    RESOURCE_NAMES,
    ClientProfile,
    ResourceConfigError,
    assign_tiers,
    build_profiles,
    heterogeneity_scores,
    profiles_from_json,
    sample_resources,
)

UNIFORM = {"distribution": "uniform", "low": 0.25, "high": 1.6, "jitter": 0.15}


# --- sample_resources --------------------------------------------------------------------------


@pytest.mark.parametrize("jitter", [0.0, 0.15, 0.5])
def test_resources_shape_and_jitter_bounds(jitter: float) -> None:
    cfg = {**UNIFORM, "jitter": jitter}
    values = sample_resources(200, 0, cfg)
    assert values.shape == (200, len(RESOURCE_NAMES))
    assert np.all(values > 0)
    # every resource is base × a factor in [1-j, 1+j], base in [low, high)
    assert np.all(values >= cfg["low"] * (1 - jitter) - 1e-12)
    assert np.all(values <= cfg["high"] * (1 + jitter) + 1e-12)
    ratio = values.max(axis=1) / values.min(axis=1)
    assert np.all(ratio <= (1 + jitter) / (1 - jitter) + 1e-12)
    if jitter == 0.0:
        # no jitter: a client's three resources are identical
        assert np.allclose(values, values[:, :1])
    else:
        # jitter is real: resources of one client do differ
        assert np.all(ratio > 1.0)


def test_resources_are_correlated_within_a_client() -> None:
    values = sample_resources(300, 1, UNIFORM)
    corr = np.corrcoef(values.T)
    assert np.all(corr[np.triu_indices(3, 1)] > 0.8)


def test_resources_seeded_and_independent_of_global_rng() -> None:
    np.random.seed(0)
    state = np.random.get_state()
    a = sample_resources(50, 4, UNIFORM)
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    np.random.seed(77)
    b = sample_resources(50, 4, UNIFORM)
    c = sample_resources(50, 5, UNIFORM)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_lognormal_distribution() -> None:
    cfg = {"distribution": "lognormal", "mu": 0.0, "sigma": 0.5, "jitter": 0.1}
    values = sample_resources(2000, 0, cfg)
    assert values.shape == (2000, 3)
    assert np.all(values > 0)
    # the base is lognormal(0, 0.5): its log has mean ≈ 0, sd ≈ 0.5 (jitter adds a little spread)
    logs = np.log(values.mean(axis=1))
    assert abs(logs.mean()) < 0.05
    assert 0.45 < logs.std() < 0.56
    ratio = values.max(axis=1) / values.min(axis=1)
    assert np.all(ratio <= 1.1 / 0.9 + 1e-12)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"distribution": "pareto"}, "distribution must be 'uniform' or 'lognormal'"),
        ({"distribution": "uniform", "low": 1.0, "high": 1.0}, "need 0 < low < high"),
        ({"distribution": "uniform", "low": 2.0, "high": 1.0}, "need 0 < low < high"),
        ({"distribution": "uniform", "low": 0.0, "high": 1.0}, "need 0 < low < high"),
        ({"distribution": "uniform", "jitter": 1.0}, r"jitter must be in \[0, 1\)"),
        ({"distribution": "uniform", "jitter": 1.5}, r"jitter must be in \[0, 1\)"),
        ({"distribution": "uniform", "jitter": -0.1}, r"jitter must be in \[0, 1\)"),
    ],
)
def test_invalid_resource_config_raises(cfg: dict, match: str) -> None:
    with pytest.raises(ResourceConfigError, match=match):
        sample_resources(10, 0, cfg)


# --- heterogeneity_scores ----------------------------------------------------------------------


def test_heterogeneity_scores_by_hand() -> None:
    values = np.array(
        [
            [1.0, 2.0, 4.0],
            [2.0, 1.0, 2.0],
            [0.5, 4.0, 1.0],
        ]
    )
    # column maxima 2, 4, 4 → normalised rows [0.5, 0.5, 1], [1, 0.25, 0.5], [0.25, 1, 0.25]
    expected = np.array([0.5, 0.25, 0.25])
    np.testing.assert_allclose(heterogeneity_scores(values), expected)


def test_heterogeneity_scores_are_at_most_one_and_match_numpy() -> None:
    values = sample_resources(100, 3, UNIFORM)
    scores = heterogeneity_scores(values)
    assert scores.shape == (100,)
    assert np.all(scores > 0) and np.all(scores <= 1.0)
    manual = np.array([min(values[i, j] / values[:, j].max() for j in range(3)) for i in range(100)])
    np.testing.assert_allclose(scores, manual)


# --- assign_tiers ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [30, 31, 100])
def test_quantile_tiers_near_equal_and_ordered(n: int) -> None:
    scores = np.random.default_rng(n).random(n)
    tiers = assign_tiers(scores, {"count": 3, "method": "quantile"})
    assert set(tiers.tolist()) == {1, 2, 3}
    sizes = [int(np.sum(tiers == t)) for t in (1, 2, 3)]
    assert sum(sizes) == n
    assert max(sizes) - min(sizes) <= 1
    # tier 1 holds the highest scores: every score of tier t beats every score of tier t+1
    for t in (1, 2):
        assert scores[tiers == t].min() > scores[tiers == t + 1].max()


def test_absolute_tiers_by_hand() -> None:
    scores = np.array([0.1, 0.3, 0.4, 0.5, 0.7, 0.8, 0.9])
    tiers = assign_tiers(scores, {"count": 3, "method": "absolute", "thresholds": [0.4, 0.8]})
    # a score equal to a threshold reaches it
    assert tiers.tolist() == [3, 3, 2, 2, 2, 1, 1]


def test_custom_quantile_thresholds() -> None:
    scores = np.random.default_rng(0).permutation(np.linspace(0.01, 1.0, 100))
    tiers = assign_tiers(scores, {"count": 3, "method": "quantile", "thresholds": [0.5, 0.9]})
    assert int(np.sum(tiers == 1)) == 10
    assert int(np.sum(tiers == 2)) == 40
    assert int(np.sum(tiers == 3)) == 50
    assert np.array_equal(tiers == 1, scores > np.sort(scores)[89])


def test_more_tiers_and_single_tier() -> None:
    scores = np.arange(1, 21) / 20
    five = assign_tiers(scores, {"count": 5})
    assert five.tolist() == [5] * 4 + [4] * 4 + [3] * 4 + [2] * 4 + [1] * 4
    one = assign_tiers(scores, {"count": 1})
    assert one.tolist() == [1] * 20


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"count": 3, "thresholds": [0.5]}, "3 tiers need 2 thresholds, got 1"),
        ({"count": 2, "method": "absolute", "thresholds": [0.2, 0.5]}, "2 tiers need 1 thresholds, got 2"),
        ({"count": 3, "thresholds": [0.5, 1.0]}, r"quantile thresholds must lie in \(0, 1\)"),
        ({"count": 3, "thresholds": [0.0, 0.5]}, r"quantile thresholds must lie in \(0, 1\)"),
        ({"count": 3, "method": "absolute"}, "thresholds is required"),
        ({"count": 3, "method": "ranked", "thresholds": [0.3, 0.6]}, "must be 'quantile' or 'absolute'"),
        # order-sensitive: never sorted silently
        (
            {"count": 3, "method": "absolute", "thresholds": [0.8, 0.4]},
            r"\[0.8, 0.4\] is not in strictly increasing",
        ),
        ({"count": 3, "thresholds": [0.5, 0.5]}, r"not in strictly increasing order; allowed: .*\[0.5\]"),
    ],
)
def test_invalid_tier_config_raises(cfg: dict, match: str) -> None:
    with pytest.raises(ResourceConfigError, match=match):
        assign_tiers(np.linspace(0.1, 1.0, 10), cfg)


# --- profiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "resources_cfg",
    [UNIFORM, {"distribution": "lognormal", "mu": 0.2, "sigma": 0.4, "jitter": 0.1}],
)
def test_build_profiles_consistent(resources_cfg: dict) -> None:
    tiers_cfg = {"count": 3, "method": "quantile"}
    profiles = build_profiles(30, 2, resources_cfg, tiers_cfg)
    assert [p.client for p in profiles] == list(range(30))
    values = np.array([[p.compute, p.storage, p.bandwidth] for p in profiles])
    np.testing.assert_array_equal(values, sample_resources(30, 2, resources_cfg))
    scores = np.array([p.score for p in profiles])
    np.testing.assert_allclose(scores, heterogeneity_scores(values))
    assert [p.tier for p in profiles] == assign_tiers(scores, tiers_cfg).tolist()
    # tier follows score: a higher tier number never has a higher score
    for a in profiles:
        for b in profiles:
            if a.tier < b.tier:
                assert a.score > b.score
    assert all(isinstance(p.tier, int) and isinstance(p.score, float) for p in profiles)


def test_profiles_json_round_trip() -> None:
    profiles = build_profiles(8, 0, UNIFORM, {"count": 2})
    back = profiles_from_json([p.as_dict() for p in profiles])
    assert back == profiles
    assert isinstance(back[0], ClientProfile)
    assert set(profiles[0].as_dict()) == {"client", "compute", "storage", "bandwidth", "score", "tier"}
