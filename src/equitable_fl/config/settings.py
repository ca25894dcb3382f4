"""Typed settings of the sections that steps act on, built from a schema-validated config.

No field has a default here: defaults are written once, in ``schema.yaml``, and filled in by
:func:`equitable_fl.config.validate.validated` before these objects are built. ``from_config`` accepts a
partial section (tests, library users) and fills it from the schema the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from equitable_fl.config.validate import schema, validated


def _section(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return validated(values, schema()["properties"][name], where=name)


@dataclass(frozen=True)
class TrainSettings:
    """Client-side training and server sampling knobs (config section ``training``)."""

    local_epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    client_fraction: float
    min_clients: int
    eval_batch_size: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainSettings:
        values = _section("training", cfg)
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ComputeSettings:
    """Where and how training runs (config section ``compute``); not an experiment setting."""

    train_threads: int
    device: str
    engine: str
    precision: str
    channels_last: str | bool
    workers: str | int
    checkpoint_every: int
    flower: dict[str, Any]

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ComputeSettings:
        values = _section("compute", cfg)
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def job(self) -> dict[str, Any]:
        """What a training job needs beyond its experiment slice (passed to it through ``params:``)."""
        return {
            "device": self.device,
            "engine": self.engine,
            "execution": self.execution(),
            # worker processes train at one thread each: their results are the 1-thread results
            "workers": self.workers,
            "checkpoint_every": self.checkpoint_every,
            # the Flower engine's settings reach only its jobs: in-process jobs' params stay as they were
            **({"flower": self.flower} if self.engine == "flower" else {}),
        }

    def execution(self) -> dict[str, Any]:
        """What a training job needs to know about how to run (it changes results: rules pass it)."""
        return {"precision": self.precision, "channels_last": self.channels_last}

    @property
    def gpus(self) -> int:
        """GPUs a training job asks the scheduler for (SLURM's ``gpu`` resource)."""
        return 1 if self.device.startswith("cuda") else 0
