"""Structured tickets: whole conv filters and hidden units removed, the ticket a narrower dense model.

Unstructured masks save no wall-clock time on CPUs (dense kernels multiply the zeros too); a model with
fewer filters and hidden units is smaller in every tensor and runs faster with the same kernels. This
module holds the mechanics: which units a layer keeps, how many, and how weights are cut to them.

**Units.** A :class:`~equitable_fl.models.ConvNet` is a chain of layers; the *units* of a conv layer
are its output filters, those of the hidden linear layer its hidden neurons. The first layer's input
channels and the output layer's classes are never removed. Each layer ranks its units by the L1 or L2
norm of the unit's incoming weights in the trained model (filter ``w[o]``, hidden row ``w[j]``) and
keeps the strongest (ties: the lower index), in their original order.

**Budget.** Removing a unit also removes the next layer's input slice, so a unit's worth of
parameters depends on the neighbours' widths. The caller gives a target count of prunable weights
(the prune step passes the count the layer-wise unstructured ticket at the same settings keeps, so
both tickets have the same parameter budget). :func:`choose_widths` first gives every layer the same
keep fraction q (``round(q·n)`` units, at least 1) with q chosen so the count is closest to the target,
then moves single units in or out while that brings the count closer: the result is within half a
unit's worth of the target (unless even one unit per layer exceeds it).

**Slicing.** A layer keeps rows ``kept[layer]`` of its weight and bias and the input columns of the
previous layer's kept units; after the conv stack the hidden layer's input is the flattened map
``channel × positions``, so channel c owns columns ``c·P … c·P+P-1``. A :class:`Lineage` records which of
θ0's units a ticket still has, so every later step rewinds by slicing θ0 (or the late-rewind point)
directly and a ticket of a ticket composes the indices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from equitable_fl.modelspec import ModelSpec

NORMS = ("l1", "l2")


class StructureError(ValueError):
    """A model or state that structured pruning cannot cut (unknown layer, inconsistent shapes)."""


@dataclass(frozen=True)
class Layer:
    """One conv or linear layer of the chain, as far as widths go.

    ``spread`` is how many weights of a row one input unit owns: the kernel area for a conv layer,
    the flattened positions per channel for the hidden layer after the conv stack, 1 otherwise.
    """

    module: str
    conv: bool
    out_units: int
    in_units: int
    spread: int
    flattened: bool  # a linear layer whose input is the flattened conv map


def shapes(spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state dict of ``spec``'s model on the meta device: names and shapes, no memory, no init."""
    with torch.device("meta"):
        return spec.build().state_dict()


def check_shapes(spec: ModelSpec, state: Mapping[str, torch.Tensor]) -> None:
    """Raise unless ``state`` has exactly the names and shapes of ``spec``'s model."""
    want = {n: tuple(t.shape) for n, t in shapes(spec).items()}
    got = {n: tuple(t.shape) for n, t in state.items()}
    if want != got:
        raise StructureError(f"cut weights {got} do not fit the narrower model {want}")


def chain(spec: ModelSpec) -> list[Layer]:
    """The conv/linear layers of ``spec``'s model in forward order; the last one is the output layer."""
    with torch.device("meta"):
        model = spec.build()
    layers: list[Layer] = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            layers.append(Layer(name, True, mod.out_channels, mod.in_channels, kh * kw, False))
        elif isinstance(mod, nn.Linear):
            prev = layers[-1] if layers else None
            if prev is not None and prev.conv:
                if mod.in_features % prev.out_units:
                    raise StructureError(
                        f"{name} takes {mod.in_features} inputs, not a multiple of {prev.module}'s"
                    )
                spread = mod.in_features // prev.out_units
                layers.append(Layer(name, False, mod.out_features, prev.out_units, spread, True))
            else:
                layers.append(Layer(name, False, mod.out_features, mod.in_features, 1, False))
    if not layers or f"{layers[-1].module}.weight" != spec.output_layer:
        raise StructureError(
            f"{spec.arch}: the last conv/linear layer is not the output layer {spec.output_layer}"
        )
    return layers


def weight_count(layers: list[Layer], widths: Mapping[str, int]) -> int:
    """Prunable weights (conv and linear weights, no biases) of the chain at ``widths``."""
    total, prev = 0, None
    for layer in layers:
        n_in = layer.in_units if prev is None else widths[prev]
        n_out = widths.get(layer.module, layer.out_units)
        total += n_in * n_out * layer.spread
        prev = layer.module
    return total


def _uniform(layers: list[Layer], q: float) -> dict[str, int]:
    return {la.module: min(la.out_units, max(1, round(q * la.out_units))) for la in layers[:-1]}


def choose_widths(layers: list[Layer], target: int) -> dict[str, int]:
    """Units to keep per prunable layer so the weight count is as close to ``target`` as one unit allows."""
    candidates = sorted({j / la.out_units for la in layers[:-1] for j in range(1, la.out_units + 1)})
    widths = min(
        (_uniform(layers, q) for q in candidates),
        key=lambda w: (abs(weight_count(layers, w) - target), -weight_count(layers, w)),
    )
    best = abs(weight_count(layers, widths) - target)
    while True:
        moves = [
            {**widths, la.module: widths[la.module] + step}
            for la in layers[:-1]
            for step in (-1, 1)
            if 1 <= widths[la.module] + step <= la.out_units
        ]
        if not moves:
            return widths
        move = min(moves, key=lambda w: abs(weight_count(layers, w) - target))
        error = abs(weight_count(layers, move) - target)
        if error >= best:
            return widths
        widths, best = move, error


