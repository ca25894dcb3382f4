"""Steps that obtain and prepare datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from equitable_fl import io
from equitable_fl.data import registry
from equitable_fl.data.prepared import save_prepared


def fetch(
    dataset: str, options: dict[str, Any], raw_dir: str, done_marker: str, kind: str | None = None
) -> None:
    """Place a dataset's verified raw files under ``raw_dir``; write a marker listing them.

    ``kind`` is the config's ``datasets.<name>.kind``, needed for a name the registry does not know;
    the marker records it for the prepare step.
    """
    spec = registry.get(dataset, kind)
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    if spec.fetch is not None:
        spec.fetch(options, raw)
    # Downloads and their unpacked torchvision files; an image-folder archive's extracted tree
    # (tens of thousands of images) is covered by the archive's hash instead.
    files = sorted(p for p in raw.rglob("*") if p.is_file() and p.relative_to(raw).parts[0] != "extracted")
    io.write_json(
        done_marker,
        {
            "dataset": dataset,
            **({"kind": kind} if kind is not None else {}),
            "files": {str(p.relative_to(raw)): io.sha256_file(p) for p in files},
        },
    )


def prepare(
    dataset: str,
    options: dict[str, Any],
    raw_dir: str | None,
    out_npz: str,
    out_meta: str,
    kind: str | None = None,
    fetched: str | None = None,
) -> None:
    """Turn the raw files (or an embedded dataset) into the prepared npz and its metadata.

    ``kind`` as for :func:`fetch`; without it, the kind the fetch step recorded in ``fetched``.
    """
    if kind is None and fetched is not None:
        kind = io.read_json(fetched).get("kind")
    spec = registry.get(dataset, kind)
    ds = spec.prepare(options, Path(raw_dir) if raw_dir else None)
    if spec.input_shape is not None and ds.input_shape != spec.input_shape:
        raise ValueError(
            f"dataset {dataset!r} prepared with shape {ds.input_shape}, expected {spec.input_shape}"
        )
    # image folders: the classes are the folders' (the loader checks them against a `classes` list)
    if spec.num_classes is not None and ds.num_classes != spec.num_classes:
        raise ValueError(f"dataset {dataset!r} has {ds.num_classes} classes, expected {spec.num_classes}")
    save_prepared(ds, out_npz, out_meta)
