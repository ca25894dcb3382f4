"""MNIST / Fashion-MNIST / CIFAR-10: real-format files served locally, loaded by torchvision itself."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import time

import numpy as np
import pytest

from equitable_fl.data import registry, torchvision_sets
from equitable_fl.data.archive import ArchiveLimitError
from equitable_fl.data.download import FetchError, RawDataError
from equitable_fl.data.prepared import load_prepared, save_prepared

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR_MEMBERS = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return gzip.compress(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes(), mtime=0)


def _idx_labels(labels: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes(), mtime=0)


def _idx_dataset(seed: int, n_train: int = 20, n_test: int = 10) -> dict[str, tuple[bytes, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        out[f"{prefix}-images-idx3-ubyte.gz"] = (_idx_images(images), images)
        out[f"{prefix}-labels-idx1-ubyte.gz"] = (_idx_labels(labels), labels)
    return out


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_idx_fetch_and_prepare_end_to_end(http_server, tmp_path, name, folder):
    import torchvision.datasets

    files = _idx_dataset(seed=len(name))
    for filename, (blob, _) in files.items():
        http_server.put(f"good/{filename}", blob)
    cfg = {
        "mirrors": [http_server.url("missing/"), http_server.url("good")],  # first mirror: 404 for all
        "checksums": {f: _md5(blob) for f, (blob, _) in files.items()},
        "manual_dir": str(tmp_path / "manual"),
    }
    raw_dir = tmp_path / "raw"
    spec = registry.get(name)
    spec.fetch(cfg, raw_dir)
    for filename in IDX_FILES:
        assert (raw_dir / folder / "raw" / filename).is_file()
        assert (raw_dir / folder / "raw" / filename.removesuffix(".gz")).is_file()
    assert sorted({r.status for r in http_server.requests}) == [200, 404]

    ds = spec.prepare(cfg, raw_dir)
    assert ds.name == name
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10, 1, 28, 28)
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train[:, 0], files["train-images-idx3-ubyte.gz"][1])
    np.testing.assert_array_equal(ds.y_train, files["train-labels-idx1-ubyte.gz"][1])
    np.testing.assert_array_equal(ds.x_test[:, 0], files["t10k-images-idx3-ubyte.gz"][1])
    cls = getattr(torchvision.datasets, folder)
    assert ds.class_names == tuple(cls.classes)
    assert ds.input_shape == spec.input_shape

    # A second fetch finds every file verified in place and touches no network.
    http_server.requests.clear()
    spec.fetch(cfg, raw_dir)
    assert http_server.requests == []


def test_limits_give_a_stratified_subsample(http_server, tmp_path):
    files = _idx_dataset(seed=3)
    for filename, (blob, _) in files.items():
        http_server.put(filename, blob)
    cfg = {
        "mirrors": [http_server.url("")],
        "checksums": {f: _md5(blob) for f, (blob, _) in files.items()},
        "manual_dir": str(tmp_path / "manual"),
        "train_limit": 10,
        "test_limit": 5,
    }
    torchvision_sets.fetch("mnist", cfg, tmp_path / "raw")
    ds = torchvision_sets.prepare("mnist", cfg, tmp_path / "raw")
    assert ds.x_train.shape[0] == 10 and ds.x_test.shape[0] == 5
    assert sorted(ds.y_train.tolist()) == list(range(10))  # one image of each digit
    again = torchvision_sets.prepare("mnist", cfg, tmp_path / "raw")
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert ds.source["full_train_size"] == 20 and ds.source["train_limit"] == 10


def test_interrupted_file_resumes_on_the_next_fetch(http_server, tmp_path):
    files = _idx_dataset(seed=4, n_train=200)
    for filename, (blob, _) in files.items():
        http_server.put(filename, blob)
    cfg = {
        "mirrors": [http_server.url("")],
        "checksums": {f: _md5(blob) for f, (blob, _) in files.items()},
        "manual_dir": str(tmp_path / "manual"),
    }
    http_server.fail("train-images-idx3-ubyte.gz", "drop", times=None)
    raw = tmp_path / "raw" / "MNIST" / "raw"
    with pytest.raises(FetchError, match="connection dropped"):
        torchvision_sets.fetch("mnist", cfg, tmp_path / "raw")
    assert (raw / "train-images-idx3-ubyte.gz.part").is_file()
    assert not (raw / "train-images-idx3-ubyte.gz").exists()
    assert not (raw / "train-images-idx3-ubyte").exists()
    http_server.clear_failures()
    http_server.requests.clear()
    torchvision_sets.fetch("mnist", cfg, tmp_path / "raw")
    assert http_server.requests[0].status == 206
    assert torchvision_sets.prepare("mnist", cfg, tmp_path / "raw").x_train.shape == (200, 1, 28, 28)


def test_offline_fetch_names_dataset_urls_and_manual_path(tmp_path, closed_port_url):
    manual = tmp_path / "manual"
    cfg = {"mirrors": ["http://mnist.equitable-fl.invalid/", closed_port_url], "manual_dir": str(manual)}
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        torchvision_sets.fetch("mnist", cfg, tmp_path / "raw")
    assert time.monotonic() - start < 3
    message = str(info.value)
    assert "'mnist'" in message
    assert "http://mnist.equitable-fl.invalid/train-images-idx3-ubyte.gz" in message
    assert closed_port_url + "train-images-idx3-ubyte.gz" in message
    assert str(manual / "train-images-idx3-ubyte.gz") in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message  # torchvision's own md5 is the default


def test_manual_files_are_used_without_network(tmp_path, closed_port_url):
    files = _idx_dataset(seed=5)
    manual = tmp_path / "manual"
    manual.mkdir()
    for filename, (blob, _) in files.items():
        (manual / filename).write_bytes(blob)
    cfg = {
        "mirrors": [closed_port_url],
        "checksums": {f: _md5(blob) for f, (blob, _) in files.items()},
        "manual_dir": str(manual),
    }
    torchvision_sets.fetch("fashion-mnist", cfg, tmp_path / "raw")
    ds = torchvision_sets.prepare("fashion-mnist", cfg, tmp_path / "raw")
    np.testing.assert_array_equal(ds.y_test, files["t10k-labels-idx1-ubyte.gz"][1])


def test_prepare_before_fetch_says_what_to_do(tmp_path):
    with pytest.raises(RawDataError, match="run the fetch step"):
        torchvision_sets.prepare("mnist", {}, tmp_path / "raw")


def test_unknown_checksum_name_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown files"):
        torchvision_sets.fetch("mnist", {"checksums": {"train-images.gz": "0" * 32}}, tmp_path)


def test_defaults_come_from_torchvision():
    import torchvision.datasets as tvd

    mnist = torchvision_sets._source("mnist")
    assert mnist.mirrors() == tvd.MNIST.mirrors
    assert mnist.downloads() == [tuple(r) for r in tvd.MNIST.resources]
    assert torchvision_sets._source("fashion-mnist").downloads() == [
        tuple(r) for r in tvd.FashionMNIST.resources
    ]
    cifar = torchvision_sets._source("cifar10")
    assert cifar.downloads() == [(tvd.CIFAR10.filename, tvd.CIFAR10.tgz_md5)]
    assert [m + tvd.CIFAR10.filename for m in cifar.mirrors()] == [tvd.CIFAR10.url]


def test_the_five_datasets_are_registered():
    specs = {
        name: registry.get(name)
        for name in ("mnist", "fashion-mnist", "cifar10", "brain-mri", "plantvillage")
    }
    # image folders: shape from the configured resolution, classes from the folders (the presets'
    # default `classes` lists have 4 and 38 names)
    assert {n: (s.model, s.input_shape, s.num_classes) for n, s in specs.items()} == {
        "mnist": ("cnn28", (1, 28, 28), 10),
        "fashion-mnist": ("cnn28", (1, 28, 28), 10),
        "cifar10": ("cnn32", (3, 32, 32), 10),
        "brain-mri": ("cnn_rgb", None, None),
        "plantvillage": ("cnn_rgb", None, None),
    }
    assert [len(specs[n].defaults()["classes"]) for n in ("brain-mri", "plantvillage")] == [4, 38]
    assert not any(s.embedded for s in specs.values())


# --- CIFAR-10 ----------------------------------------------------------------------------------------


def _cifar_files(n_per_batch: int = 4) -> dict[str, tuple[bytes, np.ndarray, list[int]]]:
    rng = np.random.default_rng(7)
    files = {}
    for i, member in enumerate(CIFAR_MEMBERS):
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [(i * n_per_batch + k) % 10 for k in range(n_per_batch)]
        entry = {
            "batch_label": member,
            "labels": labels,
            "data": data,
            "filenames": [f"{member}_{k}.png" for k in range(n_per_batch)],
        }
        files[member] = (pickle.dumps(entry, protocol=2), data, labels)
    meta = {
        "num_cases_per_batch": n_per_batch,
        "label_names": [f"class{c}" for c in range(10)],
        "num_vis": 3072,
    }
    files["batches.meta"] = (pickle.dumps(meta, protocol=2), np.empty(0), [])
    return files


def _cifar_archive(files: dict[str, tuple[bytes, np.ndarray, list[int]]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tf.addfile(folder)
        for member, (blob, _, _) in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{member}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def test_cifar_fetch_and_prepare_end_to_end(http_server, tmp_path):
    files = _cifar_files()
    archive = _cifar_archive(files)
    http_server.put("kriz/cifar-10-python.tar.gz", archive)
    cfg = {
        "mirrors": [http_server.url("kriz/")],
        "checksums": {
            "cifar-10-python.tar.gz": _md5(archive),
            **{m: _md5(b) for m, (b, _, _) in files.items()},
        },
        "manual_dir": str(tmp_path / "manual"),
    }
    raw_dir = tmp_path / "raw"
    registry.get("cifar10").fetch(cfg, raw_dir)
    assert (raw_dir / "cifar-10-python.tar.gz").is_file()
    assert sorted(p.name for p in (raw_dir / "cifar-10-batches-py").iterdir()) == sorted(files)

    ds = registry.get("cifar10").prepare(cfg, raw_dir)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    expected_train = np.concatenate([files[m][1] for m in CIFAR_MEMBERS[:5]]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(ds.x_train, expected_train)  # channel planes land in C×H×W order
    np.testing.assert_array_equal(ds.y_train, [label for m in CIFAR_MEMBERS[:5] for label in files[m][2]])
    np.testing.assert_array_equal(ds.x_test, files["test_batch"][1].reshape(-1, 3, 32, 32))
    assert ds.class_names == tuple(f"class{c}" for c in range(10))
    save_prepared(ds, tmp_path / "c.npz", tmp_path / "c.json")
    assert load_prepared(tmp_path / "c.npz", tmp_path / "c.json").meta() == ds.meta()

    http_server.requests.clear()
    registry.get("cifar10").fetch(cfg, raw_dir)  # already there: no download, no re-extraction needed
    assert http_server.requests == []


def test_cifar_members_not_matching_their_md5_are_reported(http_server, tmp_path):
    files = _cifar_files()
    archive = _cifar_archive(files)
    http_server.put("cifar-10-python.tar.gz", archive)
    # Only the archive's checksum is overridden: the members keep torchvision's md5s and cannot match.
    cfg = {"mirrors": [http_server.url("")], "checksums": {"cifar-10-python.tar.gz": _md5(archive)}}
    with pytest.raises(RawDataError, match="data_batch_1: expected md5 c99cafc152244af753f735de768cd75f"):
        torchvision_sets.fetch("cifar10", cfg, tmp_path / "raw")


def test_cifar_corrupted_archive_is_refused(http_server, tmp_path):
    files = _cifar_files()
    archive = bytearray(_cifar_archive(files))
    good_md5 = _md5(bytes(archive))
    archive[100] ^= 0x01
    http_server.put("cifar-10-python.tar.gz", bytes(archive))
    cfg = {"mirrors": [http_server.url("")], "checksums": {"cifar-10-python.tar.gz": good_md5}}
    with pytest.raises(FetchError, match=f"expected md5 {good_md5}"):
        torchvision_sets.fetch("cifar10", cfg, tmp_path / "raw")
    assert not (tmp_path / "raw" / "cifar-10-python.tar.gz").exists()
    assert not (tmp_path / "raw" / "cifar-10-python.tar.gz.part").exists()
    assert not (tmp_path / "raw" / "cifar-10-batches-py").exists()


def test_cifar_local_source_torchvision_root_is_verified_and_copied(http_server, tmp_path):
    files = _cifar_files()
    root = tmp_path / "old-root"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    for member, (blob, _, _) in files.items():
        (root / "cifar-10-batches-py" / member).write_bytes(blob)
    checksums = {m: _md5(b) for m, (b, _, _) in files.items()}
    cfg = {"local_source": str(root), "mirrors": [http_server.url("")], "checksums": checksums}
    raw_dir = tmp_path / "raw"
    torchvision_sets.fetch("cifar10", cfg, raw_dir)
    assert http_server.requests == []
    ds = torchvision_sets.prepare("cifar10", cfg, raw_dir)
    np.testing.assert_array_equal(ds.x_test, files["test_batch"][1].reshape(-1, 3, 32, 32))

    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(FetchError) as info:
        torchvision_sets.fetch("cifar10", cfg, tmp_path / "raw2")
    message = str(info.value)
    assert str(root / "cifar-10-batches-py" / "test_batch") in message
    assert checksums["test_batch"] in message and _md5(b"not a pickle") in message
    assert "`checksums: {test_batch:" in message and "removing `local_source`" in message
    assert not (tmp_path / "raw2" / "cifar-10-batches-py" / "test_batch").exists()
    assert http_server.requests == []


def test_cifar_archive_limits_option_reaches_the_extraction(http_server, tmp_path):
    archive = _cifar_archive(_cifar_files())
    http_server.put("cifar-10-python.tar.gz", archive)
    cfg = {
        "mirrors": [http_server.url("")],
        "checksums": {"cifar-10-python.tar.gz": _md5(archive)},
        "archive_limits": {"max_members": 3},
    }
    with pytest.raises(ArchiveLimitError, match="max_members = 3"):
        torchvision_sets.fetch("cifar10", cfg, tmp_path / "raw")
    assert not (tmp_path / "raw" / "cifar-10-batches-py").exists()
