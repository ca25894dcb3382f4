"""Lottery-ticket pruning: layer-wise and global magnitude pruning, settings, rewinding, and the stage."""

from __future__ import annotations

import json

import pytest
import torch

from equitable_fl import checkpoint
from equitable_fl.mask import Mask, MaskError
from equitable_fl.models import OUTPUT_LAYER
from equitable_fl.modelspec import ModelSpec
from equitable_fl.pruning import STRATEGIES, PruneSettings, prune, rewind
from equitable_fl.stages.prune import prune_and_rewind

TINY = {"arch": "cnn28", "channels": [4, 8], "hidden": 16}


def tiny_spec() -> ModelSpec:
    return ModelSpec.from_config(TINY, (1, 28, 28), 10)


def bools(bits: list[int]) -> torch.Tensor:
    return torch.tensor(bits, dtype=torch.bool)


def random_layers(seed: int, sizes: dict[str, tuple[int, ...]], scales: dict[str, float] | None = None):
    gen = torch.Generator().manual_seed(seed)
    scales = scales or {}
    return {n: torch.randn(*shape, generator=gen) * scales.get(n, 1.0) for n, shape in sizes.items()}


# ---------------------------------------------------------------- layer-wise


def test_layerwise_hand_made_removes_smallest_survivors() -> None:
    # index:          0     1     2     3     4     5      6     7
    w = torch.tensor([0.9, -0.1, 0.5, -0.7, 0.3, 0.05, -0.8, 0.2])
    old = bools([1, 1, 1, 1, 1, 0, 1, 1])  # 0.05 already pruned: must not count as a removal
    # 7 survivors × 0.3 = 2.1 → remove 2: |-0.1| (idx 1) and |0.2| (idx 7)
    new = prune(
        "layerwise",
        {"hidden.weight": w},
        Mask({"hidden.weight": old}),
        PruneSettings(rate=0.3, output_rate_factor=0.5),
    )
    assert new["hidden.weight"].tolist() == [True, False, True, True, True, False, True, False]


def test_layerwise_previously_pruned_stay_pruned_even_if_large() -> None:
    w = torch.tensor([[5.0, 0.1, 0.2], [0.3, 9.0, 0.4]])
    old = bools([[0, 1, 1], [1, 0, 1]])  # the largest weights were pruned earlier
    new = prune(
        "layerwise", {"x.weight": w}, Mask({"x.weight": old}), PruneSettings(rate=0.5, output_rate_factor=0.5)
    )
    # 4 survivors × 0.5 → drop 0.1 and 0.2
    assert new["x.weight"].tolist() == [[False, False, False], [True, False, True]]


def test_layerwise_each_layer_keeps_one_minus_rate_of_survivors() -> None:
    sizes = {"a.weight": (37, 11), "b.weight": (8, 4, 3, 3), "c.weight": (101,)}
    weights = random_layers(0, sizes)
    gen = torch.Generator().manual_seed(1)
    old = Mask({n: torch.rand(*s, generator=gen) > 0.3 for n, s in sizes.items()})
    rate = 0.35
    new = prune("layerwise", weights, old, PruneSettings(rate=rate, output_rate_factor=0.5))
    for n in sizes:
        survivors = int(old[n].sum())
        kept = int(new[n].sum())
        assert kept == survivors - round(rate * survivors), n
        assert not bool((new[n] & ~old[n]).any()), f"{n}: a pruned weight came back"
        removed = old[n] & ~new[n]
        mags = weights[n].abs()
        assert float(mags[removed].max()) <= float(mags[new[n]].min()), n


def test_output_layer_pruned_at_rate_times_factor() -> None:
    weights = random_layers(2, {"hidden.weight": (40,), OUTPUT_LAYER: (40,)})
    old = Mask.ones_like(weights, list(weights))
    new = prune("layerwise", weights, old, PruneSettings(rate=0.5, output_rate_factor=0.5))
    assert int(new["hidden.weight"].sum()) == 20  # 40 − 0.5 × 40
    assert int(new[OUTPUT_LAYER].sum()) == 30  # 40 − 0.25 × 40


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_output_rate_factor_zero_keeps_output_dense(scope: str) -> None:
    weights = random_layers(3, {"hidden.weight": (50,), OUTPUT_LAYER: (10, 5)})
    old = Mask.ones_like(weights, list(weights))
    new = prune(scope, weights, old, PruneSettings(rate=0.6, output_rate_factor=0.0))
    assert bool(new[OUTPUT_LAYER].all())
    assert int(new["hidden.weight"].sum()) == 20


