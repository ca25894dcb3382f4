"""MNIST-family files verified by content: gzipped or not, flat or torchvision's layout, any gzip header.

Every file is a real IDX file written here; torchvision's own MNIST/FashionMNIST classes load the result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from equitable_fl.data import torchvision_sets
from equitable_fl.data.download import FetchError
from equitable_fl.data.idx_files import RAW_MD5, idx_files
from equitable_fl.data.verified_copy import copy_verified, expect_md5

NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _content(seed: int) -> dict[str, bytes]:
    """The four uncompressed IDX files (20 train, 10 test images) keyed by torchvision's names."""
    rng = np.random.default_rng(seed)
    files = {}
    for split, n in (("train", 20), ("t10k", 10)):
        pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        files[f"{split}-images-idx3-ubyte"] = struct.pack(">IIII", 2051, n, 28, 28) + pixels.tobytes()
        files[f"{split}-labels-idx1-ubyte"] = struct.pack(">II", 2049, n) + bytes(i % 10 for i in range(n))
    return files


def _gzip(data: bytes, *, mtime: int = 0, filename: str = "") -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename=filename, mode="wb", fileobj=buf, mtime=mtime) as gz:
        gz.write(data)
    return buf.getvalue()


def _torchvision_gz(content: dict[str, bytes]) -> dict[str, bytes]:
    """What torchvision's mirrors would serve for this content (gzip, mtime 0, no name)."""
    return {f"{name}.gz": _gzip(data) for name, data in content.items()}


def _checksums(content: dict[str, bytes]) -> dict[str, str]:
    """md5s of both wrappers, as a user pins a release: content md5s and torchvision-style .gz md5s."""
    gz = {name: _md5(blob) for name, blob in _torchvision_gz(content).items()}
    return {**{name: _md5(data) for name, data in content.items()}, **gz}


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _load_with_torchvision(root: Path, class_name: str) -> dict[str, np.ndarray]:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, class_name)
    train, test = cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
    return {"train_x": train.data.numpy(), "train_y": train.targets.numpy(), "test_x": test.data.numpy()}


def _expected_arrays(content: dict[str, bytes]) -> dict[str, np.ndarray]:
    def images(name: str) -> np.ndarray:
        return np.frombuffer(content[name][16:], dtype=np.uint8).reshape(-1, 28, 28)

    return {
        "train_x": images("train-images-idx3-ubyte"),
        "train_y": np.frombuffer(content["train-labels-idx1-ubyte"][8:], dtype=np.uint8).astype(np.int64),
        "test_x": images("t10k-images-idx3-ubyte"),
    }


def _assert_loads(root: Path, class_name: str, content: dict[str, bytes]) -> None:
    loaded, expected = _load_with_torchvision(root, class_name), _expected_arrays(content)
    for key, array in expected.items():
        np.testing.assert_array_equal(loaded[key], array)


def _fetch_without_network(
    http_server, tmp_path: Path, dataset: str, content: dict[str, bytes], **options
) -> Path:
    """Fetch with the content's checksums pinned, check no mirror was asked, and load with torchvision."""
    cfg = {"mirrors": [http_server.url("")], "checksums": _checksums(content), **options}
    raw = tmp_path / "raw"
    torchvision_sets.fetch(dataset, cfg, raw)
    assert http_server.requests == []
    _assert_loads(raw, {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}[dataset], content)
    return raw


def test_uncompressed_flat_folder_as_local_source(http_server, tmp_path):
    content = _content(seed=1)
    flat = tmp_path / "my-mnist"
    # Both spellings in use: torchvision's "train-images-idx3-ubyte" and the common "t10k-images.idx3-ubyte".
    _write(flat, {name.replace("t10k-images-idx", "t10k-images.idx"): data for name, data in content.items()})
    raw = _fetch_without_network(http_server, tmp_path, "mnist", content, local_source=str(flat))
    assert sorted(p.name for p in (raw / "MNIST" / "raw").iterdir()) == sorted(NAMES)
    ds = torchvision_sets.prepare("mnist", {"checksums": _checksums(content)}, raw)
    assert ds.x_train.shape == (20, 1, 28, 28)
    assert sorted(p.name for p in flat.iterdir()) == sorted(  # the source folder is only read
        name.replace("t10k-images-idx", "t10k-images.idx") for name in NAMES
    )


def test_regzipped_files_in_the_manual_folder_are_verified_by_content(http_server, tmp_path):
    content = _content(seed=2)
    manual = tmp_path / "manual"
    # Re-gzipped like Debian's copies: another mtime and an embedded file name, so the .gz md5s differ.
    regzipped = {f"{n}.gz": _gzip(d, mtime=1_234_567, filename=f"{n}.orig") for n, d in content.items()}
    _write(manual, regzipped)
    assert all(_md5(blob) != _checksums(content)[name] for name, blob in regzipped.items())
    _fetch_without_network(http_server, tmp_path, "fashion-mnist", content, manual_dir=str(manual))


def test_torchvision_root_as_local_source(http_server, tmp_path):
    content = _content(seed=3)
    root = tmp_path / "old-torchvision-root"
    # Both wrappers, as torchvision's download=True leaves them.
    _write(root / "FashionMNIST" / "raw", {**content, **_torchvision_gz(content)})
    _fetch_without_network(http_server, tmp_path, "fashion-mnist", content, local_source=str(root))


