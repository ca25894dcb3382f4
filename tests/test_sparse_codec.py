"""The sparse wire format: exact round trips and byte counts that follow from the format."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch

from equitable_fl.sparse_codec import decode, encode, encoded_size

MAGIC = b"EQFL1"
PREFIX = len(MAGIC) + 4  # magic + uint32 header length


def exact_density_mask(shape: tuple[int, ...], density: float, seed: int) -> torch.Tensor:
    n = math.prod(shape)
    keep = torch.zeros(n, dtype=torch.bool)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    keep[perm[: round(density * n)]] = True
    return keep.view(shape)


def masked_state(density: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shapes = {"conv.weight": (8, 4, 5, 5), "fc.weight": (37, 101)}
    mask = {n: exact_density_mask(s, density, seed + i) for i, (n, s) in enumerate(shapes.items())}
    state = {n: torch.randn(*s, generator=gen) * mask[n] for n, s in shapes.items()}
    state["fc.bias"] = torch.randn(37, generator=gen)  # not in the mask: always dense
    state["scale"] = torch.tensor(2.5)  # a 0-d tensor
    return state, mask


def header_of(blob: bytes) -> list[dict]:
    (head_len,) = struct.unpack_from("<I", blob, len(MAGIC))
    return json.loads(blob[PREFIX : PREFIX + head_len])


@pytest.mark.parametrize("density", [0.0, 0.03, 0.5, 1.0])
def test_round_trip_exact(density: float) -> None:
    state, mask = masked_state(density)
    out = decode(encode(state, mask))
    assert set(out) == set(state)
    for name, t in state.items():
        assert out[name].shape == t.shape, name
        assert out[name].dtype == torch.float32
        assert torch.equal(out[name], t), name
    for name, m in mask.items():
        assert torch.equal(out[name][m], state[name][m])
        assert bool((out[name][~m] == 0).all())
        assert int((out[name] != 0).sum()) <= int(m.sum())


def test_round_trip_keeps_kept_zeros_and_special_values() -> None:
    w = torch.tensor([0.0, -0.0, 1e-38, -3.5, float("inf"), 0.0, 7.25, 0.0, 0.0, 0.0, 0.0, 0.0])
    m = torch.tensor([1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=torch.bool)
    out = decode(encode({"w": w}, {"w": m}))["w"]
    assert header_of(encode({"w": w}, {"w": m}))[0]["format"] == "bitmask"
    assert torch.equal(out, w)
    assert math.copysign(1.0, float(out[1])) == -1.0  # bit-exact: -0.0 stays -0.0


def test_dense_tensors_untouched_and_float64_becomes_float32() -> None:
    state = {"b": torch.linspace(-1, 1, 9, dtype=torch.float64)}
    out = decode(encode(state, {}))
    assert torch.equal(out["b"], state["b"].float())
    assert header_of(encode(state, {}))[0]["format"] == "dense"


def test_encoding_is_deterministic_and_order_independent() -> None:
    state, mask = masked_state(0.2)
    reordered = dict(reversed(list(state.items())))
    assert encode(state, mask) == encode(reordered, mask)
    assert [e["name"] for e in header_of(encode(state, mask))] == sorted(state)


def test_fully_dense_mask_costs_at_most_fp32_plus_small_header() -> None:
    state, _ = masked_state(1.0)
    ones = {n: torch.ones_like(t, dtype=torch.bool) for n, t in state.items() if n.endswith("weight")}
    dense = 4 * sum(t.numel() for t in state.values())
    size = encoded_size(state, ones)
    assert dense < size < dense + 1024
    assert all(e["format"] == "dense" for e in header_of(encode(state, ones)))


def test_ten_percent_density_is_under_twenty_percent_of_dense() -> None:
    shapes = {"a.weight": (100, 100), "b.weight": (64, 8, 3, 3)}
    mask = {n: exact_density_mask(s, 0.1, i) for i, (n, s) in enumerate(shapes.items())}
    state = {n: torch.randn(*s) * mask[n] for n, s in shapes.items()}
    dense = 4 * sum(math.prod(s) for s in shapes.values())
    assert encoded_size(state, mask) < 0.2 * dense


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1001])
def test_bitmask_bytes_are_ceil_n_over_8(n: int) -> None:
    keep = torch.zeros(n, dtype=torch.bool)
    keep[0] = True  # one kept value
    w = torch.zeros(n)
    w[0] = 1.5
    blob = encode({"w": w}, {"w": keep})
    (entry,) = header_of(blob)
    (head_len,) = struct.unpack_from("<I", blob, len(MAGIC))
    ceil8 = (n + 7) // 8
    if ceil8 + 4 < 4 * n:
        assert entry["format"] == "bitmask"
        assert entry["nbytes"] == [ceil8, 4]
        assert len(blob) == PREFIX + head_len + ceil8 + 4
    else:  # n = 1: 1 + 4 bytes would exceed the 4 dense bytes
        assert entry["format"] == "dense"
        assert len(blob) == PREFIX + head_len + 4 * n
    assert torch.equal(decode(blob)["w"], w)


def test_per_tensor_choice_is_the_smaller_encoding() -> None:
    shapes = {"a": (50, 20), "b": (333,), "c": (16, 16)}
    densities = {"a": 0.05, "b": 0.99, "c": 0.9}
    mask = {n: exact_density_mask(s, densities[n], i) for i, (n, s) in enumerate(shapes.items())}
    state = {n: torch.randn(*s) * mask[n] for n, s in shapes.items()}
    blob = encode(state, mask)
    (head_len,) = struct.unpack_from("<I", blob, len(MAGIC))
    payload = 0
    for n, s in shapes.items():
        numel = math.prod(s)
        payload += min(4 * numel, math.ceil(numel / 8) + 4 * int(mask[n].sum()))
    assert len(blob) == PREFIX + head_len + payload
    formats = {e["name"]: e["format"] for e in header_of(blob)}
    assert formats == {"a": "bitmask", "b": "dense", "c": "bitmask"}


@pytest.mark.parametrize("density", [0.0, 0.03, 0.5, 1.0])
def test_encoded_size_is_length_of_encoding(density: float) -> None:
    state, mask = masked_state(density, seed=4)
    assert encoded_size(state, mask) == len(encode(state, mask))


@pytest.mark.parametrize("garbage", [b"", b"hello world", b"PK\x03\x04" + bytes(100), b"EQFL0" + bytes(20)])
def test_decode_garbage_raises_value_error(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        decode(garbage)


def test_decode_truncated_values_raises_value_error() -> None:
    state, mask = masked_state(0.5)
    blob = encode(state, mask)
    (head_len,) = struct.unpack_from("<I", blob, len(MAGIC))
    for cut in (PREFIX + head_len // 2, PREFIX + head_len + 10, len(blob) - 1):
        with pytest.raises(ValueError):
            decode(blob[:cut])


@pytest.mark.parametrize(
    "blob",
    [MAGIC + b"\x01", MAGIC + b"\x01\x00\x00", MAGIC + struct.pack("<I", 7) + b'{"a":1}'],
    ids=["cut-after-magic", "cut-in-length", "header-not-a-list"],
)
def test_decode_malformed_payload_raises_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode(blob)
