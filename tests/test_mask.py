"""Mask: value/dtype validation, fitting a model, applying, counting, and the on-disk format."""

from __future__ import annotations

import pytest
import torch

from equitable_fl import checkpoint
from equitable_fl.checkpoint import CheckpointError
from equitable_fl.mask import Mask, MaskError

# A hand-made two-layer mask: 3 of 6 kept in "a", 1 of 4 kept in "b" → 4 of 10 kept overall.
A_BITS = [[1, 0, 1], [0, 0, 1]]
B_BITS = [1, 0, 0, 0]


def hand_mask() -> Mask:
    return Mask({"b": torch.tensor(B_BITS, dtype=torch.bool), "a": torch.tensor(A_BITS, dtype=torch.bool)})


@pytest.mark.parametrize(
    "dtype", [torch.bool, torch.float32, torch.float64, torch.float16, torch.uint8, torch.int8, torch.int64]
)
def test_accepts_bool_and_zero_one_tensors_and_stores_bool(dtype: torch.dtype) -> None:
    raw = torch.tensor(A_BITS).to(dtype)
    m = Mask({"a": raw})
    assert m["a"].dtype == torch.bool
    assert m["a"].tolist() == [[bool(v) for v in row] for row in A_BITS]


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, float("nan")])
def test_rejects_values_other_than_zero_and_one(bad: float) -> None:
    t = torch.tensor([1.0, 0.0, bad])
    with pytest.raises(MaskError, match=r"'layer.w'.*other than 0 and 1"):
        Mask({"layer.w": t})


def test_rejects_integer_two() -> None:
    with pytest.raises(MaskError, match=r"other than 0 and 1"):
        Mask({"w": torch.tensor([0, 1, 2], dtype=torch.uint8)})


@pytest.mark.parametrize("dtype", [torch.int16, torch.complex64])
def test_rejects_unsupported_dtypes(dtype: torch.dtype) -> None:
    with pytest.raises(MaskError, match=r"unsupported dtype"):
        Mask({"w": torch.ones(3, dtype=dtype)})


def test_mask_is_a_copy_of_its_input() -> None:
    raw = torch.ones(4, dtype=torch.bool)
    m = Mask({"w": raw})
    raw[0] = False
    assert bool(m["w"].all())


def test_mapping_protocol_sorted_names() -> None:
    m = hand_mask()
    assert list(m) == ["a", "b"]
    assert len(m) == 2
    assert "a" in m and "c" not in m


def test_ones_like_covers_only_named_tensors() -> None:
    state = {"w": torch.randn(2, 3), "bias": torch.randn(3)}
    m = Mask.ones_like(state, ["w"])
    assert list(m) == ["w"]
    assert m["w"].shape == (2, 3) and bool(m["w"].all())
    assert m.density == 1.0


def test_check_fits_accepts_matching_state_with_extra_tensors() -> None:
    state = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "a_bias": torch.zeros(3)}
    hand_mask().check_fits(state)  # extra unmasked tensors (biases) are fine


def test_check_fits_names_missing_layer() -> None:
    state = {"a": torch.zeros(2, 3)}
    with pytest.raises(MaskError, match=r"'b'.*does not have"):
        hand_mask().check_fits(state)


def test_check_fits_names_layer_with_wrong_shape() -> None:
    state = {"a": torch.zeros(3, 2), "b": torch.zeros(4)}
    with pytest.raises(MaskError, match=r"'a' has shape \(2, 3\), the weight has \(3, 2\)"):
        hand_mask().check_fits(state)


def test_apply_zeros_exactly_the_pruned_entries() -> None:
    a = torch.arange(1.0, 7.0).view(2, 3)
    b = torch.tensor([-1.5, 2.5, -3.5, 4.5])
    bias = torch.tensor([9.0, 8.0])
    state = {"a": a.clone(), "b": b.clone(), "bias": bias.clone()}
    hand_mask().apply_(state)
    assert state["a"].tolist() == [[1.0, 0.0, 3.0], [0.0, 0.0, 6.0]]
    assert state["b"].tolist() == [-1.5, 0.0, 0.0, 0.0]
    assert torch.equal(state["bias"], bias)  # tensors outside the mask are untouched
    assert state["a"].dtype == torch.float32


def test_apply_refuses_a_mask_that_only_broadcasts() -> None:
    m = Mask({"w": torch.tensor([[1, 0, 1]], dtype=torch.bool)})  # (1, 3)
    state = {"w": torch.ones(4, 3)}  # the module promises a loud failure, not broadcasting
    with pytest.raises(MaskError):
        m.apply_(state)


def test_counts_against_hand_count() -> None:
    m = hand_mask()
    assert m.num_total == 10
    assert m.num_kept == 4
    assert m.density == pytest.approx(0.4)
    assert m.sparsity == pytest.approx(0.6)


def test_empty_mask_is_dense() -> None:
    m = Mask({})
    assert m.num_total == 0 and m.num_kept == 0
    assert m.density == 1.0 and m.sparsity == 0.0


def test_report_per_layer_numbers() -> None:
    r = hand_mask().report()
    assert r["total"] == 10 and r["kept"] == 4
    assert r["density"] == pytest.approx(0.4) and r["sparsity"] == pytest.approx(0.6)
    assert set(r["layers"]) == {"a", "b"}
    assert r["layers"]["a"] == {"total": 6, "kept": 3, "density": pytest.approx(0.5)}
    assert r["layers"]["b"] == {"total": 4, "kept": 1, "density": pytest.approx(0.25)}
    assert sum(layer["kept"] for layer in r["layers"].values()) == r["kept"]


def test_save_load_round_trip_exact(tmp_path) -> None:
    gen = torch.Generator().manual_seed(0)
    original = Mask(
        {
            "conv.weight": torch.rand(4, 1, 5, 5, generator=gen) > 0.3,
            "fc.weight": torch.rand(10, 16, generator=gen) > 0.9,
            "empty.weight": torch.zeros(3, 3, dtype=torch.bool),
        }
    )
    path = tmp_path / "mask.safetensors"
    original.save(path)
    loaded = Mask.load(path)
    assert list(loaded) == list(original)
    for name in original:
        assert loaded[name].dtype == torch.bool
        assert torch.equal(loaded[name], original[name])
    assert loaded.num_kept == original.num_kept


def test_loading_weights_file_as_mask_names_the_path(tmp_path) -> None:
    path = tmp_path / "weights.safetensors"
    checkpoint.save_state(path, {"w": torch.ones(3)})  # 0/1 values, but a weights file
    with pytest.raises(CheckpointError, match=r"weights.safetensors.*'weights'.*expected 'mask'"):
        Mask.load(path)


def test_loading_garbage_file_as_mask_names_the_path(tmp_path) -> None:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"this is not a safetensors file at all" * 3)
    with pytest.raises(CheckpointError) as info:
        Mask.load(path)
    assert str(path) in str(info.value)


def test_loading_missing_file_as_mask_names_the_path(tmp_path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(CheckpointError) as info:
        Mask.load(path)
    assert str(path) in str(info.value)


def test_mask_file_with_value_two_raises_mask_error_with_path(tmp_path) -> None:
    path = tmp_path / "bad_mask.safetensors"
    checkpoint.save_tensors(path, {"w": torch.tensor([0, 1, 2], dtype=torch.uint8)}, kind="mask")
    with pytest.raises(MaskError) as info:
        Mask.load(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "'w'" in msg and "rerun the pruning step" in msg
