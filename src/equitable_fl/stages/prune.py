"""The step between phases: prune the trained global model and rewind the survivors."""

from __future__ import annotations

from typing import Any

from equitable_fl import checkpoint, io
from equitable_fl.mask import Mask
from equitable_fl.pruning import PruneSettings, prune, rewind


def prune_and_rewind(
    *,
    trained_weights: str,
    trained_mask: str,
    rewind_weights: str,
    params: dict[str, Any],
    out_mask: str,
    out_ticket: str,
    out_report: str,
) -> None:
    mask = Mask.load(trained_mask)
    trained = checkpoint.load_tensors(trained_weights, kind="weights")
    settings = PruneSettings(
        rate=float(params["rate"]), output_rate_factor=float(params["output_rate_factor"])
    )
    new_mask = prune(params["scope"], trained, mask, settings)
    rewind_state = checkpoint.load_state(rewind_weights, trained)
    ticket = rewind(rewind_state, new_mask)
    report = new_mask.report()
    report.update({"previous_density": mask.density, "rate": settings.rate, "scope": params["scope"]})
    new_mask.save(out_mask)
    checkpoint.save_state(out_ticket, ticket)
    io.write_json(out_report, report)
