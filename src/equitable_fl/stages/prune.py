"""The step between phases: prune the trained global model and rewind the survivors into a ticket."""

from __future__ import annotations

from typing import Any

from equitable_fl import checkpoint, io
from equitable_fl.config import slice_json
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, model_card
from equitable_fl.pruning import PruneSettings, make_ticket


def prune_and_rewind(
    *,
    trained_weights: str,
    trained_mask: str,
    trained_card: str,
    rewind_weights: str,
    params: dict[str, Any],
    out_mask: str,
    out_ticket: str,
    out_card: str,
    out_report: str,
    out_params: str,
) -> None:
    spec = ModelSpec.from_dict(io.read_json(trained_card))
    mask = Mask.load(trained_mask)
    trained = checkpoint.load_tensors(trained_weights, kind="weights")
    settings = PruneSettings(
        rate=float(params["rate"]),
        output_rate_factor=float(params["output_rate_factor"]),
        output_layer=spec.output_layer,
    )
    rewind_state = checkpoint.load_state(rewind_weights, trained)
    ticket = make_ticket(params["scope"], spec, trained, mask, rewind_state, settings)
    report = ticket.mask.report()
    report.update({"previous_density": mask.density, "rate": settings.rate, "scope": params["scope"]})
    ticket.mask.save(out_mask)
    checkpoint.save_state(out_ticket, ticket.state)
    io.write_json(out_card, model_card(ticket.spec, ticket.spec.build(), ticket.mask))
    io.write_json(out_report, report)
    io.write_text(out_params, slice_json(params))
