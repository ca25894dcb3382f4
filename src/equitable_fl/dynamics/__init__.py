"""Clients that come and go: per-round availability, resources after noise, and mid-round dropouts.

``clients.availability`` (``config/README.md``, "Dynamic availability") picks a process:

- ``always`` (the default): everyone is online every round with the resources the clients step drew, so
  every result is the one a static fleet gives, bit for bit;
- ``markov``: a seeded two-state chain per client (:mod:`.markov`);
- ``trace``: a CSV trace or FedScale's published pickles (:mod:`.traces`, :mod:`.fedscale`).

Each process yields a :class:`~.conditions.ClientRound` per client and global round: online at the round's
start or not, factors on its resources, and when it goes offline during the round. The strategy reads
them through :class:`~.fleet.FleetDynamics`; engines never see them.
"""

from equitable_fl.dynamics.conditions import ClientRound, RoundConditions
from equitable_fl.dynamics.fleet import FleetDynamics
from equitable_fl.dynamics.settings import AvailabilityError, AvailabilitySettings

__all__ = ["AvailabilityError", "AvailabilitySettings", "ClientRound", "FleetDynamics", "RoundConditions"]
