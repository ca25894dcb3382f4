"""MNIST, Fashion-MNIST and CIFAR-10: fetched and verified here, loaded by torchvision's own classes.

File names, md5s and mirrors default to the values inside torchvision's dataset classes
(``MNIST.mirrors``/``.resources``, ``FashionMNIST``, ``CIFAR10.url``/``.filename``/``.tgz_md5``), so the
reproduction uses exactly the files torchvision would. Downloading goes through
:func:`~equitable_fl.data.download.download` instead of ``download=True`` because torchvision neither
resumes, nor names a manual fallback, nor keeps half-written files away from their final names.

``fetch`` lays the files out exactly as torchvision expects (``<raw_dir>/MNIST/raw/*-ubyte(.gz)``,
``<raw_dir>/FashionMNIST/raw/...``, ``<raw_dir>/cifar-10-batches-py/...``), so ``prepare`` loads them
with ``download=False`` and the official train/test splits are kept.

Config keys (all optional):

- ``mirrors``: list of base URLs; a file's URL is the base plus its file name.
- ``checksums``: ``{file name: md5}`` overriding torchvision's md5 of that file. For CIFAR-10 this
  covers the archive and the batch files inside it (``data_batch_1`` ... ``test_batch``,
  ``batches.meta``), which torchvision checks again when loading. Unknown names are an error.
- ``manual_dir``: where hand-downloaded files are picked up (default ``<raw_dir>/../manual/<name>``).
- ``train_limit`` / ``test_limit``: keep a stratified subsample of that many images (seed
  ``limit_seed``, default 0) for small runs; ``null`` keeps the whole split.
- ``timeout``: seconds per network operation (default 30).
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl import io
from equitable_fl.data.archive import safe_extract
from equitable_fl.data.download import RawDataError, download, file_digests, manual_dir
from equitable_fl.data.prepared import PreparedDataset, stratified_split

NAMES = ("mnist", "fashion-mnist", "cifar10")

DEFAULTS: dict[str, Any] = {
    "mirrors": None,
    "checksums": {},
    "manual_dir": None,
    "train_limit": None,
    "test_limit": None,
    "limit_seed": 0,
    "timeout": 30.0,
}


@dataclass(frozen=True)
class _Source:
    """What torchvision says about one dataset: its class and the files it downloads."""

    name: str
    class_name: str  # attribute of torchvision.datasets
    idx: bool  # MNIST-style gzipped IDX files (True) or the CIFAR python archive (False)

    def tv_class(self) -> Any:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.class_name)

    def downloads(self) -> list[tuple[str, str]]:
        """(file name, md5) of every file fetched from a mirror."""
        cls = self.tv_class()
        if self.idx:
            return [(str(f), str(m)) for f, m in cls.resources]
        return [(str(cls.filename), str(cls.tgz_md5))]

    def members(self) -> list[tuple[str, str]]:
        """(file name, md5) of files checked inside the extracted CIFAR archive; none for IDX sets."""
        if self.idx:
            return []
        cls = self.tv_class()
        return [(str(f), str(m)) for f, m in [*cls.train_list, *cls.test_list]] + [
            (str(cls.meta["filename"]), str(cls.meta["md5"]))
        ]

    def mirrors(self) -> list[str]:
        cls = self.tv_class()
        if self.idx:
            return [str(m) for m in cls.mirrors]
        return [str(cls.url).rsplit("/", 1)[0] + "/"]

    def folder(self, raw_dir: Path) -> Path:
        """The folder torchvision reads: ``<root>/<ClassName>/raw`` or ``<root>/cifar-10-batches-py``."""
        if self.idx:
            return raw_dir / self.class_name / "raw"
        return raw_dir / str(self.tv_class().base_folder)


_SOURCES = {
    "mnist": _Source("mnist", "MNIST", idx=True),
    "fashion-mnist": _Source("fashion-mnist", "FashionMNIST", idx=True),
    "cifar10": _Source("cifar10", "CIFAR10", idx=False),
}


def _source(name: str) -> _Source:
    try:
        return _SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown torchvision dataset {name!r}; known: {', '.join(NAMES)}") from None


def _options(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    opts = {**DEFAULTS, **cfg}
    src = _source(name)
    known = {f for f, _ in src.downloads() + src.members()}
    unknown = sorted(set(opts["checksums"] or {}) - known)
    if unknown:
        raise ValueError(
            f"dataset {name!r}: checksums given for unknown files {unknown}; known files: {sorted(known)}"
        )
    return opts


def _md5s(src: _Source, opts: dict[str, Any]) -> dict[str, str]:
    """Every file's expected md5: torchvision's value unless the config overrides it."""
    overrides = {str(k): str(v).lower() for k, v in (opts["checksums"] or {}).items()}
    return {f: overrides.get(f, m) for f, m in src.downloads() + src.members()}


def _urls(mirrors: list[str], filename: str) -> list[str]:
    return [(m if m.endswith("/") else m + "/") + filename for m in mirrors]


def fetch(name: str, cfg: dict[str, Any], raw_dir: Path) -> None:
    """Download and verify the raw files of ``name`` into torchvision's layout under ``raw_dir``."""
    src = _source(name)
    opts = _options(name, cfg)
    raw_dir = Path(raw_dir)
    md5s = _md5s(src, opts)
    mirrors = [str(m) for m in (opts["mirrors"] if opts["mirrors"] is not None else src.mirrors())]
    manual = manual_dir(opts, name, raw_dir)
    # Downloads go beside torchvision's own download location, so download=True would find them too.
    download_dir = src.folder(raw_dir) if src.idx else raw_dir
    for filename, _ in src.downloads():
        path = download(
            _urls(mirrors, filename),
            download_dir / filename,
            md5=md5s[filename],
            dataset=name,
            manual_path=manual / filename,
            timeout=float(opts["timeout"]),
        )
        if src.idx:
            _gunzip(path, path.with_suffix(""))
        else:
            _extract_cifar(src, path, raw_dir, md5s)


