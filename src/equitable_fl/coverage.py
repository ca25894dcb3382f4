"""Coverage: which share of the fleet, and of its training data, ever trained the model.

Equitable-FL admits weak tiers only once the model is small enough, and tier thresholds decide who is
weak, so a threshold sweep changes who ever contributes. Counting clients hides that clients hold
different amounts of data (a Dirichlet or shards split gives some clients many more samples than
others), so coverage is reported both ways: ``client_coverage`` = distinct clients that trained in at
least one round / clients in the fleet; ``data_coverage`` = training samples held by those clients / all
training samples. The same two numbers for the paired vanilla FL run carry a ``vanilla_`` prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Coverage:
    """A cell's ``coverage`` section of ``summary.json`` (fractions in [0, 1])."""

    clients: int  # clients in the fleet (clients.count)
    samples: int  # training samples over every client
    clients_took_part: int  # distinct clients that trained at least once, over all phases
    client_coverage: float
    data_coverage: float
    vanilla_clients_took_part: int
    vanilla_client_coverage: float
    vanilla_data_coverage: float


def _shares(took_part: Iterable[int], client_samples: Sequence[int]) -> tuple[int, float, float]:
    clients = sorted(set(took_part))
    if any(not 0 <= c < len(client_samples) for c in clients):
        raise ValueError(
            f"clients {clients} took part, but the partition has {len(client_samples)} clients: the "
            "partition and the training outputs come from different clients.count; rerun the partition step"
        )
    total = sum(client_samples)
    data = sum(client_samples[c] for c in clients) / total if total else 0.0
    return len(clients), len(clients) / len(client_samples), data


def coverage(
    took_part: Iterable[int], vanilla_took_part: Iterable[int], client_samples: Sequence[int]
) -> Coverage:
    """Coverage of the clients in ``took_part`` (Equitable-FL, all phases) and ``vanilla_took_part``.

    ``client_samples[c]`` is the number of training samples client ``c`` holds (its partition shard).
    """
    if not client_samples:
        raise ValueError("coverage of an empty fleet: the partition lists no clients")
    n, client_share, data_share = _shares(took_part, client_samples)
    vn, vanilla_client_share, vanilla_data_share = _shares(vanilla_took_part, client_samples)
    return Coverage(
        clients=len(client_samples),
        samples=int(sum(client_samples)),
        clients_took_part=n,
        client_coverage=client_share,
        data_coverage=data_share,
        vanilla_clients_took_part=vn,
        vanilla_client_coverage=vanilla_client_share,
        vanilla_data_coverage=vanilla_data_share,
    )
