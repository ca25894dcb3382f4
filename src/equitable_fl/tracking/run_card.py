"""``overview.html``: a one-screen summary at the artifact root of every parent run.

MLflow's compare view shows artifacts side by side only when the compared runs have a file of the same
name at the top of their artifact trees; the cell's other artifacts sit in folders. Every parent run,
Equitable-FL and vanilla FL alike, therefore gets the same small HTML page with the same rows in the same
order: selecting a few parents and pressing *Compare* shows their headline numbers next to each other.

The page is rendered from the run's own logged metrics (after rounding), so it can never disagree with
them; a metric the run does not log reads "n/a". It is deterministic given the result files and is part
of the cell's content hash like every other artifact.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from equitable_fl.grid import VANILLA, GridCell

NAME = "overview.html"


# (metric, what it is, how it is shown: format and scale): one row each, in this order on every parent run.
ROWS: tuple[tuple[str, str, str, float], ...] = (
    ("final_accuracy", "final test accuracy", "{:.2f} %", 100.0),
    ("vanilla_accuracy", "vanilla FL accuracy, same dataset and seed", "{:.2f} %", 100.0),
    ("accuracy_gap_pp", "accuracy gap, Equitable-FL − vanilla FL", "{:+.2f} pp", 1.0),
    ("sparsity", "sparsity: share of prunable weights removed", "{:.2f} %", 100.0),
    ("size_reduction_pct", "model size reduction (sparse encoding vs dense fp32)", "{:.2f} %", 1.0),
    ("flop_speedup_model", "FLOP speed-up of the final model", "{:.2f}×", 1.0),
    ("flop_speedup_training", "FLOP speed-up of the whole training", "{:.2f}×", 1.0),
    ("wallclock_speedup", "measured wall-clock speed-up (dense θ0 vs final ticket)", "{:.2f}×", 1.0),
    ("rounds_speedup", "rounds-to-target speed-up", "{:.2f}×", 1.0),
    ("simulated_time_speedup", "simulated-time speed-up of the fleet", "{:.2f}×", 1.0),
    ("clients_took_part", "clients that took part", "{:,.0f}", 1.0),
    ("bytes_communicated", "bytes communicated, down + up", "{:,.2f} MB", 1e-6),
)

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1em;color:#222}"
    "h1{font-size:1.15em;margin:0 0 .3em}p{margin:.2em 0 .8em;color:#555}"
    "table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}"
    "td.v{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}code{color:#666}"
)


def render(name: str, cell: GridCell, metrics: Mapping[str, float]) -> str:
    """The page for one parent run: its name, grid coordinates and the headline rows."""
    method = cell.method
    coordinates = {
        "dataset": cell.dataset,
        "pruning rate": cell.rate,
        "seed": cell.seed,
        "variant": cell.variant,
    }
    where = ", ".join(f"{k} {v}" for k, v in coordinates.items() if v not in (None, ""))
    note = (
        "Dense FedAvg baseline: its speed-ups are 1 and its sparsity 0 by definition."
        if method == VANILLA
        else "Speed-ups are vanilla FL / Equitable-FL: above 1 favours Equitable-FL."
    )
    rows = []
    for metric, label, fmt, scale in ROWS:
        value = metrics.get(metric)
        text = "n/a" if value is None else fmt.format(scale * float(value))
        rows.append(
            f'<tr><td>{html.escape(label)}</td><td class="v">{html.escape(text)}</td>'
            f"<td><code>{metric}</code></td></tr>"
        )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(name)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(name)}</h1>",
            f"<p>{html.escape(method)} · {html.escape(where)}. {html.escape(note)}</p>",
            "<table><thead><tr><th>quantity</th><th>value</th><th>MLflow metric</th></tr></thead><tbody>",
            *rows,
            "</tbody></table></body></html>",
            "",
        ]
    )