def test_rate_for() -> None:
    s = PruneSettings(rate=0.4, output_rate_factor=0.25)
    assert s.rate_for("hidden.weight") == pytest.approx(0.4)
    assert s.rate_for(OUTPUT_LAYER) == pytest.approx(0.1)


# ---------------------------------------------------------------- global


def test_global_hand_made_pools_layers() -> None:
    weights = {
        "a.weight": torch.tensor([0.1, 0.9]),
        "b.weight": torch.tensor([0.2, 0.3, 0.8, 0.05]),
        OUTPUT_LAYER: torch.tensor([0.01, 0.02, 0.5, 0.6]),
    }
    old = Mask(
        {"a.weight": bools([1, 1]), "b.weight": bools([1, 1, 1, 0]), OUTPUT_LAYER: bools([1, 1, 1, 1])}
    )
    # pooled survivors 0.1, 0.9, 0.2, 0.3, 0.8 → 5 × 0.4 = 2 removed: 0.1 and 0.2.
    # output layer on its own at 0.4 × 0.5 = 0.2 → 4 × 0.2 = 0.8 → 1 removed: 0.01.
    new = prune("global", weights, old, PruneSettings(rate=0.4, output_rate_factor=0.5))
    assert new["a.weight"].tolist() == [False, True]
    assert new["b.weight"].tolist() == [False, True, True, False]
    assert new[OUTPUT_LAYER].tolist() == [False, True, True, True]


def test_global_threshold_is_global_and_larger_layers_keep_more() -> None:
    sizes = {"small.weight": (60, 5), "large.weight": (300,), "mid.weight": (4, 3, 5, 5), OUTPUT_LAYER: (30,)}
    scales = {"small.weight": 0.1, "large.weight": 1.0, "mid.weight": 0.4, OUTPUT_LAYER: 0.01}
    weights = random_layers(4, sizes, scales)
    gen = torch.Generator().manual_seed(5)
    old = Mask({n: torch.rand(*s, generator=gen) > 0.2 for n, s in sizes.items()})
    rate = 0.5
    new = prune("global", weights, old, PruneSettings(rate=rate, output_rate_factor=0.5))

    pooled = [n for n in sizes if n != OUTPUT_LAYER]
    removed_mags = torch.cat([weights[n].abs()[old[n] & ~new[n]] for n in pooled])
    kept_mags = torch.cat([weights[n].abs()[new[n]] for n in pooled])
    assert float(removed_mags.max()) <= float(kept_mags.min())

    survivors = sum(int(old[n].sum()) for n in pooled)
    assert len(removed_mags) == round(rate * survivors)
    for n in sizes:
        assert not bool((new[n] & ~old[n]).any()), n

    density = {n: int(new[n].sum()) / int(old[n].sum()) for n in pooled}
    assert density["large.weight"] > density["mid.weight"] > density["small.weight"]

    # the tiny output layer is not pooled (it would be wiped out): pruned on its own at 0.25
    out_surv = int(old[OUTPUT_LAYER].sum())
    assert int(new[OUTPUT_LAYER].sum()) == out_surv - round(0.25 * out_surv)


# ---------------------------------------------------------------- iteration, ties, registry, settings


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_pruning_twice_at_half_gives_three_quarters_sparsity(scope: str) -> None:
    sizes = {"a.weight": (200,), "b.weight": (10, 30)}
    mask = Mask.ones_like(random_layers(0, sizes), list(sizes))
    for seed in (10, 11):  # retrained weights differ between phases
        mask = prune(scope, random_layers(seed, sizes), mask, PruneSettings(rate=0.5, output_rate_factor=0.5))
    assert mask.sparsity == pytest.approx(0.75, abs=0.005)


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_ties_all_equal_weights_remove_exactly_k_deterministically(scope: str) -> None:
    weights = {"a.weight": torch.full((10,), 0.5), "b.weight": torch.full((2, 5), -0.5)}
    old = Mask.ones_like(weights, list(weights))
    s = PruneSettings(rate=0.3, output_rate_factor=0.5)
    first = prune(scope, weights, old, s)
    second = prune(scope, {n: t.clone() for n, t in weights.items()}, old, s)
    for n in weights:
        assert torch.equal(first[n], second[n])
    # layer-wise: 10 − round(3.0) per layer; global: 20 − round(6.0) pooled
    assert first.num_kept == 14
    if scope == "layerwise":
        # ties broken by position: the first 3 entries of each layer go
        assert first["a.weight"].tolist() == [False] * 3 + [True] * 7
        assert first["b.weight"].flatten().tolist() == [False] * 3 + [True] * 7
    else:
        # pooled in name order, ties by position: the first 6 pooled entries go (all of them in a)
        assert first["a.weight"].tolist() == [False] * 6 + [True] * 4
        assert bool(first["b.weight"].all())