def unit_norms(
    trained: Mapping[str, torch.Tensor], layers: list[Layer], norm: str
) -> dict[str, torch.Tensor]:
    """Per prunable layer, the L1 or L2 norm of each unit's incoming weights."""
    if norm not in NORMS:
        raise ValueError(f"unknown pruning.norm {norm!r}; choose one of {list(NORMS)}")
    p = 1 if norm == "l1" else 2
    return {
        la.module: trained[f"{la.module}.weight"].detach().float().flatten(1).norm(p=p, dim=1)
        for la in layers[:-1]
    }


def strongest(norms: torch.Tensor, k: int) -> list[int]:
    """Indices of the ``k`` largest norms (ties: the lower index), in ascending order."""
    order = torch.argsort(-norms, stable=True)
    return sorted(int(i) for i in order[:k])


def slice_state(
    state: Mapping[str, torch.Tensor], layers: list[Layer], kept: Mapping[str, list[int]]
) -> dict[str, torch.Tensor]:
    """Weights and biases cut to the ``kept`` units (indices into ``state``'s layers) and their inputs."""
    out: dict[str, torch.Tensor] = {}
    prev: Layer | None = None
    for layer in layers:
        weight, bias = f"{layer.module}.weight", f"{layer.module}.bias"
        rows = torch.tensor(kept.get(layer.module, range(layer.out_units)), dtype=torch.long)
        w = state[weight].index_select(0, rows)
        if prev is not None:
            cols = torch.tensor(kept[prev.module], dtype=torch.long)
            if layer.flattened:
                cols = (cols[:, None] * layer.spread + torch.arange(layer.spread)).flatten()
            w = w.index_select(1, cols)
        out[weight] = w.clone()
        if bias in state:
            out[bias] = state[bias].index_select(0, rows).clone()
        prev = layer
    unknown = sorted(set(state) - set(out))
    if unknown:
        raise StructureError(
            f"structured pruning cannot cut {unknown}: only conv and linear layers are supported"
        )
    return out


def narrow_spec(spec: ModelSpec, layers: list[Layer], widths: Mapping[str, int]) -> ModelSpec:
    """``spec`` with ``channels`` and ``hidden`` set to the kept widths: the model the ticket builds."""
    convs = [widths[la.module] for la in layers[:-1] if la.conv]
    hidden = [widths[la.module] for la in layers[:-1] if not la.conv]
    if len(convs) != len(spec.options.get("channels", [])) or len(hidden) != 1:
        raise StructureError(f"{spec.arch}: expected one width per conv block and one hidden layer")
    return ModelSpec(
        spec.arch,
        spec.input_shape,
        spec.num_classes,
        {**spec.options, "channels": convs, "hidden": hidden[0]},
    )


@dataclass(frozen=True)
class Lineage:
    """Which of θ0's units a structured ticket still has: ``kept[layer]`` indexes θ0's ``dense`` model.

    Rewinding slices θ0 (or the late-rewind point) with it, and the next structured step composes its
    own choice (indices into this ticket) with it, so phase 3 starts from a ticket of a ticket.
    """

    dense: ModelSpec
    kept: dict[str, tuple[int, ...]]

    @classmethod
    def identity(cls, spec: ModelSpec) -> Lineage:
        return cls(spec, {la.module: tuple(range(la.out_units)) for la in chain(spec)[:-1]})

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Lineage | None:
        """The lineage a ticket's model card carries (``structured``), None for a dense-shaped model."""
        entry = card.get("structured")
        if entry is None:
            return None
        return cls(
            ModelSpec.from_dict(entry["dense"]), {m: tuple(ix) for m, ix in entry["kept_units"].items()}
        )

    def as_card(self) -> dict[str, Any]:
        return {"dense": self.dense.as_dict(), "kept_units": {m: list(ix) for m, ix in self.kept.items()}}

    def then(self, kept_now: Mapping[str, list[int]]) -> Lineage:
        """This lineage followed by a step that keeps ``kept_now`` (indices into this ticket's units)."""
        return Lineage(self.dense, {m: tuple(self.kept[m][j] for j in kept_now[m]) for m in self.kept})

    def cut(self, dense_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state of θ0's shape (θ0, the late-rewind point) cut to the units this lineage kept."""
        return slice_state(dense_state, chain(self.dense), {m: list(ix) for m, ix in self.kept.items()})


def select_units(
    spec: ModelSpec, trained: Mapping[str, torch.Tensor], target: int, norm: str
) -> tuple[dict[str, list[int]], ModelSpec]:
    """The units each layer of ``spec``'s trained model keeps (by norm) and the narrower spec they make."""
    layers = chain(spec)
    widths = choose_widths(layers, target)
    norms = unit_norms(trained, layers, norm)
    kept = {m: strongest(norms[m], k) for m, k in widths.items()}
    return kept, narrow_spec(spec, layers, widths)
