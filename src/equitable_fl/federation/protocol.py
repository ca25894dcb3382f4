"""What every engine shares: the :class:`Engine` protocol and the :class:`PhaseRun` it returns.

Kept apart from :mod:`.engine` (the registry and the in-process engine) so that other engines (Flower)
implement the protocol without importing the registry that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from equitable_fl.data.tensors import TensorData
from equitable_fl.federation.client import State
from equitable_fl.federation.resume import RoundCheckpoint
from equitable_fl.federation.strategy import EquitableStrategy
from equitable_fl.records import RoundRecord


@dataclass
class PhaseRun:
    """What an engine returns: the final global weights, one record per round, kept snapshots."""

    state: State
    history: list[RoundRecord]
    snapshots: dict[int, State]


class Engine(Protocol):
    def run(
        self,
        strategy: EquitableStrategy,
        model: nn.Module,
        start_state: Mapping[str, torch.Tensor],
        data: TensorData,
        client_indices: Sequence[torch.Tensor],
        on_round: Callable[[RoundRecord], None] | None = None,
        checkpoint: RoundCheckpoint | None = None,
    ) -> PhaseRun: ...
