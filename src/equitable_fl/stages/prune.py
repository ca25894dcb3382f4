"""The step between phases: prune the trained global model and rewind the survivors into a ticket.

The ticket's model card (``model.json``) is written from the ticket's own spec, so the next phase builds
the model the ticket is: θ0's shape for an unstructured ticket, a narrower one for a structured ticket,
whose card also carries its lineage (which of θ0's units it kept) for the next pruning step's rewind.
"""

from __future__ import annotations

from typing import Any

from equitable_fl import checkpoint, io
from equitable_fl.config import slice_json
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec, model_card
from equitable_fl.pruning import PruneSettings, make_ticket
from equitable_fl.structured import Lineage, shapes


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
    card = io.read_json(trained_card)
    spec = ModelSpec.from_dict(card)
    lineage = Lineage.from_card(card)  # None while the model still has θ0's shape
    mask = Mask.load(trained_mask)
    trained = checkpoint.load_state(trained_weights, shapes(spec))
    settings = PruneSettings(
        rate=float(params["rate"]),
        output_rate_factor=float(params["output_rate_factor"]),
        output_layer=spec.output_layer,
        structure=params["structure"],
        norm=params["norm"],
    )
    # the rewind point (θ0 or after round k of phase 1) always has θ0's shape
    rewind_state = checkpoint.load_state(rewind_weights, shapes(lineage.dense if lineage else spec))
    ticket = make_ticket(params["scope"], spec, trained, mask, rewind_state, settings, lineage)
    report = ticket.mask.report()
    report.update(
        {
            "previous_density": mask.density,
            "rate": settings.rate,
            "scope": params["scope"],
            "structure": settings.structure,
        }
    )
    card_out = model_card(ticket.spec, ticket.spec.build(), ticket.mask)
    if ticket.lineage is not None:
        card_out["structured"] = ticket.lineage.as_card()
        # the mask of a narrower model is all ones: what was removed shows only against θ0's model
        dense_total = sum(t.numel() for n, t in shapes(ticket.lineage.dense).items() if n in ticket.mask)
        report["widths"] = {m: len(ix) for m, ix in ticket.lineage.kept.items()}
        report["vs_dense"] = {
            "total": dense_total,
            "kept": ticket.mask.num_kept,
            "sparsity": 1.0 - ticket.mask.num_kept / dense_total,
        }
    ticket.mask.save(out_mask)
    checkpoint.save_state(out_ticket, ticket.state)
    io.write_json(out_card, card_out)
    io.write_json(out_report, report)
    io.write_text(out_params, slice_json(params))
