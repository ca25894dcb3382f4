"""Every registered dataset trains one Equitable-FL round, starting from a tiny real-format fixture.

Each downloadable dataset gets files in the format its public release uses (gzipped IDX files, the
CIFAR python batches in a tar.gz, a class-folder zip of JPEGs), fetched through its registry entry
(from the local HTTP server, or from the hand-download folder for Brain-MRI) with checksums pinned to
the fixture. The files then go through the pipeline's own steps, each reading and writing files in
``tmp_path`` as the Snakemake rules do: fetch → prepare → partition + clients → init → phase 1.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from test_image_folder import _sha, _zip
from test_torchvision_sets import _cifar_archive, _cifar_files, _idx_dataset, _md5

from equitable_fl import checkpoint
from equitable_fl import io as eqio
from equitable_fl.config import Experiment
from equitable_fl.data import image_folder, registry
from equitable_fl.data.prepared import load_prepared
from equitable_fl.stages import clients, data, train

RESOLUTION = 16  # image-folder sets are resized to RESOLUTION×RESOLUTION RGB
SEED = 0

# A workflow config shaped like config/config.yaml, scaled down (see tests/workflow/snakemake_runner.py).
CONFIG: dict[str, Any] = {
    "grid": {"datasets": [], "pruning_rates": [0.5], "seeds": [SEED]},
    "datasets": {},
    "clients": {
        "count": 4,
        "partition": {"method": "iid"},
        "resources": {"distribution": "uniform", "low": 0.25, "high": 1.6, "jitter": 0.15},
        "tiers": {"count": 3, "method": "quantile"},
    },
    "training": {"local_epochs": 1, "batch_size": 8, "lr": 0.05, "momentum": 0.9, "client_fraction": 1.0},
    "phases": [
        {"rounds": 1, "tiers": [1]},
        {"rounds": 1, "tiers": [1, 2]},
        {"rounds": 1, "tiers": [1, 2, 3]},
    ],
    "pruning": {"scope": "layerwise", "output_rate_factor": 0.5, "rewind_round": 0},
    "eligibility": {"check_budget": True},
    "vanilla": {"participation": "all"},
}
TINY_MODEL = {"channels": [4, 8], "hidden": 16}


def _jpeg(rng: np.random.Generator, tint: tuple[int, int, int], size: tuple[int, int], mode: str) -> bytes:
    """A noisy, tinted photo-like JPEG (the format both image-folder releases use)."""
    noise = rng.integers(0, 64, size=(size[1], size[0], 3))
    pixels = np.clip(np.asarray(tint) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").convert(mode).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _class_images(classes: list[str], prefix: str, per_class: int, seed: int, suffix: str, mode: str):
    rng = np.random.default_rng(seed)
    members = {}
    for c, cls in enumerate(classes):
        tint = (37 * c % 192, 91 * c % 192, 53 * c % 192)
        for k in range(per_class):
            size = (24 + 3 * k, 20 + 5 * k)  # odd, non-square sizes: prepare must resize
            members[f"{prefix}{cls}/image({k}){suffix}"] = _jpeg(rng, tint, size, mode)
    return members


# Each builder puts a dataset's fixture where its fetch will find it and returns the dataset's options
# (what `datasets.<name>.options` would hold in the config), with the manual folder the workflow sets.


def _idx_fixture(server, manual: Path, seed: int) -> dict[str, Any]:
    files = _idx_dataset(seed=seed, n_train=30, n_test=10)
    for filename, (blob, _) in files.items():
        server.put(f"idx{seed}/{filename}", blob)
    return {
        "mirrors": [server.url(f"idx{seed}/")],
        "checksums": {f: _md5(blob) for f, (blob, _) in files.items()},
        "manual_dir": str(manual),
    }


def _cifar_fixture(server, manual: Path) -> dict[str, Any]:
    files = _cifar_files(n_per_batch=4)
    archive = _cifar_archive(files)
    server.put("cifar/cifar-10-python.tar.gz", archive)
    return {
        "mirrors": [server.url("cifar/")],
        "checksums": {
            "cifar-10-python.tar.gz": _md5(archive),
            **{m: _md5(b) for m, (b, _, _) in files.items()},
        },
        "manual_dir": str(manual),
    }


def _brain_mri_fixture(server, manual: Path) -> dict[str, Any]:
    """Kaggle's zip (Training/<class>/, Testing/<class>/ of greyscale JPEGs), downloaded by hand."""
    classes = image_folder.options("brain-mri", {})["classes"]
    members = _class_images(classes, "Training/", 3, seed=1, suffix=".jpg", mode="L")
    members.update(_class_images(classes, "Testing/", 1, seed=2, suffix=".jpg", mode="L"))
    archive = _zip(members)
    manual.mkdir(parents=True)
    (manual / image_folder.DEFAULTS["brain-mri"]["filename"]).write_bytes(archive)
    return {"resolution": RESOLUTION, "sha256": _sha(archive), "manual_dir": str(manual)}


