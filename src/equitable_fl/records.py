"""Typed records along the metrics chain: round → phase → cell summary, and communication.

Each quantity has one name from the files a step writes (``metrics.json``, ``timing.json``,
``summary.json``) through the tables, figures and MLflow; a ``_pct`` column in a table is the same
quantity in percent. Records are plain dataclasses with ``to_json``/``from_json`` so that every reader
gets typed fields and a missing key fails loudly at the boundary instead of deep inside a figure.

Measured times live apart from everything else (``RoundRecord.train_seconds`` is never written to
``metrics.json``; ``timing.json`` holds them): identical runs then give identical metric files.
"""

from __future__ import annotations

import numbers
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from equitable_fl.coverage import Coverage
from equitable_fl.dynamics.participation import AvailabilitySummary


def number(value: Any) -> float | None:
    """A float, or None for null and non-numbers (bools are not numbers here): the one null rule."""
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _from(cls: Any, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    missing = sorted(n for n in names if n not in data and _required(cls, n))
    if missing:
        raise ValueError(f"{cls.__name__}: missing {missing} (written by an older version? rerun the step)")
    return cls(**{k: v for k, v in data.items() if k in names})


def _required(cls: Any, name: str) -> bool:
    f = next(f for f in fields(cls) if f.name == name)
    return f.default is MISSING and f.default_factory is MISSING


@dataclass(frozen=True)
class Communication:
    """Bytes on the wire: server → clients (download) and clients → server (upload)."""

    bytes_down: int = 0
    bytes_up: int = 0

    @property
    def bytes_communicated(self) -> int:
        return self.bytes_down + self.bytes_up

    def __add__(self, other: Communication) -> Communication:
        return Communication(self.bytes_down + other.bytes_down, self.bytes_up + other.bytes_up)


@dataclass
class RoundRecord:
    """One federated round: who trained, on how many samples, what it cost and how good the model is."""

    round: int
    global_round: int
    clients: list[int]
    samples: int
    accuracy: float
    loss: float
    train_loss: float | None  # None: nobody trained this round (no eligible client was available)
    bytes_down: int
    bytes_up: int
    train_seconds: float = 0.0
    simulated_seconds: float | None = None  # the fleet's simulated round time, when a time model is set
    dropouts: list[int] | None = None  # cohort members that left mid-round; None: a static fleet

    @property
    def communication(self) -> Communication:
        return Communication(self.bytes_down, self.bytes_up)

    def metrics(self) -> dict[str, Any]:
        """Everything but the measured time (it differs between identical runs); optional fields if set."""
        return {
            "round": self.round,
            "global_round": self.global_round,
            "clients": self.clients,
            "num_clients": len(self.clients),
            "samples": self.samples,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "train_loss": self.train_loss,
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            **{k: v for k in ("simulated_seconds", "dropouts") if (v := getattr(self, k)) is not None},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoundRecord:
        return _from(cls, data)


@dataclass(frozen=True)
class ModelSize:
    """Size and nominal cost of a (possibly sparse) model, as measured by :func:`modelspec.measure_cost`."""

    params_total: int
    params_kept: int
    prunable_total: int
    prunable_kept: int
    sparsity: float
    dense_bytes: int
    encoded_bytes: int
    size_reduction_pct: float
    train_flops_per_sample: float
    dense_train_flops_per_sample: float
    flop_speedup_model: float


@dataclass
class PhaseRecord:
    """A training step's ``metrics.json``: one Equitable-FL phase, or the vanilla FL baseline."""

    label: str
    rounds: int
    global_round_offset: int
    admitted_tiers: list[int] | None
    eligible_clients: int
    clients_took_part: int
    size: ModelSize
    final_accuracy: float
    final_loss: float
    best_accuracy: float
    bytes_communicated: int
    history: list[RoundRecord]
    phase: int | None = None
    participation: str | None = None  # vanilla FL only: "all" or "fits_dense"

    @classmethod
    def from_rounds(
        cls,
        *,
        label: str,
        offset: int,
        admitted_tiers: list[int] | None,
        eligible_clients: int,
        size: ModelSize,
        history: list[RoundRecord],
        phase: int | None = None,
        participation: str | None = None,
    ) -> PhaseRecord:
        last = history[-1]
        traffic = sum((r.communication for r in history), Communication())
        return cls(
            label=label,
            rounds=len(history),
            global_round_offset=offset,
            admitted_tiers=admitted_tiers,
            eligible_clients=eligible_clients,
            clients_took_part=len({c for r in history for c in r.clients}),
            size=size,
            final_accuracy=last.accuracy,
            final_loss=last.loss,
            best_accuracy=max(r.accuracy for r in history),
            bytes_communicated=traffic.bytes_communicated,
            history=history,
            phase=phase,
            participation=participation,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "rounds": self.rounds,
            "global_round_offset": self.global_round_offset,
            "admitted_tiers": self.admitted_tiers,
            "eligible_clients": self.eligible_clients,
            "clients_took_part": self.clients_took_part,
            **asdict(self.size),
            "final_accuracy": self.final_accuracy,
            "final_loss": self.final_loss,
            "best_accuracy": self.best_accuracy,
            "bytes_communicated": self.bytes_communicated,
            "history": [r.metrics() for r in self.history],
        }
        if self.phase is not None:
            out["phase"] = self.phase
        if self.participation is not None:
            out["participation"] = self.participation
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseRecord:
        size = _from(ModelSize, data)
        rest = {k: v for k, v in data.items() if k not in {f.name for f in fields(ModelSize)}}
        rest["history"] = [RoundRecord.from_json(r) for r in data["history"]]
        return _from(cls, {**rest, "size": size})

    def training_flops(self) -> float:
        """Total training FLOPs of the step: samples trained × FLOPs per sample (nominal)."""
        return sum(r.samples for r in self.history) * self.size.train_flops_per_sample


@dataclass(frozen=True)
class TimingRecord:
    """A training step's ``timing.json``: measured seconds, kept apart from the reproducible metrics."""

    threads: int
    train_seconds_per_round: list[float]
    samples_per_round: list[int]
    train_seconds: float
    seconds_per_sample: float
    hardware: str = ""  # the capability line of the machine that trained (equitable_fl.hardware)
    execution: dict[str, Any] = field(default_factory=dict)  # precision and memory layout

    @classmethod
    def from_rounds(
        cls,
        history: list[RoundRecord],
        threads: int,
        hardware: str = "",
        execution: dict[str, Any] | None = None,
    ) -> TimingRecord:
        seconds = [r.train_seconds for r in history]
        samples = [r.samples for r in history]
        return cls(
            int(threads),
            seconds,
            samples,
            sum(seconds),
            sum(seconds) / max(sum(samples), 1),
            hardware,
            dict(execution or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TimingRecord:
        return _from(cls, data)


@dataclass(frozen=True)
class FinalComparison:
    """The cell's headline: the final Equitable-FL model against vanilla FL."""

    final_accuracy: float
    vanilla_accuracy: float
    accuracy_gap_pp: float
    sparsity: float
    params_kept: int
    params_total: int
    dense_bytes: int
    encoded_bytes: int
    size_reduction_pct: float
    flop_speedup_model: float
    flop_speedup_training: float | None
    bytes_communicated: int
    vanilla_bytes_communicated: int


@dataclass(frozen=True)
class RoundsToTarget:
    """First global round at which each method reaches vanilla's final accuracy − tolerance."""

    target_accuracy: float
    target_tolerance: float
    rounds_to_target: int | None
    vanilla_rounds_to_target: int | None
    rounds_speedup: float | None


@dataclass(frozen=True)
class SimulatedTime:
    """The fleet's simulated clock (:mod:`equitable_fl.fleet_time`) over the cell, against vanilla FL.

    ``*_seconds_to_target``: simulated seconds from the start until the end of the first round that
    reaches ``target_accuracy`` (as in ``rounds_to_target``); ``simulated_time_speedup`` = vanilla's /
    Equitable-FL's (None if either never reaches it). ``simulated_seconds``: the whole run.
    """

    note: str
    sparse_kernels: bool
    vanilla_participation: str | None
    target_accuracy: float
    simulated_seconds_to_target: float | None
    vanilla_simulated_seconds_to_target: float | None
    simulated_time_speedup: float | None
    simulated_seconds: float
    vanilla_simulated_seconds: float
    phase_simulated_seconds: list[float]


@dataclass(frozen=True)
class SideBySideTiming:
    """A cell's ``measured.json``: θ0's dense model and the final ticket timed side by side in one process.

    Both train through the project's client step on the same batches with the same threads, call by
    call with alternating order (:mod:`equitable_fl.timing`). ``wallclock_speedup`` is the median over
    repetitions of dense / ticket seconds of two calls made back to back; ``*_seconds`` list every kept
    call, ``*_seconds_per_sample`` their medians per trained sample.
    """

    note: str
    wallclock_speedup: float
    wallclock_speedup_min: float
    wallclock_speedup_max: float
    dense_seconds_per_sample: float
    ticket_seconds_per_sample: float
    dense_seconds: list[float]
    ticket_seconds: list[float]
    samples_per_call: int
    batch_size: int
    steps: int
    repeats: int
    warmup: int
    threads: int
    device: str
    execution: dict[str, Any]  # precision and memory layout, the training jobs' own
    dense_params: int
    ticket_params: int  # parameters the ticket's model holds: fewer than dense_params only if structured
    ticket_density: float  # share of the ticket's prunable weights its mask keeps
    hardware: str  # equitable_fl.hardware.capabilities().line()
    capabilities: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SideBySideTiming:
        return _from(cls, data)


@dataclass(frozen=True)
class Measured:
    """Wall-clock speed-up of the final ticket over the dense model, timed side by side (``measured.json``).

    The ``job_*`` fields are the training jobs' own times, for information only: jobs run beside other
    jobs, so their ratio is not a speed-up.
    """

    note: str
    wallclock_speedup: float
    wallclock_speedup_min: float
    wallclock_speedup_max: float
    dense_seconds_per_sample: float
    ticket_seconds_per_sample: float
    threads: int
    batch_size: int
    repeats: int
    hardware: str
    job_threads: int
    job_vanilla_seconds_per_sample: float
    job_phase_seconds_per_sample: list[float]
    job_train_seconds: float
    job_vanilla_train_seconds: float


@dataclass
class CellSummary:
    """``summary.json`` of one grid cell (dataset × pruning rate × seed × variant)."""

    dataset: str
    seed: int
    pruning_rate: float
    num_phases: int
    phases: list[dict[str, Any]]
    curve: list[dict[str, Any]]
    vanilla: dict[str, Any]
    final: FinalComparison
    rounds_to_target: RoundsToTarget
    measured: Measured
    variant: str = ""
    simulated: SimulatedTime | None = None  # None: the clients have no devices (a clients.json from before)
    coverage: Coverage | None = None  # None: a summary from before coverage was recorded
    availability: AvailabilitySummary | None = None  # None: a static fleet (clients.availability)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.variant:
            out.pop("variant")  # the base config's cells read as they always have
        for optional in [k for k in ("simulated", "coverage", "availability") if out[k] is None]:
            out.pop(optional)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellSummary:
        return cls(
            dataset=data["dataset"],
            seed=int(data["seed"]),
            pruning_rate=float(data["pruning_rate"]),
            num_phases=int(data["num_phases"]),
            phases=data["phases"],
            curve=data["curve"],
            vanilla=data["vanilla"],
            final=_from(FinalComparison, data["final"]),
            rounds_to_target=_from(RoundsToTarget, data["rounds_to_target"]),
            measured=_from(Measured, data["measured"]),
            variant=data.get("variant", ""),
            simulated=_from(SimulatedTime, data["simulated"]) if data.get("simulated") else None,
            coverage=_from(Coverage, data["coverage"]) if data.get("coverage") else None,
            availability=AvailabilitySummary.read(data.get("availability")),
        )
