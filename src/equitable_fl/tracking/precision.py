"""How many digits a logged number keeps: derived percentages at the precision they are measured at.

A percentage computed from two fractions carries float noise (``100 * (0.969 - 0.975)`` is
``-0.6000000000000005``), which MLflow's UI and the tables would otherwise show as it is. Accuracies are
counts of correct images over a test set, so one image is worth ``100 / n_test`` percentage points: 0.2 pp
for the demo's 500 test images, 0.01 pp for a 10,000-image test set (MNIST, Fashion-MNIST, CIFAR-10).
Percentages (``*_pct``) and percentage points (``*_pp``) are therefore rounded to
:data:`PERCENT_DECIMALS` = 2 decimals (0.01): exact for every test set of up to 10,000 images, and below
half an image's worth for larger ones. ``size_reduction_pct`` comes from byte counts; 0.01 % of a model's
size is finer than any difference the tables and figures show.

Fractions (``sparsity``, accuracies), counts, bytes, seconds and speed-up ratios are logged as computed:
they are direct measurements or exact ratios, not differences of rounded quantities. Means and standard
deviations over seeds (``comparison.csv``) keep :data:`TABLE_SIGNIFICANT` significant digits, which drops
the noise in the 16th digit and nothing a reader could use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

PERCENT_DECIMALS = 2
PERCENT_SUFFIXES = ("_pct", "_pp")
TABLE_SIGNIFICANT = 10


def is_percentage(name: str) -> bool:
    """``size_reduction_pct``, ``accuracy_gap_pp``, ``final_accuracy_pct_mean`` …: a derived percentage."""
    base = name.removesuffix("_mean").removesuffix("_std")
    return base.endswith(PERCENT_SUFFIXES)


def metric_value(name: str, value: float) -> float:
    """The value to log as ``name``: percentages rounded to :data:`PERCENT_DECIMALS`, others unchanged."""
    if is_percentage(name) and math.isfinite(value):
        return round(value, PERCENT_DECIMALS) + 0.0  # + 0.0: no "-0.0"
    return value


def metrics(values: Mapping[str, float]) -> dict[str, float]:
    return {name: metric_value(name, value) for name, value in values.items()}


def significant(value: float, digits: int = TABLE_SIGNIFICANT) -> float:
    """``value`` with ``digits`` significant digits (NaN and inf unchanged): a mean without float noise."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")
