"""Lottery-ticket pruning between phases: magnitude pruning strategies, rewinding, and the ticket.

Strategies live in a registry (name → function) so that new ones plug in from the config. Each takes
the trained weights and the current mask and removes ``rate`` of the *surviving* weights of every
prunable tensor (layer-wise) or of all of them pooled (global); the output layer, named by the model's
spec, is pruned at its own rate (``rate × output_rate_factor``, 0 leaves it dense). Ties are broken by
position, so the same weights always give the same mask.

A pruning step returns a :class:`Ticket`: the spec of the model to train next, its rewound weights and
its mask. An unstructured ticket keeps the spec and shapes of θ0. A structured one
(``structure="channels"``, see :mod:`equitable_fl.structured`) removes whole filters and hidden units
instead and is a physically smaller dense model (all-ones mask) with the same parameter budget as the
layer-wise unstructured ticket; the next phase builds its model from the ticket's spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from equitable_fl import structured
from equitable_fl.mask import Mask, MaskError
from equitable_fl.models import OUTPUT_LAYER
from equitable_fl.modelspec import ModelSpec
from equitable_fl.structured import Lineage

STRUCTURES = ("unstructured", "channels")


@dataclass(frozen=True)
class PruneSettings:
    """One pruning step's knobs; the prune stage passes every one from its config slice.

    ``structure`` and ``norm`` default to what a direct library call has always meant (unstructured
    magnitude pruning); the config's defaults are written in ``schema.yaml`` only.
    """

    rate: float
    output_rate_factor: float
    output_layer: str = OUTPUT_LAYER  # the prune stage passes the ticket spec's own output layer
    structure: str = "unstructured"
    norm: str = "l1"  # channels only: how a filter's or hidden unit's weights are ranked

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(
                f"unknown pruning.structure {self.structure!r}; choose one of {list(STRUCTURES)}"
            )
        if self.norm not in structured.NORMS:
            raise ValueError(f"unknown pruning.norm {self.norm!r}; choose one of {list(structured.NORMS)}")
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"pruning rate must be in [0, 1), got {self.rate}")
        if self.output_rate_factor < 0 or self.rate * self.output_rate_factor >= 1.0:
            raise ValueError(
                f"pruning.output_rate_factor {self.output_rate_factor} must be >= 0 and keep "
                f"rate × factor below 1 (rate is {self.rate})"
            )

    def rate_for(self, name: str) -> float:
        return self.rate * self.output_rate_factor if name == self.output_layer else self.rate


@dataclass(frozen=True)
class Ticket:
    """What phase k+1 trains: the model spec, its (rewound) weights and the mask that keeps them.

    ``lineage`` (structured tickets only) says which of θ0's units the smaller model still has.
    """

    spec: ModelSpec
    state: dict[str, torch.Tensor]
    mask: Mask
    lineage: Lineage | None = None


Strategy = Callable[[Mapping[str, torch.Tensor], Mask, PruneSettings], Mask]
STRATEGIES: dict[str, Strategy] = {}


def register(name: str) -> Callable[[Strategy], Strategy]:
    def deco(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn

    return deco


def _drop_smallest(scores: torch.Tensor, keep: torch.Tensor, rate: float) -> torch.Tensor:
    """Return ``keep`` with round(rate × survivors) of the smallest-score survivors removed."""
    flat_keep = keep.flatten()
    n_drop = round(rate * int(flat_keep.sum()))
    if n_drop == 0:
        return keep.clone()
    masked = torch.where(flat_keep, scores.flatten(), torch.full_like(scores.flatten(), float("inf")))
    order = torch.argsort(masked, stable=True)
    new_keep = flat_keep.clone()
    new_keep[order[:n_drop]] = False
    return new_keep.view_as(keep)


@register("layerwise")
def prune_layerwise(weights: Mapping[str, torch.Tensor], mask: Mask, settings: PruneSettings) -> Mask:
    return Mask(
        {
            name: _drop_smallest(weights[name].abs().float(), keep, settings.rate_for(name))
            for name, keep in mask.items()
        }
    )


@register("global")
def prune_global(weights: Mapping[str, torch.Tensor], mask: Mask, settings: PruneSettings) -> Mask:
    """Pool all prunable weights but the output layer and remove the smallest ``rate`` of survivors."""
    pooled = [n for n in mask if n != settings.output_layer]
    scores = torch.cat([weights[n].abs().float().flatten() for n in pooled])
    keep = torch.cat([mask[n].flatten() for n in pooled])
    new_keep = _drop_smallest(scores, keep, settings.rate)
    out: dict[str, torch.Tensor] = {}
    offset = 0
    for n in pooled:
        size = mask[n].numel()
        out[n] = new_keep[offset : offset + size].view_as(mask[n])
        offset += size
    if settings.output_layer in mask:
        out[settings.output_layer] = _drop_smallest(
            weights[settings.output_layer].abs().float(),
            mask[settings.output_layer],
            settings.rate_for(settings.output_layer),
        )
    return Mask(out)


def prune(strategy: str, weights: Mapping[str, torch.Tensor], mask: Mask, settings: PruneSettings) -> Mask:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pruning strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    mask.check_fits(weights)
    return STRATEGIES[strategy](weights, mask, settings)


def rewind(rewind_state: Mapping[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    """The lottery ticket's weights: every parameter back to its rewind value, pruned ones set to zero."""
    mask.check_fits(rewind_state)
    state = {name: t.detach().clone() for name, t in rewind_state.items()}
    mask.apply_(state)
    return state


def unstructured_budget(mask: Mask, settings: PruneSettings) -> int:
    """Prunable weights the layer-wise unstructured ticket keeps: the budget a structured step aims at."""
    budget = 0
    for name, keep in mask.items():
        survivors = int(keep.sum())
        budget += survivors - round(settings.rate_for(name) * survivors)
    return budget


def make_ticket(
    strategy: str,
    spec: ModelSpec,
    trained: Mapping[str, torch.Tensor],
    mask: Mask,
    rewind_state: Mapping[str, torch.Tensor],
    settings: PruneSettings,
    lineage: Lineage | None = None,
) -> Ticket:
    """Prune ``trained`` under ``mask`` and rewind the survivors: the next phase's ticket.

    ``lineage`` is the trained model's own (None: it has θ0's shape); ``rewind_state`` always has θ0's
    shape and is cut to the units the ticket keeps.
    """
    if lineage is not None:
        rewind_state = lineage.cut(rewind_state)
    if settings.structure == "unstructured":
        new_mask = prune(strategy, trained, mask, settings)
        return Ticket(spec, rewind(rewind_state, new_mask), new_mask, lineage)
    mask.check_fits(trained)
    if mask.density != 1.0:
        raise MaskError(
            f"a channels step prunes a dense-shaped ticket, but the mask is {mask.sparsity:.1%} sparse: "
            "was pruning.structure changed between steps? rerun from phase 1"
        )
    kept, narrow = structured.select_units(spec, trained, unstructured_budget(mask, settings), settings.norm)
    new_lineage = (lineage or Lineage.identity(spec)).then(kept)
    state = structured.slice_state(rewind_state, structured.chain(spec), kept)
    structured.check_shapes(narrow, state)
    return Ticket(narrow, state, Mask.ones_like(state, mask), new_lineage)
