"""Seeded per-client randomness of a dynamic fleet: the two-state on/off chain and resource noise.

Every random number comes from a generator of its own, seeded by (seed, stream, client, purpose) and
drawn for global rounds 1, 2, … in order, so:

- it is independent of cohort sampling (streams 0..K are the phases', these are far away) and of which
  phase asks: phase 2 continues phase 1's chain, and vanilla FL sees the same chain over its rounds;
- a prefix of rounds is the same whatever the run's length, so a phase's rounds get identical draws in a
  three-phase and a one-phase config.

The chain: ``on_to_off`` is the chance per round that an online client goes offline, ``off_to_on`` the
chance that an offline one comes back; a client of tier t goes offline ``tier_factor ** (t - 1)`` times as
often (tier 1 = strongest, so ``tier_factor > 1`` makes weaker tiers drop more), capped at 1. Round 1
starts from the chain's stationary distribution, so the share of clients online does not drift. A client
online at round g and offline at round g + 1 goes offline during round g, at a uniform moment of it.

Noise: a lognormal factor exp(σ·z − σ²/2) with z ~ N(0, 1) per client and round, whose mean is 1, so the
fleet's average resources stay where the clients step put them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AVAILABILITY_STREAM = 0xA7A11AB1E  # far from the phases' streams 0..K used by cohort sampling
_CHAIN, _MOMENT, _COMPUTE, _BANDWIDTH = range(4)


def _draws(seed: int, client: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), AVAILABILITY_STREAM, int(client), purpose])


def off_rate(on_to_off: float, tier_factor: float, tier: int) -> float:
    """Chance per round that an online client of ``tier`` goes offline."""
    return float(min(1.0, on_to_off * tier_factor ** (int(tier) - 1)))


def chain(seed: int, client: int, rounds: int, on_to_off: float, off_to_on: float) -> np.ndarray:
    """States (True = online) of one client at the start of rounds 1..rounds + 1, seeded."""
    u = _draws(seed, client, _CHAIN).random(rounds + 1)
    total = on_to_off + off_to_on
    p_on = 1.0 if total == 0 else off_to_on / total
    states = np.empty(rounds + 1, dtype=bool)
    states[0] = u[0] < p_on
    for g in range(1, rounds + 1):
        states[g] = u[g] >= on_to_off if states[g - 1] else u[g] < off_to_on
    return states


def leave_moments(seed: int, client: int, rounds: int) -> np.ndarray:
    """For each round 1..rounds, the fraction of it at which the client would go offline, in [0, 1)."""
    return _draws(seed, client, _MOMENT).random(rounds)


def noise(seed: int, client: int, rounds: int, sigma: float, resource: str) -> np.ndarray:
    """Mean-1 lognormal factors of one resource (``compute`` or ``bandwidth``) over rounds 1..rounds."""
    if sigma == 0.0:
        return np.ones(rounds)
    purpose = {"compute": _COMPUTE, "bandwidth": _BANDWIDTH}[resource]
    z = _draws(seed, client, purpose).standard_normal(rounds)
    return np.exp(sigma * z - sigma * sigma / 2.0)


def chains(
    seed: int, tiers: Sequence[int], rounds: int, on_to_off: float, off_to_on: float, tier_factor: float
) -> np.ndarray:
    """States (clients × rounds 1..rounds + 1) of the whole fleet."""
    return np.stack(
        [chain(seed, c, rounds, off_rate(on_to_off, tier_factor, t), off_to_on) for c, t in enumerate(tiers)]
    )
