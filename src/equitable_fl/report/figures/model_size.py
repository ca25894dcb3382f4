"""Model size per phase: what pruning buys on disk and on the wire, phase by phase and rate by rate.

Sizes are the *encoded* sparse sizes the clients actually receive (not a count of non-zero weights), set
against the dense float32 size, so the bar labels are the honest size reduction, including the sparse
encoding's index overhead in phase 1, where it can make the "pruned" model slightly larger than dense.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from equitable_fl.report.figures import style
from equitable_fl.report.figures.summaries import (
    Summary,
    as_float,
    by_dataset_and_rate,
    nanmean,
    rate_label,
)


def plot_model_size(summaries: Sequence[Summary], out_stem: str | Path) -> list[Path]:
    """Encoded (sparse) size of the global model per phase, one bar per pruning rate.

    The dashed line is the dense float32 size; the percentage over each bar is the size reduction
    against it (negative in phase 1, where the sparse encoding's index overhead slightly exceeds dense).
    """
    grid = by_dataset_and_rate(summaries)
    all_rates = sorted({r for by_rate in grid.values() for r in by_rate})
    rate_colors = style.rate_colors(all_rates)

    def draw() -> Figure:
        fig, axes = style.new_figure(1, len(grid), width=5.2, height=3.8)
        for ax, (dataset, by_rate) in zip(axes[0], grid.items(), strict=True):
            n_phases = max(len(s.get("phases") or []) for cells in by_rate.values() for s in cells)
            rates = list(by_rate)
            width = 0.8 / max(len(rates), 1)
            dense_mb: list[float] = []
            top = 0.0
            for k, rate in enumerate(rates):
                cells = by_rate[rate]
                heights, reductions = [], []
                for ph in range(n_phases):
                    rows = [(s.get("phases") or [])[ph] for s in cells if len(s.get("phases") or []) > ph]
                    heights.append(nanmean([as_float(p.get("encoded_bytes")) / 1e6 for p in rows]))
                    reductions.append(nanmean([as_float(p.get("size_reduction_pct")) for p in rows]))
                    dense_mb += [as_float(p.get("dense_bytes")) / 1e6 for p in rows]
                x = np.arange(n_phases) + (k - (len(rates) - 1) / 2) * width
                bars = ax.bar(x, heights, width * 0.95, color=rate_colors[rate], label=rate_label(rate))
                labels = ["n/a" if np.isnan(v) else f"{v:.1f}%" for v in reductions]
                ax.bar_label(
                    bars,
                    labels=labels,
                    padding=2,
                    fontsize=6.5,
                    rotation=90 if len(rates) > 3 else 0,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
                    zorder=4,
                )
                top = max(top, *(h for h in heights if not np.isnan(h)), 0.0)
            dense = nanmean(dense_mb)
            if not np.isnan(dense):
                ax.axhline(dense, color=style.VANILLA_COLOR, ls="--", lw=1.1, label="dense fp32 model")
                ax.annotate(
                    f"dense fp32: {dense:.2f} MB",
                    (1.0, dense),
                    xycoords=("axes fraction", "data"),
                    xytext=(-2, 3),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color=style.VANILLA_COLOR,
                )
                top = max(top, dense)
            ax.set_ylim(0, top * (1.25 if len(rates) > 3 else 1.12) if top > 0 else 1)
            ax.set_xticks(np.arange(n_phases), [f"phase {ph + 1}" for ph in range(n_phases)])
            ax.set_ylabel("encoded model size (MB, 10$^6$ bytes)")
            ax.set_xlabel("training phase (server prunes between phases)")
            ax.set_title(dataset)
            ax.grid(axis="x", visible=False)
        style.figure_legend(fig, *style.collect_legend(axes))
        fig.suptitle("Encoded size of the global model per phase\n(bar labels: size reduction vs dense fp32)")
        return fig

    return style.render(out_stem, draw)