def _gunzip(gz: Path, out: Path) -> None:
    """Decompress a verified ``.gz`` to the name torchvision reads, atomically."""
    with io.atomic_path(out) as tmp, gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def _extract_cifar(src: _Source, archive: Path, raw_dir: Path, md5s: dict[str, str]) -> None:
    folder = src.folder(raw_dir)
    if _member_problems(src, folder, md5s):
        safe_extract(archive, raw_dir)
    problems = _member_problems(src, folder, md5s)
    if problems:
        raise RawDataError(
            f"dataset {src.name!r}: {archive.name} verified but its contents do not: " + "; ".join(problems)
        )


def _member_problems(src: _Source, folder: Path, md5s: dict[str, str]) -> list[str]:
    problems = []
    for filename, _ in src.members():
        path = folder / filename
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        actual = file_digests(path, ("md5",))["md5"]
        if actual != md5s[filename]:
            problems.append(f"{path}: expected md5 {md5s[filename]}, got {actual}")
    return problems


def prepare(name: str, cfg: dict[str, Any], raw_dir: Path | None) -> PreparedDataset:
    """Load the official train/test splits with torchvision (``download=False``), optionally subsampled."""
    src = _source(name)
    opts = _options(name, cfg)
    if raw_dir is None:
        raise ValueError(f"dataset {name!r} is prepared from fetched files: a raw_dir is required")
    raw_dir = Path(raw_dir)
    cls = _loader_class(src, _md5s(src, opts))
    splits = {}
    class_names: tuple[str, ...] = ()
    for split in ("train", "test"):
        try:
            ds = cls(root=str(raw_dir), train=split == "train", download=False)
        except (RuntimeError, OSError, ValueError, TypeError, AssertionError) as exc:
            raise RawDataError(
                f"dataset {name!r}: torchvision cannot load the {split} split from {src.folder(raw_dir)} "
                f"({exc}); run the fetch step first (or delete the folder and fetch again)"
            ) from exc
        x, y = _arrays(src, ds)
        limit = opts[f"{split}_limit"]
        keep = subsample(y, limit, int(opts["limit_seed"]))
        splits[split] = (x[keep], y[keep], int(y.shape[0]))
        class_names = tuple(str(c) for c in ds.classes)
    import torchvision

    return PreparedDataset(
        name=name,
        x_train=splits["train"][0],
        y_train=splits["train"][1],
        x_test=splits["test"][0],
        y_test=splits["test"][1],
        class_names=class_names,
        source={
            "origin": f"torchvision.datasets.{src.class_name}",
            "torchvision_version": torchvision.__version__,
            "files_md5": _md5s(src, opts),
            "full_train_size": splits["train"][2],
            "full_test_size": splits["test"][2],
            "train_limit": opts["train_limit"],
            "test_limit": opts["test_limit"],
            "limit_seed": int(opts["limit_seed"]),
        },
    )


def _loader_class(src: _Source, md5s: dict[str, str]) -> Any:
    """torchvision's class; for CIFAR a subclass whose member md5s honour the config's overrides.

    ``CIFAR10`` checks the md5 of each batch file on load, so files verified against overridden
    checksums need the same overrides there. The folder name does not depend on the class name.
    """
    cls = src.tv_class()
    if src.idx:
        return cls
    return type(
        cls.__name__,
        (cls,),
        {
            "train_list": [[f, md5s[f]] for f, _ in cls.train_list],
            "test_list": [[f, md5s[f]] for f, _ in cls.test_list],
            "meta": {**cls.meta, "md5": md5s[cls.meta["filename"]]},
        },
    )


def _arrays(src: _Source, ds: Any) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N×C×H×W images and int64 labels from a loaded torchvision dataset."""
    if src.idx:
        x = ds.data.numpy()[:, None, :, :]
        y = ds.targets.numpy()
    else:
        x = np.asarray(ds.data).transpose(0, 3, 1, 2)
        y = np.asarray(ds.targets)
    return np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int64)


def subsample(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded stratified subsample of ``limit`` items (all items when no limit), in order."""
    n = int(labels.shape[0])
    if limit is None or int(limit) >= n:
        return np.arange(n)
    if int(limit) <= 0:
        raise ValueError(f"a split limit must be a positive number of images, got {limit}")
    _, keep = stratified_split(labels, int(limit), seed)
    return np.sort(keep)