def test_same_random_input_same_mask() -> None:
    sizes = {"a.weight": (64,), "b.weight": (8, 8)}
    weights = random_layers(7, sizes)
    weights["a.weight"][::4] = 0.25  # plenty of ties
    old = Mask.ones_like(weights, list(sizes))
    for scope in STRATEGIES:
        m1 = prune(scope, weights, old, PruneSettings(rate=0.45, output_rate_factor=0.5))
        m2 = prune(scope, weights, old, PruneSettings(rate=0.45, output_rate_factor=0.5))
        assert all(torch.equal(m1[n], m2[n]) for n in sizes)


def test_rate_zero_keeps_mask() -> None:
    weights = random_layers(8, {"a.weight": (30,)})
    old = Mask({"a.weight": torch.arange(30) % 3 != 0})
    new = prune("layerwise", weights, old, PruneSettings(rate=0.0, output_rate_factor=0.5))
    assert torch.equal(new["a.weight"], old["a.weight"])


def test_unknown_strategy_raises() -> None:
    weights = random_layers(0, {"a.weight": (4,)})
    with pytest.raises(ValueError, match=r"unknown pruning strategy 'magic'.*global.*layerwise"):
        prune(
            "magic",
            weights,
            Mask.ones_like(weights, ["a.weight"]),
            PruneSettings(rate=0.5, output_rate_factor=0.5),
        )


def test_registry_has_both_strategies() -> None:
    assert {"layerwise", "global"} <= set(STRATEGIES)
    assert all(callable(fn) for fn in STRATEGIES.values())


def test_prune_checks_mask_fits_weights() -> None:
    weights = {"a.weight": torch.randn(4, 3)}
    with pytest.raises(MaskError, match=r"'a.weight'"):
        prune(
            "layerwise",
            weights,
            Mask({"a.weight": torch.ones(3, 4)}),
            PruneSettings(rate=0.5, output_rate_factor=0.5),
        )


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1])
def test_prune_settings_rejects_bad_rate(rate: float) -> None:
    with pytest.raises(ValueError, match=r"pruning rate"):
        PruneSettings(rate=rate, output_rate_factor=0.5)


def test_prune_settings_rejects_negative_or_too_large_output_factor() -> None:
    with pytest.raises(ValueError, match=r"output_rate_factor"):
        PruneSettings(rate=0.5, output_rate_factor=-0.5)
    with pytest.raises(ValueError, match=r"output_rate_factor"):
        PruneSettings(rate=0.5, output_rate_factor=2.5)


def test_prune_settings_rejects_output_rate_of_one() -> None:
    with pytest.raises(ValueError, match=r"output_rate_factor"):
        PruneSettings(rate=0.5, output_rate_factor=2.0)


# ---------------------------------------------------------------- rewind


def test_rewind_survivors_equal_theta0_pruned_are_zero_biases_kept() -> None:
    model = tiny_spec().init(0)
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    pristine = {k: v.clone() for k, v in theta0.items()}
    names = tiny_spec().prunable(model)
    gen = torch.Generator().manual_seed(0)
    mask = Mask({n: torch.rand(theta0[n].shape, generator=gen) > 0.6 for n in names})
    mask_copy = {n: m.clone() for n, m in mask.items()}

    ticket = rewind(theta0, mask)

    assert set(ticket) == set(theta0)
    for name, t in ticket.items():
        if name in mask:
            m = mask[name]
            assert torch.equal(t[m], theta0[name][m])
            assert bool((t[~m] == 0).all())
        else:
            assert torch.equal(t, theta0[name]), name  # biases come back exactly
    for name in theta0:  # inputs not mutated
        assert torch.equal(theta0[name], pristine[name])
    for name in mask:
        assert torch.equal(mask[name], mask_copy[name])
    assert ticket["hidden.weight"].data_ptr() != theta0["hidden.weight"].data_ptr()


