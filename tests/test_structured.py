"""Structured tickets: units chosen by norm, weights cut consistently, the parameter budget, the stage,
tickets of tickets, and a real Snakemake run with ``pruning.structure: channels``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from equitable_fl import checkpoint
from equitable_fl.config import ConfigError, Experiment
from equitable_fl.mask import Mask, MaskError
from equitable_fl.modelspec import ModelSpec
from equitable_fl.pruning import PruneSettings, make_ticket, unstructured_budget
from equitable_fl.stages.prune import prune_and_rewind
from equitable_fl.structured import Layer, Lineage, chain, narrow_spec, slice_state, strongest, unit_norms

# tests/ is on sys.path (pytest's rootdir insertion): tests/workflow is importable as `workflow`
from workflow.snakemake_runner import run, tiny_config, write_config  # isort: skip

TINY = ModelSpec.from_config({"arch": "cnn28", "channels": [4, 8], "hidden": 16}, (1, 28, 28), 10)
FEDAVG = ModelSpec.from_config({"arch": "cnn28"}, (1, 28, 28), 10)
CIFAR = ModelSpec.from_config({"arch": "cnn32", "channels": [4, 6, 8], "hidden": 12}, (3, 32, 32), 10)
# four blocks and an adaptive pool: 96 → 6×6 maps averaged down to 4×4 before the hidden layer
RGB = ModelSpec.from_config(
    {"arch": "cnn_rgb", "channels": [3, 5, 6, 7], "hidden": 9, "pool_to": 4}, (3, 96, 96), 4
)


def channels(rate: float, factor: float = 0.5, norm: str = "l1") -> PruneSettings:
    return PruneSettings(rate=rate, output_rate_factor=factor, structure="channels", norm=norm)


def dense_mask(spec: ModelSpec, state: dict[str, torch.Tensor]) -> Mask:
    return Mask.ones_like(state, [n for n in state if n.endswith(".weight")])


def unit_worth(layers: list[Layer], widths: dict[str, int]) -> int:
    """The most weights one unit of any prunable layer holds (its row and the next layer's columns)."""
    worth = 0
    for i, la in enumerate(layers[:-1]):
        n_in = la.in_units if i == 0 else widths[layers[i - 1].module]
        nxt = layers[i + 1]
        n_next = widths.get(nxt.module, nxt.out_units)
        worth = max(worth, n_in * la.spread + n_next * nxt.spread)
    return worth


# ---------------------------------------------------------------- which units


def test_units_are_ranked_by_the_chosen_norm_exactly() -> None:
    layers = chain(ModelSpec.from_config({"arch": "cnn28", "channels": [3, 2], "hidden": 4}, (2, 8, 8), 10))
    w = torch.zeros(3, 2, 5, 5)
    w[0, 0, 0, 0] = 3.0  # L1 3.0, L2 3.0
    w[1, :, 2, 2] = 2.0  # L1 4.0, L2 2.83
    w[2, 1, 4, 4] = -2.9  # L1 2.9, L2 2.9: the sign does not matter
    trained = {"features.0.weight": w, "features.3.weight": torch.ones(2, 3, 5, 5)}
    trained |= {"hidden.weight": torch.tensor([[1.0] * 98, [-2.0] * 98, [0.5] * 98, [3.0] * 98])}
    l1, l2 = unit_norms(trained, layers, "l1"), unit_norms(trained, layers, "l2")
    assert l1["features.0"].tolist() == pytest.approx([3.0, 4.0, 2.9])
    assert l2["features.0"].tolist() == pytest.approx([3.0, 8**0.5, 2.9])
    assert strongest(l1["features.0"], 2) == [0, 1]
    assert strongest(l2["features.0"], 2) == [0, 2]
    assert strongest(l1["hidden"], 2) == [1, 3]  # kept in their original order
    assert strongest(torch.tensor([1.0, 2.0, 1.0, 1.0]), 2) == [0, 1]  # ties: the lower index
    with pytest.raises(ValueError, match=r"pruning\.norm"):
        unit_norms(trained, layers, "linf")


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_a_ticket_keeps_the_strongest_units_of_every_layer(norm: str) -> None:
    theta0 = TINY.init(0).state_dict()
    trained = TINY.init(1).state_dict()
    trained["features.0.weight"][2] *= 10  # a filter no norm can miss
    ticket = make_ticket(
        "layerwise", TINY, trained, dense_mask(TINY, trained), theta0, channels(0.5, norm=norm)
    )
    p = 1 if norm == "l1" else 2
    assert ticket.lineage is not None
    for module, kept in ticket.lineage.kept.items():
        norms = trained[f"{module}.weight"].flatten(1).norm(p=p, dim=1)
        threshold = norms.sort(descending=True).values[len(kept) - 1]
        assert all(norms[i] >= threshold for i in kept), module
        assert sum(bool(n >= threshold) for n in norms) == len(kept), module
    assert 2 in ticket.lineage.kept["features.0"]


# ---------------------------------------------------------------- cutting weights


@pytest.mark.parametrize("spec", [TINY, CIFAR, RGB], ids=["cnn28", "cnn32", "cnn_rgb"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_cut_model_computes_what_the_dense_one_does_with_the_removed_units_zeroed(
    spec: ModelSpec, seed: int
) -> None:
    layers = chain(spec)
    dense = spec.init(seed).double()
    state = dense.state_dict()
    gen = torch.Generator().manual_seed(seed)
    kept = {
        la.module: sorted(torch.randperm(la.out_units, generator=gen)[: max(1, la.out_units // 2)].tolist())
        for la in layers[:-1]
    }
    narrow = narrow_spec(spec, layers, {m: len(ix) for m, ix in kept.items()})
    small = narrow.build().double()
    small.load_state_dict(slice_state(state, layers, kept))  # strict: every name and shape fits

    zeroed = {k: v.clone() for k, v in state.items()}
    for module, ix in kept.items():
        removed = [i for i in range(zeroed[f"{module}.weight"].shape[0]) if i not in ix]
        zeroed[f"{module}.weight"][removed] = 0
        zeroed[f"{module}.bias"][removed] = 0
    dense.load_state_dict(zeroed)
    x = torch.randn(5, *spec.input_shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(small(x), dense(x), rtol=1e-12, atol=1e-12)
        assert not torch.allclose(dense(x), spec.init(seed).double()(x))  # the zeroing did something


# ---------------------------------------------------------------- the budget


@pytest.mark.parametrize("spec", [TINY, FEDAVG], ids=["tiny", "fedavg"])
@pytest.mark.parametrize("rate", [0.2, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("factor", [0.5, 1.0])
def test_the_parameter_budget_of_the_unstructured_ticket_is_hit_within_one_unit(
    spec: ModelSpec, rate: float, factor: float
) -> None:
    state = spec.init(0).state_dict()
    mask = dense_mask(spec, state)
    unstructured = make_ticket("layerwise", spec, state, mask, state, PruneSettings(rate, factor))
    ticket = make_ticket("layerwise", spec, state, mask, state, channels(rate, factor))
    assert unstructured.mask.num_kept == unstructured_budget(mask, PruneSettings(rate, factor))
    widths = {m: len(ix) for m, ix in ticket.lineage.kept.items()}
    assert abs(ticket.mask.num_kept - unstructured.mask.num_kept) <= unit_worth(chain(spec), widths)
    # physically smaller, dense and all-ones; classes and input channels untouched
    assert ticket.mask.density == 1.0
    assert ticket.state["output.weight"].shape[0] == spec.num_classes
    assert ticket.state["features.0.weight"].shape[1] == spec.input_shape[0]
    assert ticket.spec.num_classes == spec.num_classes and ticket.spec.input_shape == spec.input_shape
    assert sum(t.numel() for t in ticket.state.values()) < sum(t.numel() for t in state.values())


def test_a_channels_step_refuses_a_sparse_mask() -> None:
    state = TINY.init(0).state_dict()
    sparse = make_ticket("layerwise", TINY, state, dense_mask(TINY, state), state, PruneSettings(0.5, 0.5))
    with pytest.raises(MaskError, match=r"pruning\.structure"):
        make_ticket("layerwise", TINY, state, sparse.mask, state, channels(0.5))


def test_channels_needs_layerwise_scope_and_a_known_norm() -> None:
    cfg = tiny_config()
    cfg["pruning"] = {"structure": "channels", "scope": "global"}
    with pytest.raises(ConfigError, match=r"pruning\.scope"):
        Experiment.load(cfg)
    cfg["pruning"] = {"structure": "channels", "norm": "linf"}
    with pytest.raises(ConfigError, match=r"pruning\.norm"):
        Experiment.load(cfg)
    cfg["pruning"] = {"structure": "channels", "norm": "l2"}
    assert Experiment.load(cfg).prune_slice(0.5) == {
        "rate": 0.5,
        "scope": "layerwise",
        "output_rate_factor": 0.5,
        "structure": "channels",
        "norm": "l2",
    }


# ---------------------------------------------------------------- the stage, tickets of tickets


def _prune_step(tmp: Path, card: dict, trained: dict, rewind: dict, params: dict) -> dict[str, Path]:
    tmp.mkdir(parents=True)
    paths = {k: tmp / f"{k}.safetensors" for k in ("trained", "mask_in", "rewind", "mask", "ticket")}
    paths |= {k: tmp / f"{k}.json" for k in ("card_in", "card", "report", "params")}
    checkpoint.save_state(paths["trained"], trained)
    dense_mask(TINY, trained).save(paths["mask_in"])
    checkpoint.save_state(paths["rewind"], rewind)
    paths["card_in"].write_text(json.dumps(card))
    prune_and_rewind(
        trained_weights=str(paths["trained"]),
        trained_mask=str(paths["mask_in"]),
        trained_card=str(paths["card_in"]),
        rewind_weights=str(paths["rewind"]),
        params=params,
        out_mask=str(paths["mask"]),
        out_ticket=str(paths["ticket"]),
        out_card=str(paths["card"]),
        out_report=str(paths["report"]),
        out_params=str(paths["params"]),
    )
    return paths


def _trained_from(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Stand-in for a phase of training: the ticket's weights moved by seeded noise."""
    gen = torch.Generator().manual_seed(seed)
    return {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in state.items()}


def test_tickets_of_tickets_shrink_and_rewind_to_the_late_rewind_point(tmp_path: Path) -> None:
    params = {"rate": 0.5, "output_rate_factor": 0.5, "scope": "layerwise", "structure": "channels"}
    params["norm"] = "l1"
    theta0 = TINY.init(0).state_dict()
    rewind = _trained_from(theta0, 7)  # a late-rewind point: not θ0
    first = _prune_step(tmp_path / "prune1", TINY.as_dict(), _trained_from(theta0, 1), rewind, params)

    # the ticket's card builds the narrower model, which loads the ticket's weights and mask
    card1 = json.loads(first["card"].read_text())
    spec1 = ModelSpec.from_dict(card1)
    model1 = spec1.build()
    ticket1 = checkpoint.load_state(first["ticket"], model1.state_dict())
    model1.load_state_dict(ticket1)
    Mask.load(first["mask"]).check_fits(ticket1)
    assert Mask.load(first["mask"]).density == 1.0
    assert card1["params"] == sum(t.numel() for t in ticket1.values())
    lineage1 = Lineage.from_card(card1)
    assert lineage1 is not None and lineage1.dense == TINY
    assert spec1.options["channels"] == [len(lineage1.kept["features.0"]), len(lineage1.kept["features.3"])]
    for name, t in lineage1.cut(rewind).items():
        assert torch.equal(ticket1[name], t), name  # rewound to the late-rewind point, cut to the kept units
    report = json.loads(first["report"].read_text())
    assert report["structure"] == "channels" and report["sparsity"] == 0.0
    assert report["vs_dense"]["kept"] == Mask.load(first["mask"]).num_kept
    assert 0.45 < report["vs_dense"]["sparsity"] < 0.55

    # phase 3's ticket: pruned from the trained narrower model, rewound from the θ0-shaped rewind point
    second = _prune_step(tmp_path / "prune2", card1, _trained_from(ticket1, 2), rewind, params)
    card2 = json.loads(second["card"].read_text())
    spec2, lineage2 = ModelSpec.from_dict(card2), Lineage.from_card(card2)
    assert lineage2 is not None and lineage2.dense == TINY
    ticket2 = checkpoint.load_state(second["ticket"], spec2.build().state_dict())
    for module, ix in lineage2.kept.items():
        assert set(ix) <= set(lineage1.kept[module]), module  # a ticket of a ticket keeps a subset
        assert len(ix) <= len(lineage1.kept[module]), module
    assert spec2.options["hidden"] < spec1.options["hidden"] < TINY.options["hidden"]
    for name, t in lineage2.cut(rewind).items():
        assert torch.equal(ticket2[name], t), name
    kept1, kept2 = Mask.load(first["mask"]).num_kept, Mask.load(second["mask"]).num_kept
    widths2 = {m: len(ix) for m, ix in lineage2.kept.items()}
    budget = unstructured_budget(Mask.load(first["mask"]), PruneSettings(0.5, 0.5))
    assert abs(kept2 - budget) <= unit_worth(chain(spec1), widths2)
    assert kept2 < kept1


# ---------------------------------------------------------------- the real workflow


@pytest.mark.workflow
@pytest.mark.xdist_group("workflow")
def test_a_structured_grid_trains_physically_smaller_phases(tmp_path: Path) -> None:
    cfg = tiny_config()
    cfg["grid"]["pruning_rates"] = [0.6]  # one rate keeps the run short; two steps make a ticket of a ticket
    cfg["grid"]["variants"] = {"channels": {"pruning": {"structure": "channels"}}}
    write_config(tmp_path, cfg)
    run(tmp_path)
    base, structured = (
        tmp_path / "results/mnist-sample/seed0",
        tmp_path / "results/mnist-sample/channels/seed0",
    )
    assert not (structured / "phase1").exists()  # phase 1 is shared with the unstructured base
    theta0 = checkpoint.load_tensors(base / "init/weights.safetensors", kind="weights")
    dense_params = sum(t.numel() for t in theta0.values())
    for rate in ("0.6",):
        previous = dense_params
        for k in (2, 3):
            weights = checkpoint.load_tensors(
                structured / f"rate{rate}/phase{k}/weights.safetensors", "weights"
            )
            params = sum(t.numel() for t in weights.values())
            assert params < previous, (rate, k)  # phase 3 trains a ticket of a ticket: smaller again
            previous = params
            card = json.loads((structured / f"rate{rate}/prune{k - 1}/model.json").read_text())
            assert card["params"] == params and Lineage.from_card(card) is not None
            ours = json.loads((structured / f"rate{rate}/phase{k}/metrics.json").read_text())
            theirs = json.loads((base / f"rate{rate}/phase{k}/metrics.json").read_text())
            # the same parameter budget, but no mask to ship and fewer FLOPs than the dense shape
            assert ours["prunable_total"] == theirs["prunable_total"]
            assert abs(ours["prunable_kept"] - theirs["prunable_kept"]) < 0.1 * theirs["prunable_kept"]
            assert ours["encoded_bytes"] < theirs["encoded_bytes"] < theirs["dense_bytes"]
            assert ours["train_flops_per_sample"] < ours["dense_train_flops_per_sample"]
            assert ours["dense_train_flops_per_sample"] == theirs["dense_train_flops_per_sample"]
            assert ours["flop_speedup_model"] > 1.0
    summary = json.loads((structured / "rate0.6/summary.json").read_text())
    assert [p["phase"] for p in summary["phases"]] == [1, 2, 3]
    assert summary["final"]["sparsity"] > 0.5
