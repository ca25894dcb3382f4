"""Grid cells as objects: one type for (dataset, seed, pruning rate, variant) wherever a cell is named.

A :class:`GridCell` with a ``rate`` is an Equitable-FL cell; without one it names what every rate of
(dataset, seed, variant) shares (phase 1, vanilla FL, θ0). ``variant`` is the open axis of named config
overrides (``grid.variants``), ``""`` for the config as written. The cell knows its key (the MLflow
``run_key``), its tags and its label; paths are :mod:`equitable_fl.layout`'s business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

EQUITABLE = "equitable-fl"
VANILLA = "vanilla"
METHODS = (EQUITABLE, VANILLA)


def variant_dir(variant: str) -> str:
    """The path segment of a variant: ``""`` for the base, ``"name/"`` otherwise."""
    return f"{variant}/" if variant else ""


@dataclass(frozen=True, order=True)
class GridCell:
    dataset: str
    seed: int
    rate: str | None = None
    variant: str = ""

    @classmethod
    def from_wildcards(cls, wildcards: Any) -> GridCell:
        """The cell a Snakemake job works on (``vdir`` and ``rate`` wildcards are optional)."""
        get = wildcards.get if isinstance(wildcards, Mapping) else lambda k, d=None: getattr(wildcards, k, d)
        return cls(
            dataset=str(get("dataset")),
            seed=int(get("seed")),
            rate=get("rate"),
            variant=str(get("vdir", "") or "").rstrip("/"),
        )

    @property
    def method(self) -> str:
        return VANILLA if self.rate is None else EQUITABLE

    def shared(self) -> GridCell:
        """What every pruning rate of this cell shares (phase 1, vanilla FL)."""
        return replace(self, rate=None)

    def with_rate(self, rate: str) -> GridCell:
        return replace(self, rate=rate)

    @property
    def key(self) -> str:
        """``mnist/seed0/rate0.5/equitable-fl``, ``mnist/strict/seed0/vanilla``: the MLflow ``run_key``."""
        rate = f"/rate{self.rate}" if self.rate is not None else ""
        return f"{self.dataset}/{variant_dir(self.variant)}seed{self.seed}{rate}/{self.method}"

    @property
    def label(self) -> str:
        """A short human name, e.g. ``mnist rate0.5 seed0`` (variant appended when there is one)."""
        parts = [self.dataset, f"rate{self.rate}" if self.rate is not None else None, f"seed{self.seed}"]
        if self.variant:
            parts.append(self.variant)
        return " ".join(p for p in parts if p)

    def tags(self) -> dict[str, str]:
        """MLflow tags that identify the cell; vanilla cells carry no pruning rate."""
        tags = {"method": self.method, "dataset": self.dataset, "seed": str(self.seed)}
        if self.rate is not None:
            tags["pruning_rate"] = self.rate
        if self.variant:
            tags["variant"] = self.variant
        return tags


def cells(
    datasets: Iterable[str],
    seeds: Iterable[int],
    rates: Iterable[str | None],
    variants: Iterable[str] = ("",),
) -> list[GridCell]:
    """The Cartesian grid, in a stable order (dataset, variant, seed, rate)."""
    rates, seeds, variants = list(rates), list(seeds), list(variants)
    return [GridCell(d, int(s), r, v) for d in datasets for v in variants for s in seeds for r in rates]