def test_rewind_checks_fit() -> None:
    with pytest.raises(MaskError, match=r"'missing.weight'"):
        rewind({"a.weight": torch.ones(2)}, Mask({"missing.weight": torch.ones(2)}))


# ---------------------------------------------------------------- the pruning stage, end to end


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_prune_and_rewind_stage(tmp_path, scope: str) -> None:
    spec = tiny_spec()
    theta0 = spec.init(0).state_dict()
    names = spec.prunable(spec.init(0))
    # the previous phase's mask (≈70% dense) and trained weights that respect it
    gen = torch.Generator().manual_seed(3)
    old_mask = Mask({n: torch.rand(theta0[n].shape, generator=gen) > 0.3 for n in names})
    trained = {k: v.clone() for k, v in spec.init(1).state_dict().items()}
    old_mask.apply_(trained)

    paths = {k: tmp_path / f"{k}.safetensors" for k in ("trained", "mask_in", "rewind", "mask_out", "ticket")}
    checkpoint.save_state(paths["trained"], trained)
    old_mask.save(paths["mask_in"])
    checkpoint.save_state(paths["rewind"], theta0)
    report_path = tmp_path / "report.json"
    card_in, card_out, params_out = tmp_path / "card.json", tmp_path / "ticket.json", tmp_path / "params.json"
    card_in.write_text(json.dumps(spec.as_dict()))
    rate, factor = 0.4, 0.5
    params = {
        "rate": rate,
        "output_rate_factor": factor,
        "scope": scope,
        "structure": "unstructured",
        "norm": "l1",
    }

    prune_and_rewind(
        trained_weights=str(paths["trained"]),
        trained_mask=str(paths["mask_in"]),
        trained_card=str(card_in),
        rewind_weights=str(paths["rewind"]),
        params=params,
        out_mask=str(paths["mask_out"]),
        out_ticket=str(paths["ticket"]),
        out_card=str(card_out),
        out_report=str(report_path),
        out_params=str(params_out),
    )
    # the ticket's model card names the model the next phase builds; params.json what this step ran with
    card = json.loads(card_out.read_text())
    assert ModelSpec.from_dict(card) == spec
    assert card["prunable"] == sorted(names) and card["params"] == sum(t.numel() for t in theta0.values())
    assert json.loads(params_out.read_text()) == params

    new_mask = Mask.load(paths["mask_out"])
    ticket = checkpoint.load_state(paths["ticket"], theta0)
    report = json.loads(report_path.read_text())

    assert list(new_mask) == sorted(names)
    for n in names:
        assert not bool((new_mask[n] & ~old_mask[n]).any()), n
    # kept counts follow the strategy's arithmetic
    out_surv = int(old_mask[OUTPUT_LAYER].sum())
    assert int(new_mask[OUTPUT_LAYER].sum()) == out_surv - round(rate * factor * out_surv)
    hidden = [n for n in names if n != OUTPUT_LAYER]
    if scope == "layerwise":
        for n in hidden:
            s = int(old_mask[n].sum())
            assert int(new_mask[n].sum()) == s - round(rate * s), n
    else:
        s = sum(int(old_mask[n].sum()) for n in hidden)
        assert sum(int(new_mask[n].sum()) for n in hidden) == s - round(rate * s)

    # the ticket is rewind ∘ mask: θ0 where kept, exact zeros where pruned, biases = θ0
    for name, t in ticket.items():
        expected = theta0[name] * new_mask[name] if name in new_mask else theta0[name]
        assert torch.equal(t, expected), name
        if name in new_mask:
            assert bool((t[~new_mask[name]] == 0).all())

    # the report agrees with the mask it describes
    total = sum(new_mask[n].numel() for n in names)
    kept = sum(int(new_mask[n].sum()) for n in names)
    assert report["total"] == total and report["kept"] == kept
    assert report["density"] == pytest.approx(kept / total)
    assert report["sparsity"] == pytest.approx(1 - kept / total)
    assert report["previous_density"] == pytest.approx(sum(int(old_mask[n].sum()) for n in names) / total)
    assert report["rate"] == rate and report["scope"] == scope
    assert set(report["layers"]) == set(names)
    for n in names:
        layer = report["layers"][n]
        assert layer["total"] == new_mask[n].numel()
        assert layer["kept"] == int(new_mask[n].sum())
        assert layer["density"] == pytest.approx(layer["kept"] / layer["total"])
