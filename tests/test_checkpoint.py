"""Checkpoints: exact round trips, byte-identical files, and errors that name the file and the fix."""

from __future__ import annotations

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from equitable_fl import checkpoint
from equitable_fl.checkpoint import CheckpointError, load_state, load_tensors, save_state, save_tensors
from equitable_fl.mask import Mask
from equitable_fl.modelspec import ModelSpec


def tiny_state(seed: int = 0, arch: str = "cnn28") -> dict[str, torch.Tensor]:
    if arch == "cnn28":
        spec = ModelSpec.from_config({"arch": "cnn28", "channels": [4, 8], "hidden": 16}, (1, 28, 28), 10)
    else:
        spec = ModelSpec.from_config({"arch": "cnn32", "channels": [4, 8, 8], "hidden": 16}, (3, 32, 32), 10)
    return spec.init(seed).state_dict()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_save_load_state_round_trip(tmp_path) -> None:
    state = tiny_state()
    path = tmp_path / "w.safetensors"
    save_state(path, state)
    loaded = load_state(path, state)
    assert set(loaded) == set(state)
    for k, v in state.items():
        assert loaded[k].dtype == v.dtype
        assert torch.equal(loaded[k], v), k
    model = ModelSpec.from_config(
        {"arch": "cnn28", "channels": [4, 8], "hidden": 16}, (1, 28, 28), 10
    ).build()
    model.load_state_dict(loaded)  # usable as a state dict


def test_round_trip_of_non_contiguous_and_other_dtypes(tmp_path) -> None:
    base = torch.arange(12.0).view(3, 4)
    tensors = {"t": base.t(), "i": torch.tensor([1, -2, 3]), "h": torch.tensor([0.5], dtype=torch.float16)}
    path = tmp_path / "x.safetensors"
    save_tensors(path, tensors, kind="other")
    loaded = load_tensors(path, kind="other")
    for k, v in tensors.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)


def test_same_tensors_give_identical_bytes(tmp_path) -> None:
    state = tiny_state(1)
    a, b, c = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.safetensors"
    save_state(a, state)
    save_state(b, {k: v.clone() for k, v in reversed(list(state.items()))})  # other insertion order
    save_state(c, tiny_state(2))
    assert sha256(a) == sha256(b)
    assert sha256(a) != sha256(c)


def test_mask_files_are_byte_identical_too(tmp_path) -> None:
    m = Mask({"w": torch.tensor([1, 0, 1], dtype=torch.bool), "v": torch.ones(2, 2)})
    m.save(tmp_path / "m1.safetensors")
    Mask(dict(m)).save(tmp_path / "m2.safetensors")
    assert sha256(tmp_path / "m1.safetensors") == sha256(tmp_path / "m2.safetensors")


def test_save_leaves_no_temporary_files(tmp_path) -> None:
    save_state(tmp_path / "sub" / "w.safetensors", {"a": torch.ones(2)})
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["w.safetensors"]


def test_load_state_other_architecture_names_keys_and_fix(tmp_path) -> None:
    path = tmp_path / "cnn32.safetensors"
    save_state(path, tiny_state(arch="cnn32"))
    reference = tiny_state()
    with pytest.raises(CheckpointError) as info:
        load_state(path, reference)
    msg = str(info.value)
    assert str(path) in msg
    # cnn32 has a third conv block (features.6) that cnn28 lacks
    assert "unexpected ['features.6.bias', 'features.6.weight']" in msg
    assert "missing []" in msg
    assert "architecture" in msg and "rerun from the init step" in msg


def test_load_state_missing_key_is_named(tmp_path) -> None:
    state = tiny_state()
    path = tmp_path / "w.safetensors"
    save_state(path, {k: v for k, v in state.items() if k != "output.bias"})
    with pytest.raises(CheckpointError, match=r"missing \['output.bias'\], unexpected \[\]"):
        load_state(path, state)


def test_load_state_wrong_shape_names_tensor(tmp_path) -> None:
    state = tiny_state()
    wrong = dict(state)
    wrong["hidden.weight"] = torch.zeros(32, 392)
    path = tmp_path / "w.safetensors"
    save_state(path, wrong)
    with pytest.raises(CheckpointError) as info:
        load_state(path, state)
    msg = str(info.value)
    assert str(path) in msg
    assert "hidden.weight has shape (32, 392), the model expects (16, 392)" in msg


@pytest.mark.parametrize("keep", [0, 4, 8, 50, -1])
def test_truncated_file_names_path(tmp_path, keep: int) -> None:
    state = tiny_state()
    good = tmp_path / "good.safetensors"
    save_state(good, state)
    data = good.read_bytes()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:-100])
    with pytest.raises(CheckpointError) as info:
        load_state(bad, state)
    msg = str(info.value)
    assert str(bad) in msg
    assert "cannot read weights checkpoint" in msg and "rerun" in msg


def test_missing_file_names_path(tmp_path) -> None:
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(CheckpointError, match=r"nowhere.safetensors"):
        load_state(path, tiny_state())


def test_mask_file_loaded_as_weights_is_kind_mismatch(tmp_path) -> None:
    state = tiny_state()
    path = tmp_path / "mask.safetensors"
    Mask.ones_like(state, list(state)).save(path)  # same names and shapes, wrong kind
    with pytest.raises(CheckpointError) as info:
        load_state(path, state)
    msg = str(info.value)
    assert str(path) in msg and "'mask'" in msg and "expected 'weights'" in msg


def test_file_without_kind_is_rejected(tmp_path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"a": torch.ones(2)}, str(path))  # no metadata at all
    with pytest.raises(CheckpointError, match=r"holds a None checkpoint, expected 'weights'"):
        checkpoint.load_tensors(path, kind="weights")
