"""Sweep axes: what a config's variants vary, as values a figure can put on its x axis.

A threshold sweep or a Dirichlet-α sweep is nothing but ``grid.variants`` (each variant one setting, see
:mod:`equitable_fl.config.experiment`). To draw a quantity *against* that setting, the figures need the
setting itself, not the variant's name: this module reads each variant's own config, with defaults
resolved the way the steps resolve them (equal quantile splits when no thresholds are given, the
partitioner's own option defaults), into one :class:`SweepPoint` per variant, and says which axes the
config sweeps. The workflow draws a family of sweep figures exactly when its axis varies, and passes the
points to the figure step as params, so a changed setting redraws them. No torch, no matplotlib here:
rules import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from equitable_fl.partition import method_options
from equitable_fl.resources import tier_thresholds

if TYPE_CHECKING:
    from equitable_fl.config import Experiment

THRESHOLDS, ALPHA = "thresholds", "alpha"
AXES = (THRESHOLDS, ALPHA)


@dataclass(frozen=True)
class SweepPoint:
    """The settings one variant (``""`` = the base config) runs with, on every sweep axis."""

    variant: str
    tier_count: int
    tier_method: str  # quantile or absolute
    thresholds: tuple[float, ...]  # as the clients step uses them (defaults resolved)
    partition: str  # iid, dirichlet or shards
    alpha: float | None = None  # dirichlet only
    shards_per_client: int | None = None  # shards only

    @property
    def tiers_key(self) -> tuple[Any, ...]:
        return (self.tier_count, self.tier_method, self.thresholds)

    @property
    def partition_key(self) -> tuple[Any, ...]:
        return (self.partition, self.alpha, self.shards_per_client)

    def thresholds_label(self) -> str:
        """``0.2 · 0.5`` (quantiles), ``abs 0.4 · 0.7`` (scores): as many values as tier boundaries."""
        values = " · ".join(f"{t:.2g}" for t in self.thresholds) or "one tier"
        return values if self.tier_method == "quantile" else f"abs {values}"

    def partition_label(self) -> str:
        """``iid``, ``α = 0.3``, ``shards × 2``."""
        if self.partition == "dirichlet":
            return f"α = {self.alpha:g}"
        if self.partition == "shards":
            return f"shards × {self.shards_per_client}"
        return self.partition

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["thresholds"] = list(self.thresholds)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepPoint:
        return cls(**{**data, "thresholds": tuple(float(t) for t in data["thresholds"])})


def point_of(variant: str, clients: Mapping[str, Any]) -> SweepPoint:
    """The sweep point of one validated ``clients`` section."""
    tiers, part = clients["tiers"], clients["partition"]
    method = part["method"]
    options = {**method_options(method), **part}
    return SweepPoint(
        variant=variant,
        tier_count=int(tiers["count"]),
        tier_method=str(tiers["method"]),
        thresholds=tuple(tier_thresholds(dict(tiers))),
        partition=method,
        alpha=float(options["alpha"]) if method == "dirichlet" else None,
        shards_per_client=int(options["shards_per_client"]) if method == "shards" else None,
    )


def sweep_points(exp: Experiment) -> list[SweepPoint]:
    """One point per variant of ``exp``, the base config first."""
    return [point_of(v, exp.for_variant(v).cfg["clients"]) for v in exp.variants]


def swept_axes(points: Sequence[SweepPoint]) -> list[str]:
    """The axes the points vary: ``thresholds`` if tier settings differ; ``alpha`` if partitions differ
    and at least one is Dirichlet (a gap against α needs an α)."""
    axes = []
    if len({p.tiers_key for p in points}) > 1:
        axes.append(THRESHOLDS)
    if len({p.partition_key for p in points}) > 1 and any(p.alpha is not None for p in points):
        axes.append(ALPHA)
    return axes


def by_thresholds(points: Iterable[SweepPoint]) -> list[SweepPoint]:
    """Points in the order of a threshold axis: fewer tiers first, then by their thresholds."""
    return sorted(points, key=lambda p: (p.tier_count, p.tier_method, p.thresholds, p.variant))
