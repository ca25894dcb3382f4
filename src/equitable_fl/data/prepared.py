"""The prepared dataset format shared by every dataset.

A prepared dataset is one deterministic ``.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``)
plus a JSON sidecar of metadata. Images are uint8 in N×C×H×W layout and labels int64, so the file is
compact, versionable with DVC and loads into tensors without per-sample Python work.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl import io

SPLITS = ("train", "test")


class PreparedDataError(ValueError):
    """A prepared dataset file is missing, corrupt or inconsistent."""


@dataclass(frozen=True)
class PreparedDataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_arrays(self.name, self.arrays(), len(self.class_names))

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_test": self.x_test,
            "y_test": self.y_test,
        }

    def meta(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "input_shape": list(self.input_shape),
            "num_train": int(self.x_train.shape[0]),
            "num_test": int(self.x_test.shape[0]),
            "train_class_counts": np.bincount(self.y_train, minlength=self.num_classes).tolist(),
            "source": self.source,
        }


def validate_arrays(name: str, arrays: dict[str, np.ndarray], num_classes: int) -> None:
    """Check dtypes, shapes and label ranges, naming the dataset and array at fault."""
    for split in SPLITS:
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None or y is None:
            raise PreparedDataError(f"dataset {name!r}: split {split!r} is missing x_{split} or y_{split}")
        if x.dtype != np.uint8 or x.ndim != 4:
            raise PreparedDataError(
                f"dataset {name!r}: x_{split} must be uint8 N×C×H×W, got {x.dtype} with shape {x.shape}"
            )
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise PreparedDataError(
                f"dataset {name!r}: y_{split} must be int64 of shape ({x.shape[0]},), got {y.dtype} {y.shape}"
            )
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise PreparedDataError(f"dataset {name!r}: y_{split} has labels outside 0..{num_classes - 1}")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise PreparedDataError(f"dataset {name!r}: train and test images differ in shape")


def save_prepared(
    ds: PreparedDataset, npz_path: str | os.PathLike[str], meta_path: str | os.PathLike[str]
) -> None:
    io.save_npz(npz_path, ds.arrays())
    io.write_json(meta_path, ds.meta())


def load_prepared(npz_path: str | os.PathLike[str], meta_path: str | os.PathLike[str]) -> PreparedDataset:
    """Load and validate a prepared dataset; a broken file gives an error saying how to rebuild it."""
    npz_path, meta_path = Path(npz_path), Path(meta_path)
    hint = f"delete {npz_path} and rerun the workflow to prepare it again"
    try:
        meta = io.read_json(meta_path)
        arrays = io.load_npz(npz_path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise PreparedDataError(f"cannot read prepared dataset {npz_path}: {exc}; {hint}") from exc
    try:
        return PreparedDataset(
            name=meta["name"],
            class_names=tuple(meta["class_names"]),
            source=meta.get("source", {}),
            **arrays,
        )
    except (KeyError, TypeError, PreparedDataError) as exc:
        raise PreparedDataError(f"prepared dataset {npz_path} is inconsistent: {exc}; {hint}") from exc


def stratified_split(labels: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of indices into (train, test), test holding ``test_size`` samples.

    Each class contributes to the test set in proportion to its frequency (largest remainders fill
    the rounding gap), so class balance is kept on both sides. Uses a local generator only.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if not 0 < test_size < n:
        raise ValueError(f"test_size must be between 1 and {n - 1}, got {test_size}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * test_size / n
    per_class = np.floor(exact).astype(int)
    short = test_size - per_class.sum()
    order = np.argsort(-(exact - per_class), kind="stable")
    per_class[order[:short]] += 1
    test_parts, train_parts = [], []
    for cls, k in zip(classes, per_class, strict=True):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        test_parts.append(idx[:k])
        train_parts.append(idx[k:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test
