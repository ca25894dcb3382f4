"""Turning cell summaries into plottable numbers, shared by every figure family.

Summaries may hold nulls (a target never reached, a quantity that could not be measured): every value
goes through :func:`as_float`, which maps them to NaN, and is aggregated with the NaN-aware
:func:`nanmean`, so a missing number shows as a gap or "n/a" instead of failing the whole report.
Accuracies are plotted in %, sizes in MB (10^6 bytes), rounds as global communication rounds counted
across all phases (so the x axis is comparable with vanilla FL's rounds).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Summary = Mapping[str, Any]
PlotFn = Callable[[Sequence[Summary], str | Path], list[Path]]


def panel_name(dataset: Any, variant: Any = "") -> str:
    """A figure row's name: the dataset, and the variant when there is one (``mnist · strict``), so the
    settings of a sweep are drawn side by side instead of being averaged as if they were seeds."""
    return f"{dataset} · {variant}" if variant else str(dataset)


def by_dataset_and_rate(summaries: Sequence[Summary]) -> dict[str, dict[float, list[Summary]]]:
    """dataset (· variant) → pruning rate → summaries sorted by seed."""
    if not summaries:
        raise ValueError("no summaries to plot")
    grid: dict[str, dict[float, list[Summary]]] = defaultdict(lambda: defaultdict(list))
    for s in summaries:
        grid[panel_name(s["dataset"], s.get("variant", ""))][float(s["pruning_rate"])].append(s)
    return {
        d: {r: sorted(cells, key=lambda s: s.get("seed", 0)) for r, cells in sorted(by_rate.items())}
        for d, by_rate in sorted(grid.items())
    }


def as_float(value: Any) -> float:
    """Float or NaN, so plotting code can aggregate with nan-aware numpy functions."""
    if value is None or isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _nanstat(values: Sequence[float], fn: Callable[[np.ndarray], Any]) -> float:
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    return float(fn(arr)) if arr.size else float("nan")


def nanmean(values: Sequence[float]) -> float:
    """Mean of the finite values; NaN when there are none."""
    return _nanstat(values, np.mean)


def rate_label(rate: float) -> str:
    return f"pruning rate {rate:g}"


def seeds_label(cells: Sequence[Summary]) -> str:
    n = len(cells)
    return f"{n} seed" if n == 1 else f"{n} seeds"
