"""Prepared datasets: stratified split, the embedded MNIST sample, the .npz format and atomic writes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from equitable_fl import io
from equitable_fl.data import mnist_sample
from equitable_fl.data.prepared import (
    PreparedDataError,
    PreparedDataset,
    load_prepared,
    save_prepared,
    stratified_split,
)

# --- stratified_split --------------------------------------------------------------------------


def unbalanced_labels() -> np.ndarray:
    counts = [500, 300, 120, 57, 23]
    y = np.concatenate([np.full(c, k, dtype=np.int64) for k, c in enumerate(counts)])
    return np.random.default_rng(0).permutation(y)


@pytest.mark.parametrize("test_size", [1, 100, 333, 999])
def test_stratified_split_keeps_class_proportions(test_size: int) -> None:
    y = unbalanced_labels()
    n = len(y)
    train, test = stratified_split(y, test_size, seed=0)
    assert len(test) == test_size
    assert len(train) == n - test_size
    joined = np.concatenate([train, test])
    assert np.array_equal(np.sort(joined), np.arange(n))
    for cls in np.unique(y):
        share = np.sum(y == cls) * test_size / n
        got = np.sum(y[test] == cls)
        assert abs(got - share) <= 1, (cls, got, share)
        assert np.sum(y[train] == cls) + got == np.sum(y == cls)


def test_stratified_split_seeded_and_shuffled() -> None:
    y = unbalanced_labels()
    a = stratified_split(y, 200, seed=3)
    b = stratified_split(y, 200, seed=3)
    c = stratified_split(y, 200, seed=4)
    assert all(np.array_equal(x, z) for x, z in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    # the test indices are not grouped by class (the split is shuffled)
    assert not np.all(np.diff(y[a[1]]) >= 0)


def test_stratified_split_leaves_global_rng_alone() -> None:
    np.random.seed(5)
    before = np.random.get_state()
    stratified_split(unbalanced_labels(), 100, seed=0)
    after = np.random.get_state()
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]


@pytest.mark.parametrize("test_size", [0, 1000, -3])
def test_stratified_split_rejects_bad_test_size(test_size: int) -> None:
    with pytest.raises(ValueError, match="test_size must be between 1 and 999"):
        stratified_split(unbalanced_labels(), test_size, seed=0)


# --- mnist-sample ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist() -> PreparedDataset:
    return mnist_sample.prepare({}, None)


def test_mnist_sample_shapes_and_dtypes(mnist: PreparedDataset) -> None:
    assert mnist.x_train.shape == (4000, 1, 28, 28)
    assert mnist.x_test.shape == (1000, 1, 28, 28)
    assert mnist.x_train.dtype == np.uint8 and mnist.x_test.dtype == np.uint8
    assert mnist.y_train.dtype == np.int64 and mnist.y_test.dtype == np.int64
    assert mnist.input_shape == (1, 28, 28)
    assert mnist.num_classes == 10
    assert mnist.name == "mnist-sample"


def test_mnist_sample_content(mnist: PreparedDataset) -> None:
    assert np.bincount(mnist.y_test, minlength=10).tolist() == [100] * 10
    assert np.bincount(mnist.y_train, minlength=10).tolist() == [400] * 10
    for x in (mnist.x_train, mnist.x_test):
        assert x.max() == 255
        assert x.min() == 0
        # every image has ink; no image is blank
        assert np.all(x.reshape(len(x), -1).max(axis=1) > 0)
    # MNIST digits are mostly background
    assert 0.05 < float((mnist.x_train > 0).mean()) < 0.4
    # train and test hold different images
    train_rows = {row.tobytes() for row in mnist.x_train.reshape(4000, -1)}
    overlap = sum(row.tobytes() in train_rows for row in mnist.x_test.reshape(1000, -1))
    assert overlap < 5


def test_mnist_sample_meta(mnist: PreparedDataset) -> None:
    meta = mnist.meta()
    assert meta["num_train"] == 4000 and meta["num_test"] == 1000
    assert meta["input_shape"] == [1, 28, 28]
    assert meta["train_class_counts"] == np.bincount(mnist.y_train, minlength=10).tolist()
    assert meta["class_names"] == [str(d) for d in range(10)]
    assert meta["source"]["test_size"] == 1000


# --- save / load -------------------------------------------------------------------------------


def small_dataset(name: str = "tiny", num_classes: int = 3) -> PreparedDataset:
    rng = np.random.default_rng(0)
    return PreparedDataset(
        name=name,
        x_train=rng.integers(0, 256, size=(12, 2, 5, 4), dtype=np.uint8),
        y_train=rng.integers(0, num_classes, size=12).astype(np.int64),
        x_test=rng.integers(0, 256, size=(6, 2, 5, 4), dtype=np.uint8),
        y_test=rng.integers(0, num_classes, size=6).astype(np.int64),
        class_names=tuple(f"c{i}" for i in range(num_classes)),
        source={"origin": "test"},
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    ds = small_dataset()
    save_prepared(ds, tmp_path / "d.npz", tmp_path / "d.json")
    back = load_prepared(tmp_path / "d.npz", tmp_path / "d.json")
    assert back.name == ds.name
    assert back.class_names == ds.class_names
    assert back.source == ds.source
    for key, arr in ds.arrays().items():
        got = back.arrays()[key]
        assert got.dtype == arr.dtype
        assert np.array_equal(got, arr), key
    # np.load reads the file directly, too
    with np.load(tmp_path / "d.npz") as raw:
        assert sorted(raw.files) == ["x_test", "x_train", "y_test", "y_train"]


def test_saved_bytes_are_deterministic(tmp_path: Path, mnist: PreparedDataset) -> None:
    save_prepared(mnist, tmp_path / "a" / "d.npz", tmp_path / "a" / "d.json")
    save_prepared(mnist, tmp_path / "b" / "d.npz", tmp_path / "b" / "d.json")
    assert io.sha256_file(tmp_path / "a" / "d.npz") == io.sha256_file(tmp_path / "b" / "d.npz")
    assert io.sha256_file(tmp_path / "a" / "d.json") == io.sha256_file(tmp_path / "b" / "d.json")
    # and the content decides the hash: other data, other bytes
    save_prepared(small_dataset(), tmp_path / "c" / "d.npz", tmp_path / "c" / "d.json")
    assert io.sha256_file(tmp_path / "c" / "d.npz") != io.sha256_file(tmp_path / "a" / "d.npz")


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert io.sha256_file(tmp_path / "f", chunk=1000) == hashlib.sha256(data).hexdigest()


def _corrupt(kind: str, good: bytes) -> bytes:
    return {
        "garbage": b"this is not an npz file at all " * 20,
        "truncated": good[: len(good) // 2],
        "tail_cut": good[:-10],
        "empty": b"",
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "truncated",
        "tail_cut",
        "empty",
    ],
)
def test_broken_npz_gives_helpful_error(tmp_path: Path, kind: str) -> None:
    npz, meta = tmp_path / "prepared.npz", tmp_path / "meta.json"
    save_prepared(small_dataset(), npz, meta)
    npz.write_bytes(_corrupt(kind, npz.read_bytes()))
    with pytest.raises(PreparedDataError) as info:
        load_prepared(npz, meta)
    msg = str(info.value)
    assert str(npz) in msg
    assert "delete" in msg and "rerun the workflow" in msg


def test_missing_files_give_helpful_error(tmp_path: Path) -> None:
    npz, meta = tmp_path / "prepared.npz", tmp_path / "meta.json"
    with pytest.raises(PreparedDataError, match="rerun the workflow") as info:
        load_prepared(npz, meta)
    assert str(npz) in str(info.value)


def test_inconsistent_meta_gives_helpful_error(tmp_path: Path) -> None:
    npz, meta = tmp_path / "prepared.npz", tmp_path / "meta.json"
    save_prepared(small_dataset(num_classes=3), npz, meta)
    info = io.read_json(meta)
    info["class_names"] = ["only-one"]  # labels 1 and 2 fall outside
    io.write_json(meta, info)
    with pytest.raises(PreparedDataError, match="inconsistent") as exc:
        load_prepared(npz, meta)
    assert str(npz) in str(exc.value)
    assert "labels outside 0..0" in str(exc.value)


# --- PreparedDataset validation ----------------------------------------------------------------


def _arrays() -> dict[str, np.ndarray]:
    return small_dataset().arrays()


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("x_train", np.zeros((12, 2, 5, 4), dtype=np.float32), "x_train must be uint8"),
        ("x_test", np.zeros((6, 40), dtype=np.uint8), "x_test must be uint8 N×C×H×W"),
        ("y_train", np.zeros(12, dtype=np.int32), "y_train must be int64"),
        ("y_test", np.zeros(5, dtype=np.int64), r"y_test must be int64 of shape \(6,\)"),
        ("y_train", np.full(12, 3, dtype=np.int64), r"labels outside 0..2"),
        ("y_test", np.full(6, -1, dtype=np.int64), r"labels outside 0..2"),
        ("x_test", np.zeros((6, 2, 4, 5), dtype=np.uint8), "differ in shape"),
    ],
)
def test_prepared_dataset_rejects_bad_arrays(key: str, value: np.ndarray, match: str) -> None:
    arrays = _arrays()
    arrays[key] = value
    with pytest.raises(PreparedDataError, match=match) as info:
        PreparedDataset(name="bad", class_names=("a", "b", "c"), **arrays)
    assert "'bad'" in str(info.value)


# --- atomic writes -----------------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_path_failure_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "out.bin"
    with pytest.raises(RuntimeError, match="boom"), io.atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert not dest.exists()
    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_path_failure_keeps_previous_content(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    io.write_text(dest, "old\n")
    with pytest.raises(KeyError), io.atomic_path(dest) as tmp:
        tmp.write_text("new")
        raise KeyError("x")
    assert dest.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_success_renames_into_place(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b" / "out.txt"
    with io.atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent
        assert tmp != dest
        tmp.write_text("hello")
        assert not dest.exists()
    assert dest.read_text() == "hello"
    assert [p.name for p in dest.parent.iterdir()] == ["out.txt"]


@pytest.mark.usefixtures("umask_022")
def test_written_files_have_normal_permissions(tmp_path: Path) -> None:
    io.write_json(tmp_path / "x.json", {"b": 1, "a": [1.5, None]})
    io.save_npz(tmp_path / "x.npz", {"a": np.arange(3)})
    save_prepared(small_dataset(), tmp_path / "d.npz", tmp_path / "d.json")
    for name in ("x.json", "x.npz", "d.npz", "d.json"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_write_json_is_sorted_with_trailing_newline(tmp_path: Path) -> None:
    io.write_json(tmp_path / "x.json", {"b": 1, "a": {"d": 2, "c": 3}})
    text = (tmp_path / "x.json").read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')
    assert io.read_json(tmp_path / "x.json") == {"a": {"c": 3, "d": 2}, "b": 1}
