"""What one client is like in one round: the common output of every availability process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Mapping global round → one ClientRound per client, in client order.
RoundConditions = Mapping[int, Sequence["ClientRound"]]


@dataclass(frozen=True)
class ClientRound:
    """A client's state in one round.

    ``compute``, ``storage`` and ``bandwidth`` multiply the resources the clients step drew (relative
    budgets and the device's units alike; 1.0 = as drawn). A client online at the round's start may leave
    during it: ``leaves_at_fraction`` of the round as scheduled (the slowest cohort member's time), or
    ``leaves_after_seconds`` of simulated time (a trace's active interval ending); ``None``: it stays.
    """

    available: bool = True
    compute: float = 1.0
    storage: float = 1.0
    bandwidth: float = 1.0
    leaves_at_fraction: float | None = None
    leaves_after_seconds: float | None = None

    def leaves_before(self, finish_seconds: float, round_seconds: float) -> bool:
        """Whether the client goes offline before it would finish (``finish_seconds`` into the round)."""
        moments = []
        if self.leaves_at_fraction is not None:
            moments.append(self.leaves_at_fraction * round_seconds)
        if self.leaves_after_seconds is not None:
            moments.append(self.leaves_after_seconds)
        return bool(moments) and min(moments) < finish_seconds

    @property
    def scaled(self) -> bool:
        return (self.compute, self.storage, self.bandwidth) != (1.0, 1.0, 1.0)


ALWAYS = ClientRound()