def _plantvillage_fixture(server, manual: Path) -> dict[str, Any]:
    """GitHub's zip of the pinned commit: 38 class folders of colour JPEGs under <repo>-<sha>/raw/color/."""
    opts = image_folder.options("plantvillage", {})
    members = _class_images(opts["classes"], opts["root"] + "/", 2, seed=3, suffix=".JPG", mode="RGB")
    archive = _zip(members)
    url = server.put(
        f"spMohanty/PlantVillage-Dataset/archive/{image_folder.PLANTVILLAGE_COMMIT}.zip", archive
    )
    return {"resolution": RESOLUTION, "url": url, "sha256": _sha(archive), "manual_dir": str(manual)}


def _mnist_sample_fixture(server, manual: Path) -> dict[str, Any]:
    return {"test_size": 500, "split_seed": 0}  # embedded: nothing to fetch


FIXTURES: dict[str, tuple[Callable[..., dict[str, Any]], tuple[int, int, int]]] = {
    "mnist": (lambda server, manual: _idx_fixture(server, manual, seed=1), (1, 28, 28)),
    "fashion-mnist": (lambda server, manual: _idx_fixture(server, manual, seed=2), (1, 28, 28)),
    "cifar10": (_cifar_fixture, (3, 32, 32)),
    "brain-mri": (_brain_mri_fixture, (3, RESOLUTION, RESOLUTION)),
    "plantvillage": (_plantvillage_fixture, (3, RESOLUTION, RESOLUTION)),
    "mnist-sample": (_mnist_sample_fixture, (1, 28, 28)),
}


def test_every_registered_dataset_has_a_fixture_here():
    assert sorted(FIXTURES) == registry.names()


