"""A model's identity (architecture, options, input shape, classes) and its measured costs.

The init step writes a model card (``model.json``) with this spec; later steps rebuild the same
network from it, so phases never need the dataset config to know the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from equitable_fl import cost, sparse_codec
from equitable_fl.cost import ModelCost
from equitable_fl.models import architecture_options, build_model, init_model, output_layer, prunable_names
from equitable_fl.records import ModelSize


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    input_shape: tuple[int, int, int]
    num_classes: int
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls, model_cfg: Mapping[str, Any], input_shape: tuple[int, int, int], num_classes: int
    ) -> ModelSpec:
        cfg = dict(model_cfg)
        arch = cfg.pop("arch")
        return cls(
            arch, tuple(int(v) for v in input_shape), int(num_classes), architecture_options(arch, cfg)
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        return cls(d["arch"], tuple(d["input_shape"]), int(d["num_classes"]), dict(d["options"]))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    def build(self) -> nn.Module:
        return build_model(self.arch, self.input_shape, self.num_classes, self.options)

    def init(self, seed: int) -> nn.Module:
        return init_model(self.arch, self.input_shape, self.num_classes, seed, self.options)

    @property
    def output_layer(self) -> str:
        """The classification layer's weight, pruned at its own rate."""
        return output_layer(self.arch)

    def prunable(self, model: nn.Module) -> list[str]:
        """Every conv and linear weight; how fast each shrinks is the pruning settings' business."""
        return prunable_names(model)


def measure_cost(
    model: nn.Module,
    spec: ModelSpec,
    state: Mapping[str, torch.Tensor],
    mask: Mapping[str, torch.Tensor],
    dense: nn.Module | None = None,
) -> tuple[ModelCost, ModelSize]:
    """The eligibility cost of ``state`` under ``mask`` and a size/FLOPs summary for the metrics.

    ``dense`` is the dense model of θ0's shape that totals, sizes and speed-ups are measured against;
    it defaults to ``model`` itself, which is right for an unstructured ticket (same shapes, masked) but
    not for a structured one, whose model is physically smaller than the dense one.
    """
    dense = model if dense is None else dense
    dense_state = dense.state_dict()
    layers = cost.layer_costs(model, spec.input_shape)
    payload = sparse_codec.encoded_size(state, mask)
    flops = cost.train_flops(layers, mask)
    dense_flops = cost.train_flops(cost.layer_costs(dense, spec.input_shape), None)
    kept_params = sum(int(mask[n].sum()) if n in mask else t.numel() for n, t in state.items())
    dense_prunable = prunable_names(dense)
    prunable_total = sum(dense_state[n].numel() for n in dense_prunable)
    prunable_kept = sum(int(mask[n].sum()) if n in mask else state[n].numel() for n in prunable_names(model))
    total = cost.parameter_count(dense_state)
    dense_bytes = cost.dense_bytes(dense_state)
    size = ModelSize(
        params_total=total,
        params_kept=kept_params,
        prunable_total=prunable_total,
        prunable_kept=prunable_kept,
        sparsity=1.0 - prunable_kept / prunable_total if prunable_total else 0.0,
        dense_bytes=dense_bytes,
        encoded_bytes=payload,
        size_reduction_pct=100.0 * (1.0 - payload / dense_bytes),
        train_flops_per_sample=flops,
        dense_train_flops_per_sample=dense_flops,
        flop_speedup_model=dense_flops / flops if flops else float("inf"),
    )
    return ModelCost(payload, flops, 2.0 * payload), size


def model_card(spec: ModelSpec, model: nn.Module, mask: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The ``model.json`` beside θ0 and every ticket: spec, prunable weights, sizes and FLOPs per layer."""
    state = model.state_dict()
    layers = cost.layer_costs(model, spec.input_shape)
    return {
        **spec.as_dict(),
        "prunable": list(mask),
        "params": cost.parameter_count(state),
        "dense_bytes": cost.dense_bytes(state),
        "forward_flops_per_sample": cost.forward_flops(layers),
        "train_flops_per_sample": cost.train_flops(layers),
        "layers": [vars(layer) for layer in layers],
    }
