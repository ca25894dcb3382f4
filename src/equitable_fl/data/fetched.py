"""Registers the paper's five datasets, which are downloaded rather than shipped.

MNIST, Fashion-MNIST and CIFAR-10 come through torchvision's dataset classes
(:mod:`~equitable_fl.data.torchvision_sets`); Brain-MRI and PlantVillage are class-folder archives
(:mod:`~equitable_fl.data.image_folder`). Neither module imports torchvision or Pillow until a dataset
is actually fetched or prepared, so looking a name up in the registry stays cheap.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType

from equitable_fl.data import image_folder, torchvision_sets
from equitable_fl.data.registry import DatasetSpec, register


def _register(
    module: ModuleType,
    name: str,
    description: str,
    input_shape: tuple[int, int, int] | None,
    num_classes: int,
    model: str,
) -> None:
    register(
        DatasetSpec(
            name=name,
            description=description,
            input_shape=input_shape,
            num_classes=num_classes,
            model=model,
            prepare=partial(module.prepare, name),
            fetch=partial(module.fetch, name),
        )
    )


_register(
    torchvision_sets,
    "mnist",
    "MNIST digits (torchvision files, official 60k/10k split)",
    (1, 28, 28),
    10,
    "cnn28",
)
_register(
    torchvision_sets,
    "fashion-mnist",
    "Fashion-MNIST clothing (torchvision files, official 60k/10k split)",
    (1, 28, 28),
    10,
    "cnn28",
)
_register(
    torchvision_sets,
    "cifar10",
    "CIFAR-10 (torchvision archive, official 50k/10k split)",
    (3, 32, 32),
    10,
    "cnn32",
)
# Input shape None: the resolution of the image-folder sets is a config value (default 64×64 RGB).
_register(
    image_folder,
    "brain-mri",
    "Brain tumour MRI, 4 classes (Kaggle, Nickparvar; downloaded by hand), RGB at the configured resolution",
    None,
    4,
    "cnn_rgb",
)
_register(
    image_folder,
    "plantvillage",
    "PlantVillage leaf diseases, 38 classes (spMohanty GitHub, color), RGB at the configured resolution",
    None,
    38,
    "cnn_rgb",
)
