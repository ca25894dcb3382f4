"""Client partitions: iid, Dirichlet label skew and pathological shards, their report and their JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from equitable_fl.partition import (
    PartitionError,
    from_json,
    make_partition,
    partition_report,
    to_json,
)

NUM_CLASSES = 10


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """2,000 labels, 200 per class, in a shuffled (not class-sorted) order."""
    y = np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), 200)
    np.random.default_rng(1).shuffle(y)
    return y


def assert_disjoint_and_complete(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n, "some index is missing or repeated"
    assert np.array_equal(np.sort(joined), np.arange(n))


def assert_sorted(parts: list[np.ndarray]) -> None:
    for p in parts:
        assert np.all(np.diff(p) > 0), "indices of a client must be strictly increasing"


# --- iid ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "clients"), [(2000, 30), (103, 10), (7, 7), (5, 1)])
def test_iid_shards_are_near_equal_disjoint_complete_and_sorted(n: int, clients: int) -> None:
    y = np.arange(n) % 3
    parts = make_partition(y, clients, 0, "iid")
    assert len(parts) == clients
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == n
    assert_disjoint_and_complete(parts, n)
    assert_sorted(parts)


def test_iid_is_a_shuffle_not_contiguous_blocks(labels: np.ndarray) -> None:
    parts = make_partition(labels, 10, 0, "iid")
    # contiguous dealing would give client 0 exactly range(0, 200)
    assert not np.array_equal(parts[0], np.arange(200))
    # each iid client holds (almost) every class of a balanced label set
    report = partition_report(labels, parts, NUM_CLASSES)
    assert all(r["classes"] == NUM_CLASSES for r in report)


def test_iid_same_seed_same_partition_other_seed_differs(labels: np.ndarray) -> None:
    a = make_partition(labels, 10, 3, "iid")
    b = make_partition(labels, 10, 3, "iid")
    c = make_partition(labels, 10, 4, "iid")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


# --- dirichlet ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.1, 0.5, 100.0])
def test_dirichlet_disjoint_complete_sorted_and_min_samples(labels: np.ndarray, alpha: float) -> None:
    parts = make_partition(labels, 20, 0, "dirichlet", alpha=alpha, min_samples=12)
    assert len(parts) == 20
    assert_disjoint_and_complete(parts, len(labels))
    assert_sorted(parts)
    assert min(len(p) for p in parts) >= 12
    assert all(p.dtype.kind == "i" for p in parts)


def test_dirichlet_small_alpha_gives_fewer_classes_per_client(labels: np.ndarray) -> None:
    def mean_classes(alpha: float) -> float:
        values = []
        for seed in range(3):
            parts = make_partition(labels, 20, seed, "dirichlet", alpha=alpha)
            values += [r["classes"] for r in partition_report(labels, parts, NUM_CLASSES)]
        return float(np.mean(values))

    skewed, balanced = mean_classes(0.1), mean_classes(100.0)
    assert skewed < balanced
    assert skewed < 0.7 * NUM_CLASSES
    assert balanced > 0.95 * NUM_CLASSES


def test_dirichlet_seeded(labels: np.ndarray) -> None:
    a = make_partition(labels, 15, 7, "dirichlet", alpha=0.5)
    b = make_partition(labels, 15, 7, "dirichlet", alpha=0.5)
    c = make_partition(labels, 15, 8, "dirichlet", alpha=0.5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize(("method", "options"), [("iid", {}), ("dirichlet", {"alpha": 0.3})])
def test_partition_leaves_global_rng_alone(labels: np.ndarray, method: str, options: dict) -> None:
    np.random.seed(123)
    before = np.random.get_state()
    first = make_partition(labels, 10, 5, method, **options)
    after = np.random.get_state()
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]

    np.random.seed(999)  # a different global seed must not change the partition
    np.random.random(17)
    second = make_partition(labels, 10, 5, method, **options)
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))


# --- shards (McMahan et al. 2017) ------------------------------------------------------------------


@pytest.mark.parametrize(("clients", "spc"), [(30, 2), (10, 3), (20, 1), (7, 4)])
def test_shards_use_every_sample_once_and_give_each_client_at_most_its_shards_labels(
    labels: np.ndarray, clients: int, spc: int
) -> None:
    parts = make_partition(labels, clients, 0, "shards", shards_per_client=spc)
    assert len(parts) == clients
    assert_disjoint_and_complete(parts, len(labels))
    assert_sorted(parts)
    assert max(len(np.unique(labels[p])) for p in parts) <= spc
    if clients * spc % NUM_CLASSES == 0:  # every class cut into as many shards: equal shards, as in the paper
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= spc


def test_shards_of_unequal_classes_never_straddle_two_labels() -> None:
    # class sizes 50, 130, 820: near-equal cuts of the sorted labels would cross class boundaries
    y = np.repeat(np.arange(3), [50, 130, 820])
    np.random.default_rng(4).shuffle(y)
    parts = make_partition(y, 25, 1, "shards", shards_per_client=2)
    assert_disjoint_and_complete(parts, len(y))
    assert max(len(np.unique(y[p])) for p in parts) <= 2
    # shards follow the class sizes: the big class is cut into most of the 50 shards
    assert sum(2 in set(y[p]) for p in parts) > sum(0 in set(y[p]) for p in parts)


def test_shards_are_seeded(labels: np.ndarray) -> None:
    a = make_partition(labels, 30, 5, "shards", shards_per_client=2)
    b = make_partition(labels, 30, 5, "shards", shards_per_client=2)
    c = make_partition(labels, 30, 6, "shards", shards_per_client=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_shards_are_much_more_skewed_than_iid(labels: np.ndarray) -> None:
    iid_classes = np.mean(
        [r["classes"] for r in partition_report(labels, make_partition(labels, 30, 0, "iid"), 10)]
    )
    shard_parts = make_partition(labels, 30, 0, "shards", shards_per_client=2)
    shard_classes = np.mean([r["classes"] for r in partition_report(labels, shard_parts, 10)])
    assert iid_classes > 9 and shard_classes <= 2


@pytest.mark.parametrize(("clients", "spc"), [(30, 100), (3, 2), (5, 0)])
def test_impossible_shards_raise_with_the_range_that_fits(labels: np.ndarray, clients: int, spc: int) -> None:
    # 2,000 samples of 10 classes: clients × shards_per_client must lie in 10 … 2,000
    with pytest.raises(PartitionError, match="shards_per_client"):
        make_partition(labels, clients, 0, "shards", shards_per_client=spc)


# --- errors ------------------------------------------------------------------------------------


def test_unknown_method_raises(labels: np.ndarray) -> None:
    with pytest.raises(PartitionError, match="unknown partition method 'quantity'"):
        make_partition(labels, 5, 0, "quantity")


@pytest.mark.parametrize("clients", [0, 11])
def test_too_many_or_zero_clients_raise(clients: int) -> None:
    y = np.arange(10) % 2
    with pytest.raises(PartitionError, match=f"cannot split 10 samples over {clients} clients"):
        make_partition(y, clients, 0, "iid")


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_dirichlet_alpha_must_be_positive(labels: np.ndarray, alpha: float) -> None:
    with pytest.raises(PartitionError, match="alpha must be > 0"):
        make_partition(labels, 5, 0, "dirichlet", alpha=alpha)


def test_dirichlet_impossible_min_samples_raises(labels: np.ndarray) -> None:
    # 2,000 samples over 20 clients cannot give every client 101
    with pytest.raises(PartitionError, match="raise alpha, lower min_samples or use fewer clients"):
        make_partition(labels, 20, 0, "dirichlet", alpha=100.0, min_samples=101, max_tries=5)


def test_partition_error_is_a_value_error() -> None:
    assert issubclass(PartitionError, ValueError)


# --- report and JSON ---------------------------------------------------------------------------


def test_partition_report_matches_numpy_recount(labels: np.ndarray) -> None:
    parts = make_partition(labels, 12, 2, "dirichlet", alpha=0.3)
    report = partition_report(labels, parts, NUM_CLASSES)
    assert [r["client"] for r in report] == list(range(12))
    for r, idx in zip(report, parts, strict=True):
        counts = [int(np.sum(labels[idx] == c)) for c in range(NUM_CLASSES)]
        assert r["class_counts"] == counts
        assert r["samples"] == len(idx) == sum(counts)
        assert r["classes"] == sum(c > 0 for c in counts)


def test_partition_report_on_hand_made_partition() -> None:
    y = np.array([0, 1, 1, 2, 2, 2])
    parts = [np.array([0, 3]), np.array([1, 2, 4, 5])]
    report = partition_report(y, parts, num_classes=4)
    assert report == [
        {"client": 0, "samples": 2, "classes": 2, "class_counts": [1, 0, 1, 0]},
        {"client": 1, "samples": 4, "classes": 2, "class_counts": [0, 2, 2, 0]},
    ]


def test_json_round_trip(labels: np.ndarray) -> None:
    parts = make_partition(labels, 9, 0, "dirichlet", alpha=0.5)
    obj = json.loads(json.dumps(to_json(parts)))  # through real JSON text
    assert sorted(obj, key=int) == [str(c) for c in range(9)]
    back = from_json(obj)
    assert len(back) == 9
    for a, b in zip(parts, back, strict=True):
        assert b.dtype == np.int64
        assert np.array_equal(a, b)
