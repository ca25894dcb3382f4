"""A cell's ``availability`` section of ``summary.json``: how many cohort members dropped out, and who
trained in each round, by tier.

``dropout_rate`` = dropouts / cohort members scheduled (those that finished plus those that left), over
every round of every Equitable-FL phase; ``vanilla_dropout_rate`` the same for the paired vanilla FL run.
``participation_by_tier[tier]`` lists, for global rounds 1, 2, …, how many clients of that tier trained
(finished) in the round. The section exists only for a dynamic fleet (``clients.availability``): a static
fleet's rounds carry no ``dropouts``, so its summary reads as it always has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Protocol


class _Round(Protocol):
    clients: list[int]
    dropouts: list[int] | None


class _Run(Protocol):
    history: list[_Round]


@dataclass(frozen=True)
class AvailabilitySummary:
    """Dropouts and per-round participation by tier, Equitable-FL (all phases) and vanilla FL."""

    dropouts: int
    scheduled: int
    dropout_rate: float
    vanilla_dropouts: int
    vanilla_scheduled: int
    vanilla_dropout_rate: float
    participation_by_tier: dict[str, list[int]]
    vanilla_participation_by_tier: dict[str, list[int]]

    @classmethod
    def read(cls, data: Mapping[str, object] | None) -> AvailabilitySummary | None:
        """The section as ``summary.json`` holds it (None or absent: a static fleet)."""
        if not data:
            return None
        missing = sorted({f.name for f in fields(cls)} - set(data))
        if missing:
            raise ValueError(f"summary.json availability section: missing {missing}; rerun summarise_cell")
        return cls(**{f.name: data[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _counts(runs: Sequence[_Run]) -> tuple[int, int]:
    rounds = [r for run in runs for r in run.history]
    dropped = sum(len(r.dropouts or []) for r in rounds)
    return dropped, dropped + sum(len(r.clients) for r in rounds)


def _by_tier(runs: Sequence[_Run], tiers: Mapping[int, int]) -> dict[str, list[int]]:
    rounds = [r for run in runs for r in run.history]
    return {
        str(t): [sum(tiers[c] == t for c in r.clients) for r in rounds] for t in sorted(set(tiers.values()))
    }


def availability_summary(
    phases: Sequence[_Run], vanilla: _Run, tiers: Mapping[int, int]
) -> AvailabilitySummary | None:
    """The section from the phases' and vanilla's histories (None: a static fleet, no round has dropouts).

    ``tiers`` maps each client to its tier (``clients.json``).
    """
    if all(r.dropouts is None for run in (*phases, vanilla) for r in run.history):
        return None
    dropped, scheduled = _counts(phases)
    v_dropped, v_scheduled = _counts([vanilla])
    return AvailabilitySummary(
        dropouts=dropped,
        scheduled=scheduled,
        dropout_rate=dropped / scheduled if scheduled else 0.0,
        vanilla_dropouts=v_dropped,
        vanilla_scheduled=v_scheduled,
        vanilla_dropout_rate=v_dropped / v_scheduled if v_scheduled else 0.0,
        participation_by_tier=_by_tier(phases, tiers),
        vanilla_participation_by_tier=_by_tier([vanilla], tiers),
    )