def test_torchvision_gz_md5_alone_still_verifies_a_download(http_server, tmp_path):
    content = _content(seed=4)
    for name, blob in _torchvision_gz(content).items():
        http_server.put(name, blob)
    gz_only = {name: md5 for name, md5 in _checksums(content).items() if name.endswith(".gz")}
    cfg = {"mirrors": [http_server.url("")], "checksums": gz_only, "manual_dir": str(tmp_path / "manual")}
    raw = tmp_path / "raw"
    torchvision_sets.fetch("mnist", cfg, raw)
    _assert_loads(raw, "MNIST", content)
    assert (
        raw / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    ).is_file()  # kept beside, as torchvision does
    http_server.requests.clear()
    torchvision_sets.fetch("mnist", cfg, raw)  # everything verified in place: no network
    assert http_server.requests == []


def test_mismatching_manual_file_names_both_hashes_and_every_fix(tmp_path, closed_port_url):
    content = _content(seed=5)
    checksums = _checksums(content)
    manual = tmp_path / "manual"
    _write(manual, _torchvision_gz(content))
    tampered = bytearray(content["train-images-idx3-ubyte"])
    tampered[100] ^= 0xFF
    bad_gz = _gzip(bytes(tampered))
    (manual / "train-images-idx3-ubyte.gz").write_bytes(bad_gz)
    cfg = {"manual_dir": str(manual), "mirrors": [closed_port_url], "checksums": checksums}
    raw = tmp_path / "raw"
    with pytest.raises(FetchError) as info:
        torchvision_sets.fetch("mnist", cfg, raw)
    message = str(info.value)
    assert str(manual / "train-images-idx3-ubyte.gz") in message  # the file
    assert checksums["train-images-idx3-ubyte"] in message  # expected content md5
    assert checksums["train-images-idx3-ubyte.gz"] in message  # expected .gz md5
    assert _md5(bytes(tampered)) in message and _md5(bad_gz) in message  # found, both wrappers
    assert "connection refused" in message  # the mirror was tried too
    assert "`checksums: {train-images-idx3-ubyte:" in message
    assert "`local_source:" in message
    assert f"delete {manual / 'train-images-idx3-ubyte.gz'}" in message
    assert not (raw / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()
    assert [p.name for p in (raw / "MNIST" / "raw").iterdir()] == []  # no temporary file left


def test_mismatching_local_source_is_refused_without_network(http_server, tmp_path):
    content = _content(seed=6)
    flat = tmp_path / "flat"
    _write(flat, content)
    labels = bytearray(content["t10k-labels-idx1-ubyte"])
    labels[-1] = (labels[-1] + 1) % 10  # one wrong label
    (flat / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    cfg = {"local_source": str(flat), "mirrors": [http_server.url("")], "checksums": _checksums(content)}
    with pytest.raises(FetchError) as info:
        torchvision_sets.fetch("mnist", cfg, tmp_path / "raw")
    message = str(info.value)
    assert f"local source {flat / 't10k-labels-idx1-ubyte'}: checksum mismatch" in message
    assert _md5((flat / "t10k-labels-idx1-ubyte").read_bytes()) in message
    assert "remove the `local_source` option" in message
    assert f"delete {flat}" not in message  # never suggests deleting the user's own files
    assert http_server.requests == []


def test_local_source_without_the_files_says_where_it_looked(http_server, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError) as info:
        torchvision_sets.fetch(
            "mnist", {"local_source": str(empty), "mirrors": [http_server.url("")]}, tmp_path
        )
    assert f"{empty / 'MNIST' / 'raw'}" in str(info.value)
    assert "train-images.idx3-ubyte.gz" in str(info.value)
    with pytest.raises(ValueError, match="not a folder"):
        torchvision_sets.fetch("mnist", {"local_source": str(tmp_path / "nope")}, tmp_path)
    assert http_server.requests == []


def test_published_content_md5s_are_the_defaults():
    files = {f.name: f for f in idx_files("MNIST", {f"{n}.gz": "0" * 32 for n in NAMES}, {})}
    assert files["train-images-idx3-ubyte"].content_md5 == "6bbc9ace898e44ae57da46a324031adb"
    assert RAW_MD5["FashionMNIST"]["t10k-labels-idx1-ubyte"] == "15d484375f8d13e6eb1aabb0c3f46965"


def test_corrupt_gzip_is_reported_and_nothing_is_placed(tmp_path):
    blob = _gzip(b"x" * 100_000)
    source = tmp_path / "cut.gz"
    source.write_bytes(blob[: len(blob) // 2])
    target = tmp_path / "out" / "file"
    digests, problem = copy_verified(source, target, expect_md5("0" * 32))
    assert digests is None and problem is not None and "cannot read it" in problem
    assert list(target.parent.iterdir()) == []


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_debian_fashion_mnist_package_verifies_by_the_published_md5s(tmp_path):
    raw = tmp_path / "raw"
    torchvision_sets.fetch("fashion-mnist", {"local_source": str(DEBIAN_FASHION_MNIST), "mirrors": []}, raw)
    ds = torchvision_sets.prepare("fashion-mnist", {}, raw)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
