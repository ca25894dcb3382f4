"""Brain-MRI / PlantVillage style class-folder archives: fetched, verified, extracted and read with PIL."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from equitable_fl.data import image_folder, registry
from equitable_fl.data.archive import UnsafeArchiveError
from equitable_fl.data.download import FetchError, RawDataError
from equitable_fl.data.image_folder import UnverifiedSourceError
from equitable_fl.data.prepared import load_prepared, save_prepared

CLASSES = ("Tomato___healthy", "Apple___Black_rot", "Corn_(maize)___Common_rust_")
COLOURS = {
    "Apple___Black_rot": (200, 30, 30),
    "Corn_(maize)___Common_rust_": (30, 200, 30),
    "Tomato___healthy": (30, 30, 200),
}


def _png(colour: tuple[int, int, int], size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def _tree(per_class: dict[str, int], prefix: str) -> dict[str, bytes]:
    """Archive members: one solid-colour PNG per image, odd sizes and modes to exercise the resize."""
    members = {}
    for cls, n in per_class.items():
        for k in range(n):
            mode = "L" if k % 3 == 2 else "RGB"
            colour = COLOURS[cls] if mode == "RGB" else (90, 90, 90)
            members[f"{prefix}{cls}/img_{k:03d}.png"] = _png(colour, (20 + k, 12 + 2 * k), mode)
    return members


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _colour_label(ds, x: np.ndarray, y: np.ndarray) -> None:
    """Every RGB image's colour must belong to its label's class (grey ones are the L-mode images)."""
    for image, label in zip(x, y, strict=True):
        pixel = tuple(int(v) for v in image[:, 0, 0])
        assert (image == image[:, :1, :1]).all()  # a solid image stays solid after resizing
        assert pixel in (COLOURS[ds.class_names[label]], (90, 90, 90))


def test_single_folder_zip_end_to_end(http_server, tmp_path):
    per_class = {"Tomato___healthy": 10, "Apple___Black_rot": 5, "Corn_(maize)___Common_rust_": 5}
    archive = _zip(_tree(per_class, "PV-abc/raw/color/"))
    url = http_server.put("pv.zip", archive)
    cfg = {
        "url": url,
        "sha256": _sha(archive),
        "root": "PV-abc/raw/color",
        "classes": list(CLASSES),
        "resolution": 16,
        "manual_dir": str(tmp_path / "manual"),
    }
    raw_dir = tmp_path / "raw"
    spec = registry.get("plantvillage")
    spec.fetch(cfg, raw_dir)
    ds = spec.prepare(cfg, raw_dir)
    assert ds.class_names == tuple(sorted(CLASSES))
    assert ds.x_train.shape == (16, 3, 16, 16) and ds.x_test.shape == (4, 3, 16, 16)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_test, minlength=3).tolist() == [1, 1, 2]  # stratified 20 %
    _colour_label(ds, ds.x_train, ds.y_train)
    _colour_label(ds, ds.x_test, ds.y_test)
    assert ds.source["archive"] == {
        "archive": "PlantVillage-Dataset-" + image_folder.PLANTVILLAGE_COMMIT + ".zip",
        "sha256": _sha(archive),
        "verified": True,
    }

    save_prepared(ds, tmp_path / "pv.npz", tmp_path / "pv.json")  # metadata is JSON-clean
    assert load_prepared(tmp_path / "pv.npz", tmp_path / "pv.json").source == ds.source

    again = spec.prepare(cfg, raw_dir)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    other_seed = spec.prepare({**cfg, "split_seed": 1}, raw_dir)
    assert not np.array_equal(other_seed.y_train, ds.y_train) or not np.array_equal(
        other_seed.x_train, ds.x_train
    )

    # Fetching again: verified archive in place, extraction recorded, no network.
    http_server.requests.clear()
    marker_mtime = (raw_dir / "extracted.json").stat().st_mtime_ns
    spec.fetch(cfg, raw_dir)
    assert http_server.requests == []
    assert (raw_dir / "extracted.json").stat().st_mtime_ns == marker_mtime


def test_split_folders_targz_from_a_hand_downloaded_archive(tmp_path):
    members = _tree({"Apple___Black_rot": 4, "Tomato___healthy": 3}, "Training/")
    members.update(_tree({"Apple___Black_rot": 2, "Tomato___healthy": 1}, "Testing/"))
    members["Training/Apple___Black_rot/notes.txt"] = b"not an image, ignored"
    members["__MACOSX/._junk"] = b"resource fork"
    archive = _targz(members)
    local = tmp_path / "downloads" / "brain.tar.gz"
    local.parent.mkdir()
    local.write_bytes(archive)
    cfg = {"archive": str(local), "sha256": _sha(archive), "classes": None, "resolution": 8}
    raw_dir = tmp_path / "raw"
    image_folder.fetch("brain-mri", cfg, raw_dir)
    ds = image_folder.prepare("brain-mri", cfg, raw_dir)
    assert ds.class_names == ("Apple___Black_rot", "Tomato___healthy")
    assert ds.x_train.shape == (7, 3, 8, 8) and ds.x_test.shape == (3, 3, 8, 8)
    assert ds.y_train.tolist() == [0, 0, 0, 0, 1, 1, 1]  # sorted classes, sorted files
    _colour_label(ds, ds.x_train, ds.y_train)


def test_brain_mri_without_archive_asks_for_a_hand_download(tmp_path):
    cfg = {"sha256": "0" * 64}
    with pytest.raises(FetchError) as info:
        registry.get("brain-mri").fetch(cfg, tmp_path / "raw")
    message = str(info.value)
    expected_path = tmp_path / "manual" / "brain-mri" / "brain-tumor-mri-dataset.zip"
    assert "Download it yourself" in message and "kaggle.com/datasets/masoudnickparvar" in message
    assert str(expected_path) in message
    assert "'brain-mri'" in message


def test_brain_mri_defaults_explain_the_hand_download_and_the_checksum(tmp_path):
    with pytest.raises(UnverifiedSourceError) as info:
        registry.get("brain-mri").fetch({}, tmp_path / "raw")
    message = str(info.value)
    expected_path = tmp_path / "manual" / "brain-mri" / "brain-tumor-mri-dataset.zip"
    assert "Download it yourself" in message and "kaggle.com/datasets/masoudnickparvar" in message
    assert str(expected_path) in message and "allow_unverified: true" in message


def test_missing_checksum_is_refused_before_any_download(http_server, tmp_path):
    archive = _zip(_tree({"Apple___Black_rot": 2, "Tomato___healthy": 2}, "root/"))
    url = http_server.put("pv.zip", archive)
    cfg = {"url": [url], "root": "root", "classes": None, "resolution": 8, "test_size": 0.5}
    with pytest.raises(UnverifiedSourceError, match="allow_unverified: true"):
        image_folder.fetch("plantvillage", cfg, tmp_path / "raw")
    assert http_server.requests == []
    assert not (tmp_path / "raw").exists()

    image_folder.fetch("plantvillage", {**cfg, "allow_unverified": True}, tmp_path / "raw")
    ds = image_folder.prepare("plantvillage", cfg, tmp_path / "raw")
    assert ds.x_train.shape == (2, 3, 8, 8) and ds.source["archive"]["verified"] is False

    # With the file now present, the refusal prints its hash so it can be pinned.
    with pytest.raises(UnverifiedSourceError, match=f"sha256: {_sha(archive)}"):
        image_folder.fetch("plantvillage", cfg, tmp_path / "raw")


def test_wrong_checksum_leaves_nothing_extracted(http_server, tmp_path):
    archive = _zip(_tree({"Apple___Black_rot": 2}, "root/"))
    url = http_server.put("pv.zip", archive)
    cfg = {"url": url, "sha256": _sha(b"something else"), "root": "root", "classes": None}
    with pytest.raises(FetchError, match="checksum mismatch"):
        image_folder.fetch("plantvillage", cfg, tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == []


def test_hostile_archive_is_refused_by_fetch(http_server, tmp_path):
    members = _tree({"Apple___Black_rot": 2}, "root/")
    members["../../escaped.png"] = b"x"
    archive = _zip(members)
    url = http_server.put("pv.zip", archive)
    cfg = {"url": url, "sha256": _sha(archive), "root": "root", "classes": None}
    with pytest.raises(UnsafeArchiveError, match=r"escaped\.png"):
        image_folder.fetch("plantvillage", cfg, tmp_path / "raw")
    assert not (tmp_path / "raw" / "extracted").exists()
    assert not (tmp_path / "escaped.png").exists()


def _fetched(tmp_path: Path, members: dict[str, bytes], **cfg) -> tuple[dict, Path]:
    archive = _zip(members)
    local = tmp_path / "local.zip"
    local.write_bytes(archive)
    cfg = {
        "archive": str(local),
        "sha256": _sha(archive),
        "root": "root",
        "classes": None,
        "resolution": 8,
        "test_size": 0.5,
        **cfg,
    }
    image_folder.fetch("plantvillage", cfg, tmp_path / "raw")
    return cfg, tmp_path / "raw"


def test_unreadable_image_is_named(tmp_path):
    members = _tree({"Apple___Black_rot": 2, "Tomato___healthy": 2}, "root/")
    members["root/Tomato___healthy/broken.png"] = b"\x89PNG truncated"
    cfg, raw_dir = _fetched(tmp_path, members)
    with pytest.raises(RawDataError, match=r"cannot read image .*Tomato___healthy/broken\.png"):
        image_folder.prepare("plantvillage", cfg, raw_dir)


def test_empty_class_folder_is_named(tmp_path):
    members = _tree({"Apple___Black_rot": 2}, "root/")
    members["root/Tomato___healthy/readme.txt"] = b"no images here"
    cfg, raw_dir = _fetched(tmp_path, members)
    with pytest.raises(RawDataError, match=r"class folder .*Tomato___healthy holds no images"):
        image_folder.prepare("plantvillage", cfg, raw_dir)


def test_classes_are_checked(tmp_path):
    cfg, raw_dir = _fetched(tmp_path, _tree({"Apple___Black_rot": 2, "Tomato___healthy": 2}, "root/"))
    with pytest.raises(RawDataError, match=r"missing \['Corn_\(maize\)___Common_rust_'\]"):
        image_folder.prepare("plantvillage", {**cfg, "classes": list(CLASSES)}, raw_dir)


def test_wrong_root_lists_what_is_there(tmp_path):
    cfg, raw_dir = _fetched(tmp_path, _tree({"Apple___Black_rot": 2, "Tomato___healthy": 2}, "root/"))
    with pytest.raises(RawDataError, match=r"holds \['root'\]"):
        image_folder.prepare("plantvillage", {**cfg, "root": "PlantVillage/raw/color"}, raw_dir)


def test_limits_subsample_after_the_split(tmp_path):
    cfg, raw_dir = _fetched(tmp_path, _tree({"Apple___Black_rot": 6, "Tomato___healthy": 6}, "root/"))
    ds = image_folder.prepare("plantvillage", {**cfg, "train_limit": 2, "test_limit": 4}, raw_dir)
    assert ds.y_train.tolist() == [0, 1] and sorted(ds.y_test.tolist()) == [0, 0, 1, 1]


def test_defaults_point_to_the_public_versions():
    brain = image_folder.options("brain-mri", {})
    assert brain["classes"] == ["glioma", "meningioma", "notumor", "pituitary"]
    assert brain["layout"] == "split_folders" and (brain["train_folder"], brain["test_folder"]) == (
        "Training",
        "Testing",
    )
    assert brain["url"] == [] and brain["sha256"] is None and brain["resolution"] == 64
    plant = image_folder.options("plantvillage", {})
    assert len(plant["classes"]) == 38 == len(set(plant["classes"]))
    assert plant["url"][0].startswith("https://github.com/spMohanty/PlantVillage-Dataset/archive/")
    assert plant["root"].endswith("/raw/color") and plant["sha256"] is None
    assert image_folder.options("plantvillage", {"url": "http://x/y.zip"})["url"] == ["http://x/y.zip"]
