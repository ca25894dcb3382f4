"""Model costs (positions, FLOPs, parameters, bytes) checked against hand arithmetic, and the models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from equitable_fl import cost
from equitable_fl.models import (
    OUTPUT_LAYER,
    ModelConfigError,
    architecture_options,
    build_model,
    init_model,
    prunable_names,
)
from equitable_fl.modelspec import ModelSpec

TINY = {"arch": "cnn28", "channels": [4, 8], "hidden": 16}
KERNEL = 5  # cnn28's default kernel size


def tiny_spec() -> ModelSpec:
    return ModelSpec.from_config(TINY, (1, 28, 28), 10)


def conv_out(size: int, k: int) -> int:
    """Stride-1 conv with padding k // 2."""
    return size + 2 * (k // 2) - k + 1


def test_layer_costs_positions_match_hand_computed_sizes() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    costs = cost.layer_costs(model, spec.input_shape)
    assert [c.weight for c in costs] == [
        "features.0.weight",
        "features.3.weight",
        "hidden.weight",
        OUTPUT_LAYER,
    ]

    h1 = conv_out(28, KERNEL)  # 28: padding keeps the size
    h2 = conv_out(h1 // 2, KERNEL)  # after 2×2 pooling: 14
    assert (h1, h2) == (28, 14)
    assert [c.positions for c in costs] == [h1 * h1, h2 * h2, 1, 1]

    state = model.state_dict()
    for c in costs:
        bias = c.weight.removesuffix("weight") + "bias"
        assert c.weight_numel == state[c.weight].numel()
        assert c.bias_numel == state[bias].numel()
    # the flattened feature map feeding the hidden layer: 8 channels × 7 × 7
    assert state["hidden.weight"].shape == (16, 8 * (h2 // 2) ** 2)


def test_layer_costs_removes_its_hooks() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    cost.layer_costs(model, spec.input_shape)
    for mod in model.modules():
        assert not mod._forward_hooks
    first = cost.layer_costs(model, spec.input_shape)
    assert cost.layer_costs(model, spec.input_shape) == first  # no duplicate records from stale hooks


def _hand_forward_flops(model: nn.Module, keep_fraction: dict[str, float] | None = None) -> float:
    state = model.state_dict()
    positions = {
        "features.0": conv_out(28, KERNEL) ** 2,
        "features.3": conv_out(14, KERNEL) ** 2,
        "hidden": 1,
        "output": 1,
    }
    total = 0.0
    for layer, pos in positions.items():
        w = state[f"{layer}.weight"].numel() * (keep_fraction or {}).get(f"{layer}.weight", 1.0)
        total += 2 * w * pos + state[f"{layer}.bias"].numel() * pos
    return total


def test_forward_flops_dense_equals_hand_sum() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    costs = cost.layer_costs(model, spec.input_shape)
    expected = _hand_forward_flops(model)
    # written out once for the tiny model: 2·(100·784 + 800·196 + 6272 + 160) + (4·784 + 8·196 + 16 + 10)
    assert expected == 2 * (100 * 784 + 800 * 196 + 6272 + 160) + (4 * 784 + 8 * 196 + 16 + 10)
    assert cost.forward_flops(costs) == expected
    ones = {n: torch.ones_like(model.state_dict()[n], dtype=torch.bool) for n in spec.prunable(model)}
    assert cost.forward_flops(costs, ones) == expected


def test_forward_flops_half_mask_halves_weight_part() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    state = model.state_dict()
    costs = cost.layer_costs(model, spec.input_shape)
    half = {}
    for n in spec.prunable(model):
        flat = torch.zeros(state[n].numel(), dtype=torch.bool)
        flat[::2] = True  # every layer has an even number of weights
        half[n] = flat.view(state[n].shape)
    bias_part = sum(c.bias_numel * c.positions for c in costs)
    dense = cost.forward_flops(costs)
    sparse = cost.forward_flops(costs, half)
    assert sparse - bias_part == (dense - bias_part) / 2
    assert sparse == _hand_forward_flops(model, dict.fromkeys(half, 0.5))


def test_forward_flops_masks_only_named_layers() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    costs = cost.layer_costs(model, spec.input_shape)
    none_kept = {"hidden.weight": torch.zeros(16, 392, dtype=torch.bool)}
    assert cost.forward_flops(costs) - cost.forward_flops(costs, none_kept) == 2 * 16 * 392


def test_train_flops_is_three_forward() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    costs = cost.layer_costs(model, spec.input_shape)
    assert cost.train_flops(costs) == 3 * cost.forward_flops(costs)
    mask = {"features.3.weight": torch.rand(8, 4, 5, 5) > 0.5}
    assert cost.train_flops(costs, mask) == 3 * cost.forward_flops(costs, mask)


def test_parameter_count_and_dense_bytes() -> None:
    spec = tiny_spec()
    model = spec.init(0)
    state = model.state_dict()
    params = sum(p.numel() for p in model.parameters())
    # hand count: conv 1→4 (100 + 4), conv 4→8 (800 + 8), 392→16 (6272 + 16), 16→10 (160 + 10)
    assert params == 104 + 808 + 6288 + 170
    assert cost.parameter_count(state) == params
    assert cost.dense_bytes(state) == 4 * params
    assert cost.parameter_count({"a": torch.zeros(3, 4), "b": torch.zeros(())}) == 13


# ---------------------------------------------------------------- models


def test_build_model_rejects_unknown_arch_and_option() -> None:
    with pytest.raises(ModelConfigError, match=r"unknown architecture 'resnet'.*cnn28"):
        build_model("resnet", (1, 28, 28), 10)
    with pytest.raises(ModelConfigError, match=r"'cnn28' has no option.*'dropout'"):
        build_model("cnn28", (1, 28, 28), 10, {"dropout": 0.5})
    with pytest.raises(ModelConfigError):
        ModelSpec.from_config({"arch": "cnn28", "widths": [4]}, (1, 28, 28), 10)


def test_build_model_rejects_too_many_blocks() -> None:
    with pytest.raises(ModelConfigError, match=r"below 1×1"):
        build_model("cnn28", (1, 8, 8), 10, {"channels": [2, 2, 2, 2]})


def test_architecture_options_merge_overrides_without_mutating_defaults() -> None:
    opts = architecture_options("cnn28", {"hidden": 16})
    assert opts["hidden"] == 16 and opts["kernel_size"] == 5
    assert architecture_options("cnn28")["hidden"] == 512


def test_init_model_same_seed_same_weights_and_global_rng_untouched() -> None:
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    a = init_model("cnn28", (1, 28, 28), 10, 7, {"channels": [4, 8], "hidden": 16})
    b = init_model("cnn28", (1, 28, 28), 10, 7, {"channels": [4, 8], "hidden": 16})
    c = init_model("cnn28", (1, 28, 28), 10, 8, {"channels": [4, 8], "hidden": 16})
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all(not torch.equal(sa[k], sc[k]) for k in sa)
    # and the global stream continues as if init_model had never run
    expected_next = torch.rand(3, generator=torch.Generator().set_state(before))
    assert torch.equal(torch.rand(3), expected_next)


def test_modelspec_init_matches_init_model() -> None:
    spec = tiny_spec()
    direct = init_model("cnn28", (1, 28, 28), 10, 3, {"channels": [4, 8], "hidden": 16}).state_dict()
    via_spec = spec.init(3).state_dict()
    assert all(torch.equal(direct[k], via_spec[k]) for k in direct)
    assert ModelSpec.from_dict(spec.as_dict()) == spec


def test_prunable_names_are_conv_and_linear_weights() -> None:
    model = tiny_spec().init(0)
    names = prunable_names(model)
    assert names == ["features.0.weight", "features.3.weight", "hidden.weight", OUTPUT_LAYER]
    assert not any(n.endswith("bias") for n in names)
    assert prunable_names(model, include_output=False) == names[:-1]
    mods = dict(model.named_modules())
    for n in names:
        assert isinstance(mods[n.removesuffix(".weight")], nn.Conv2d | nn.Linear)


@pytest.mark.parametrize(
    ("arch", "shape", "options", "n_convs"),
    [
        ("cnn32", (3, 32, 32), {"channels": [4, 8, 8], "hidden": 16}, 3),
        ("cnn_rgb", (3, 64, 64), {"channels": [4, 4, 8, 8], "hidden": 16}, 4),
        ("cnn_rgb", (3, 48, 48), {"channels": [4, 4, 8, 8], "hidden": 16}, 4),
        ("cnn_rgb", (3, 48, 48), {}, 4),  # default sizes build too
    ],
)
def test_other_architectures_build_and_run(arch: str, shape, options, n_convs: int) -> None:
    model = init_model(arch, shape, 7, 0, options)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    names = prunable_names(model)
    assert len(names) == n_convs + 2
    costs = cost.layer_costs(model, shape)
    assert [c.weight for c in costs] == names
    # conv positions halve (size // 2) per block: padding keeps the conv output at the input size
    size = shape[1]
    for c in costs[:n_convs]:
        assert c.positions == size * size
        size //= 2
    assert all(c.positions == 1 for c in costs[n_convs:])
    if arch == "cnn_rgb":  # pooled down to at most 4×4, never blown up (48 → 3×3 after 4 blocks)
        last_ch = model.state_dict()[names[n_convs - 1]].shape[0]
        side = min(4, shape[1] // 2**n_convs)
        assert model.state_dict()["hidden.weight"].shape[1] == last_ch * side * side