@pytest.mark.parametrize("name", list(FIXTURES))
def test_dataset_trains_one_round_from_a_real_format_fixture(name, http_server, tmp_path):
    build, expected_shape = FIXTURES[name]
    spec = registry.get(name)
    options = build(http_server, tmp_path / "data" / "manual" / name)
    config = {
        **CONFIG,
        "grid": {**CONFIG["grid"], "datasets": [name]},
        "datasets": {name: {"options": options, "model": {"arch": spec.model, **TINY_MODEL}}},
    }
    Experiment.load(config)
    results = tmp_path / "results"
    cell = results / name / f"seed{SEED}"

    # fetch + prepare (rules fetch_<name> and prepare)
    raw_dir = None
    if not spec.embedded:
        raw_dir = tmp_path / "data" / "raw" / name
        data.fetch(name, options, str(raw_dir), str(results / "data" / name / "fetched.json"))
        fetched = eqio.read_json(results / "data" / name / "fetched.json")
        assert fetched["dataset"] == name and fetched["files"]
        if name == "brain-mri":
            assert http_server.requests == []  # the hand-downloaded zip needs no network
        else:
            assert http_server.requests and {r.status for r in http_server.requests} == {200}
    npz, meta = results / "data" / name / "prepared.npz", results / "data" / name / "meta.json"
    data.prepare(name, options, str(raw_dir) if raw_dir else None, str(npz), str(meta))
    ds = load_prepared(npz, meta)
    assert ds.input_shape == expected_shape
    # image folders take their classes from the folders: here the preset's default classes
    num_classes = spec.num_classes or len(spec.defaults()["classes"])
    assert ds.num_classes == num_classes
    assert ds.x_train.dtype == np.uint8 and len(ds.x_test) > 0

    # partition + clients
    clients.partition(
        str(npz),
        str(meta),
        SEED,
        {k: config["clients"][k] for k in ("count", "partition")},
        str(cell / "partition.json"),
        str(cell / "partition.csv"),
    )
    parts = eqio.read_json(cell / "partition.json")["clients"]
    assert sorted(i for p in parts.values() for i in p) == list(range(len(ds.y_train)))
    clients_json = results / "clients" / f"seed{SEED}" / "clients.json"
    clients.profiles(
        SEED, {k: config["clients"][k] for k in ("count", "resources", "tiers")}, str(clients_json)
    )

    # init_model
    init = cell / "init"
    train.init(
        str(meta),
        SEED,
        config["datasets"][name]["model"],
        str(init / "weights.safetensors"),
        str(init / "model.json"),
        str(init / "mask.safetensors"),
    )
    card = eqio.read_json(init / "model.json")
    assert card["arch"] == spec.model
    assert tuple(card["input_shape"]) == ds.input_shape == expected_shape
    assert card["num_classes"] == num_classes

    # phase1
    out = cell / "phase1"
    params = Experiment.load(config).phase_slice(1, SEED)
    assert params["rounds"] == 1
    train.phase(
        npz=str(npz),
        meta=str(meta),
        partition_json=str(cell / "partition.json"),
        clients_json=str(clients_json),
        card=str(init / "model.json"),
        start_weights=str(init / "weights.safetensors"),
        start_mask=str(init / "mask.safetensors"),
        params=params,
        threads=1,
        out=train.TrainingOutputs(
            weights=str(out / "weights.safetensors"),
            mask=str(out / "mask.safetensors"),
            metrics=str(out / "metrics.json"),
            participation=str(out / "participation.json"),
            timing=str(out / "timing.json"),
            params=str(out / "params.json"),
            rewind=str(out / "rewind.safetensors"),
        ),
    )

    metrics = eqio.read_json(out / "metrics.json")
    assert len(metrics["history"]) == 1 and metrics["rounds"] == 1
    record = metrics["history"][0]
    assert 0.0 <= record["accuracy"] <= 1.0 and record["accuracy"] == metrics["final_accuracy"]
    assert math.isfinite(record["loss"]) and math.isfinite(record["train_loss"])
    assert record["samples"] > 0

    participation = eqio.read_json(out / "participation.json")
    eligible = participation["eligible"]
    assert eligible and set(record["clients"]) <= set(eligible)
    assert participation["took_part"] == sorted(record["clients"])
    tiers = {p["client"]: p["tier"] for p in eqio.read_json(clients_json)["clients"]}
    assert {tiers[c] for c in eligible} <= set(params["tiers"])

    start = checkpoint.load_tensors(init / "weights.safetensors", kind="weights")
    trained = checkpoint.load_tensors(out / "weights.safetensors", kind="weights")
    assert start.keys() == trained.keys()
    assert any(not torch.equal(start[k], trained[k]) for k in start)
    assert all(torch.isfinite(t).all() for t in trained.values())
    rewind = checkpoint.load_tensors(out / "rewind.safetensors", kind="weights")
    assert all(torch.equal(rewind[k], start[k]) for k in start)  # rewind_round 0 keeps θ0
