"""Dataset registry: a name maps to how the dataset is obtained and what shape it has.

The engine only sees :class:`~equitable_fl.data.prepared.PreparedDataset`; adding a dataset means
registering a :class:`DatasetSpec` here, nothing in the training code changes.
"""

from __future__ import annotations

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


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> DatasetSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Importing the modules registers their datasets; done lazily so that importing the registry
    # does not pull in torchvision or mlxtend.
    from equitable_fl.data import builtin  # noqa: F401
