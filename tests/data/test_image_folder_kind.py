"""Image folders as a dataset kind: any name, a folder or an archive, classes taken from the folders.

The trees are written here as real PNG and JPEG files in solid colours (one per class), read back
through the pipeline's own fetch and prepare steps and the config checks. The end-to-end Snakemake run
of a new-name dataset is ``tests/workflow/test_image_folder_workflow.py``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from equitable_fl import io as eqio
from equitable_fl.config import ConfigError, Experiment
from equitable_fl.data import image_folder, registry
from equitable_fl.data.class_folders import tree_digest
from equitable_fl.data.download import FetchError, RawDataError
from equitable_fl.data.prepared import load_prepared
from equitable_fl.data.registry import UnknownDatasetError
from equitable_fl.stages import data

LEAVES = ("oak", "maple", "birch", "ash", "elm")  # 5 classes: no preset has 5


def colour(k: int) -> tuple[int, int, int]:
    return (40 * k + 20, 200 - 35 * k, 90 + 25 * k)


def image_bytes(rgb: tuple[int, int, int], size: tuple[int, int], fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format=fmt)
    return buf.getvalue()


def members(classes: tuple[str, ...] = LEAVES, per_class: int = 4, prefix: str = "") -> dict[str, bytes]:
    """Relative path → image file: PNGs and lossless-enough JPEGs of odd sizes, one colour per class."""
    out = {}
    for k, cls in enumerate(classes):
        for i in range(per_class):
            fmt, suffix = ("PNG", ".png") if i % 2 == 0 else ("JPEG", ".JPG")
            out[f"{prefix}{cls}/leaf_{i}{suffix}"] = image_bytes(colour(k), (9 + i, 7 + 2 * i), fmt)
    return out


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, blob in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return root


def config(name: str, options: dict, model: dict | None = None) -> dict:
    entry = {"kind": "image_folder", "options": options}
    if model is not None:
        entry["model"] = model
    return {
        "grid": {"datasets": [name], "pruning_rates": [0.5], "seeds": [0]},
        "datasets": {name: entry},
        "clients": {"count": 4},
        "phases": [{"rounds": 1}],
    }


def fetch_and_prepare(name: str, options: dict, tmp_path: Path, kind: str | None = "image_folder"):
    raw, out = tmp_path / "raw" / name, tmp_path / "out"
    data.fetch(name, options, str(raw), str(out / "fetched.json"), kind=kind)
    data.prepare(
        name, options, str(raw), str(out / "p.npz"), str(out / "meta.json"), fetched=str(out / "fetched.json")
    )
    return load_prepared(out / "p.npz", out / "meta.json"), eqio.read_json(out / "fetched.json")


def assert_colours_match_labels(ds, classes: tuple[str, ...]) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        for image, label in zip(x, y, strict=True):
            expected = np.asarray(colour(classes.index(ds.class_names[label])))
            assert np.abs(image[:, 0, 0].astype(int) - expected).max() <= 3  # JPEG rounding


def test_registry_resolves_any_name_of_kind_image_folder() -> None:
    spec = registry.get("leaves-5", "image_folder")
    assert (spec.kind, spec.model, spec.num_classes, spec.input_shape) == (
        "image_folder",
        "cnn_rgb",
        None,
        None,
    )
    assert not spec.embedded and spec.defaults() == image_folder.GENERIC
    assert "leaves-5" not in registry.names()  # resolved, not registered
    for preset in ("brain-mri", "plantvillage"):
        assert registry.get(preset).kind == "image_folder"
        assert registry.get(preset, "image_folder").defaults() == image_folder.DEFAULTS[preset]
    with pytest.raises(UnknownDatasetError, match=r"datasets\.leaves-5\.kind: image_folder"):
        registry.get("leaves-5")
    with pytest.raises(UnknownDatasetError, match="cannot serve a new name"):
        registry.get("leaves-5", "torchvision")
    with pytest.raises(UnknownDatasetError, match="built-in dataset of kind 'torchvision'"):
        registry.get("mnist", "image_folder")


def test_a_new_name_from_a_folder_with_five_classes(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "my leaves", members(per_class=5))
    options = {"folder": str(folder), "resolution": 8, "test_size": 0.2, "classes": list(reversed(LEAVES))}
    ds, fetched = fetch_and_prepare("leaves-5", options, tmp_path)
    assert fetched["kind"] == "image_folder"  # the prepare step finds the kind in the fetch marker
    assert ds.class_names == tuple(sorted(LEAVES))  # sorted folder names, whatever order `classes` has
    assert ds.input_shape == (3, 8, 8) and len(ds.x_train) == 20 and len(ds.x_test) == 5
    assert np.bincount(ds.y_test, minlength=5).tolist() == [1] * 5  # stratified
    assert_colours_match_labels(ds, LEAVES)
    digest, n_files = tree_digest(folder)
    assert ds.source["folder"] == {
        "folder": str(folder),
        "sha256": digest,
        "files": n_files,
        "verified": False,
    }

    # pinned: the right digest passes; a wrong one names both hashes and how to fix it
    fetch_and_prepare("leaves-5", {**options, "sha256": digest}, tmp_path / "pinned")
    with pytest.raises(FetchError, match=f"has sha256 {digest}, expected {'0' * 64}.*set `sha256: {digest}`"):
        fetch_and_prepare("leaves-5", {**options, "sha256": "0" * 64}, tmp_path / "wrong")

    # a folder changed after it was fetched is refused by prepare, never read silently
    raw = tmp_path / "changed" / "raw"
    data.fetch("leaves-5", options, str(raw), str(tmp_path / "changed" / "f.json"), kind="image_folder")
    (folder / "oak" / "leaf_0.png").write_bytes(image_bytes((0, 0, 0), (5, 5), "PNG"))
    with pytest.raises(RawDataError, match=r"changed since it was fetched.*-R fetch_leaves_5"):
        image_folder.prepare("leaves-5", options, raw)


def test_a_new_name_from_a_zip_with_split_folders_and_a_class_check(tmp_path: Path) -> None:
    files = members(per_class=3, prefix="pics/train/")
    files.update(members(per_class=1, prefix="pics/test/"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, blob in files.items():
            zf.writestr(rel, blob)
    archive = tmp_path / "downloads" / "leaves.zip"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    sha = image_folder.file_digests(archive)["sha256"]
    options = {
        "archive": str(archive),
        "sha256": sha,
        "root": "pics",
        "layout": "split_folders",
        "resolution": 6,
    }
    ds, _ = fetch_and_prepare("leaves-zip", options, tmp_path)
    assert image_folder.options("leaves-zip", options)["filename"] == "leaves.zip"
    assert (len(ds.x_train), len(ds.x_test), ds.num_classes) == (15, 5, 5)
    assert_colours_match_labels(ds, LEAVES)
    with pytest.raises(RawDataError, match=r"missing \['pine'\], unexpected \['ash', 'elm'\]"):
        image_folder.prepare(
            "leaves-zip",
            {**options, "classes": ["oak", "maple", "birch", "pine"]},
            tmp_path / "raw" / "leaves-zip",
        )


def test_presets_take_their_users_folders_whatever_their_class_count(tmp_path: Path) -> None:
    """The issue's case: a 10-class folder under plantvillage (38 classes by default) and `classes: null`."""
    ten = tuple(f"c{k}" for k in range(10))
    pv = write_tree(tmp_path / "pv", members(ten, per_class=3))
    ds, _ = fetch_and_prepare(
        "plantvillage", {"folder": str(pv), "classes": None, "resolution": 4}, tmp_path, None
    )
    assert ds.num_classes == 10 and len(ds.x_train) + len(ds.x_test) == 30
    three = ("glioma", "meningioma", "pituitary")  # the 3-class Figshare release under brain-mri
    mri = write_tree(tmp_path / "mri", {**members(three, 2, "Training/"), **members(three, 1, "Testing/")})
    ds, _ = fetch_and_prepare(
        "brain-mri", {"folder": str(mri), "classes": None, "resolution": 4}, tmp_path / "b", None
    )
    assert ds.class_names == three and (len(ds.x_train), len(ds.x_test)) == (6, 3)
    with pytest.raises(RawDataError, match="do not match the configured classes"):  # the preset's 4 classes
        fetch_and_prepare("brain-mri", {"folder": str(mri), "resolution": 4}, tmp_path / "c", None)


