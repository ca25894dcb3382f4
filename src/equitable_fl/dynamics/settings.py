"""``clients.availability`` as typed settings: what a training step's slice carries and what it checks.

Defaults live in the schema only (``config/schema.yaml``); this module reads a validated config. A static
fleet (``process: always`` with no noise) has no slice at all, so the training steps' params, and with
them every existing result, are exactly what they were before availability existed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from equitable_fl import io

PROCESSES = ("always", "markov", "trace")
TRACE_FORMATS = ("csv", "fedscale")


class AvailabilityError(ValueError):
    """``clients.availability`` or a trace file it names is invalid; the message says how to fix it."""


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return io.sha256_file(path)


def file_digest(path: str) -> str:
    """sha256 of a trace file, so that editing the trace reruns exactly the steps that read it."""
    st = os.stat(path)
    return _digest(os.path.abspath(path), st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class AvailabilitySettings:
    """One validated ``clients.availability`` section."""

    process: str
    noise_compute: float = 0.0
    noise_bandwidth: float = 0.0
    # markov only
    on_to_off: float | None = None
    off_to_on: float | None = None
    tier_factor: float | None = None
    # trace only
    trace_format: str | None = None
    trace_path: str | None = None
    device_capacity: str | None = None
    behave_trace: str | None = None
    round_seconds: float | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> AvailabilitySettings:
        """From the schema-validated section, or a training slice's ``availability`` (None: static).

        Every value comes from the config (the schema fills the defaults); a key of the chosen process
        that is missing fails here, loudly, instead of falling back to a second default.
        """
        if not cfg:
            return cls("always")
        process = str(cfg["process"])
        if process not in PROCESSES:
            raise AvailabilityError(
                f"clients.availability.process: {process!r} is not a process; allowed: {', '.join(PROCESSES)}"
            )
        out = cls(process, float(cfg["noise"]["compute"]), float(cfg["noise"]["bandwidth"]))
        if process == "markov":
            m = cfg["markov"]
            out = dataclasses.replace(
                out,
                on_to_off=float(m["on_to_off"]),
                off_to_on=float(m["off_to_on"]),
                tier_factor=float(m["tier_factor"]),
            )
        if process == "trace":
            t = cfg["trace"]
            out = dataclasses.replace(
                out,
                trace_format=str(t["format"]),
                trace_path=t.get("path"),
                device_capacity=t.get("device_capacity"),
                behave_trace=t.get("behave_trace"),
                round_seconds=float(t["round_seconds"]),
            )
        return out

    @property
    def reads_tiers(self) -> bool:
        """Whether who is online depends on a client's tier (a Markov chain with ``tier_factor`` ≠ 1).

        Only then does a step that admits every tier (vanilla FL) depend on the tier thresholds.
        """
        return self.process == "markov" and float(self.tier_factor or 1.0) != 1.0

    @property
    def static(self) -> bool:
        """Everyone online every round with the drawn resources: the paper's setting."""
        return self.process == "always" and self.noise_compute == 0.0 and self.noise_bandwidth == 0.0

    def trace_files(self) -> dict[str, str]:
        """The files the trace process reads, by the config key that names them."""
        if self.process != "trace":
            return {}
        if self.trace_format == "csv":
            names = {"path": self.trace_path}
        else:
            names = {"device_capacity": self.device_capacity, "behave_trace": self.behave_trace}
        return {k: v for k, v in names.items() if v}

    def slice(self) -> dict[str, Any] | None:
        """What a training step depends on (None for a static fleet); trace files by their digest."""
        if self.static:
            return None
        out: dict[str, Any] = {
            "process": self.process,
            "noise": {"compute": self.noise_compute, "bandwidth": self.noise_bandwidth},
        }
        if self.process == "markov":
            out["markov"] = {
                "on_to_off": self.on_to_off,
                "off_to_on": self.off_to_on,
                "tier_factor": self.tier_factor,
            }
        if self.process == "trace":
            files = self.trace_files()
            out["trace"] = {
                "format": self.trace_format,
                **files,
                "sha256": {k: file_digest(v) for k, v in files.items() if os.path.isfile(v)},
                "round_seconds": self.round_seconds,
            }
        return out