def test_the_config_checks_a_folder_and_chooses_the_model_before_any_job(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "leaves", members(per_class=4))
    exp = Experiment.load(config("leaves-5", {"folder": str(folder), "resolution": 16}))
    assert exp.dataset_kind("leaves-5") == "image_folder"
    assert exp.model_config("leaves-5") == {"arch": "cnn_rgb"}  # chosen for the kind
    assert exp.dataset_spec("leaves-5").kind == "image_folder"

    def rejected(options: dict, model: dict | None = None) -> str:
        with pytest.raises(ConfigError) as info:
            Experiment.load(config("leaves-5", options, model))
        return str(info.value)

    msg = rejected(
        {"folder": str(folder), "resolution": 16, "classes": ["oak", "maple", "birch", "ash", "pine"]}
    )
    assert "datasets.leaves-5.options.classes" in msg and "missing ['pine'], unexpected ['elm']" in msg
    msg = rejected({"folder": str(folder), "resolution": 16, "test_size": 0.02})
    assert "datasets.leaves-5.options.test_size: 0.02 of the 20 images" in msg and "allowed: 0.025 < x" in msg
    msg = rejected({"folder": str(tmp_path / "nowhere"), "resolution": 16})
    assert "datasets.leaves-5.options.folder" in msg and "nowhere" in msg and "class folder root" in msg
    # cnn_rgb's 4 blocks need 16×16; at 8×8 at most 3 fit
    msg = rejected({"folder": str(folder), "resolution": 8})
    assert (
        "datasets.leaves-5.model.channels: [32, 64, 128, 128] (the cnn_rgb default) has 4 conv blocks" in msg
    )
    assert "allowed: at most 3 blocks, or datasets.leaves-5.options.resolution ≥ 16" in msg
    Experiment.load(
        config(
            "leaves-5", {"folder": str(folder), "resolution": 8}, {"arch": "cnn_rgb", "channels": [4, 8, 8]}
        )
    )
    # 5 classes from the folders, 20 images: more clients than images is refused too
    raw = config("leaves-5", {"folder": str(folder), "resolution": 16})
    raw["clients"]["count"] = 17
    with pytest.raises(
        ConfigError, match=r"clients.count: 17 .* 16 training images of leaves-5; allowed: ≤ 16"
    ):
        Experiment.load(raw)
