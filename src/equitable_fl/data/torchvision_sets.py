"""MNIST, Fashion-MNIST and CIFAR-10: fetched and verified here, loaded by torchvision's own classes.

File names, md5s and mirrors default to the values inside torchvision's dataset classes
(``MNIST.mirrors``/``.resources``, ``FashionMNIST``, ``CIFAR10.url``/``.filename``/``.tgz_md5``), so the
reproduction uses exactly the files torchvision would. Downloading goes through
:func:`~equitable_fl.data.download.download` instead of ``download=True`` because torchvision neither
resumes, nor names a manual fallback, nor keeps half-written files away from their final names.

``fetch`` lays the files out exactly as torchvision expects (``<raw_dir>/MNIST/raw/*-ubyte(.gz)``,
``<raw_dir>/FashionMNIST/raw/...``, ``<raw_dir>/cifar-10-batches-py/...``), so ``prepare`` loads them
with ``download=False`` and the official train/test splits are kept.

MNIST and Fashion-MNIST files are verified by their content, not their wrapper
(:mod:`~equitable_fl.data.idx_files`): gzipped or not, flat or in torchvision's layout, a file is
accepted when its uncompressed content has the published md5 or it is torchvision's own ``.gz``.

Config keys (all optional):

- ``mirrors``: list of base URLs; a file's URL is the base plus its file name.
- ``checksums``: ``{file name: md5}`` overriding an expected md5. For MNIST and Fashion-MNIST a key is
  an uncompressed name (``train-images-idx3-ubyte``: md5 of the content) or a ``.gz`` name (md5 of
  torchvision's gzipped file). For CIFAR-10 it covers the archive and the batch files inside it
  (``data_batch_1`` ... ``test_batch``, ``batches.meta``), which torchvision checks again when loading.
  Unknown names are an error.
- ``local_source``: a folder that already holds the dataset, used instead of downloading (nothing is
  downloaded when it is set): for MNIST/Fashion-MNIST the four files, gzipped or not, flat or as a
  torchvision root (``<folder>/MNIST/raw/``), e.g. Debian's ``/usr/share/datasets/fashion-mnist``; for
  CIFAR-10 a torchvision root or a folder holding ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz``.
  Files are copied after they verify, never used in place.
- ``manual_dir``: where hand-downloaded files are picked up (default ``<raw_dir>/../manual/<name>``);
  for MNIST/Fashion-MNIST searched like ``local_source``.
- ``archive_limits``: ``{max_total_bytes, max_members, max_ratio}`` for extracting the CIFAR-10 archive
  (defaults in :class:`~equitable_fl.data.archive_limits.ArchiveLimits`).
- ``train_limit`` / ``test_limit``: keep a stratified subsample of that many images (seed
  ``limit_seed``, default 0) for small runs; ``null`` keeps the whole split.
- ``timeout``: seconds per network operation (default 30).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl.data.archive import safe_extract
from equitable_fl.data.archive_limits import ArchiveLimits
from equitable_fl.data.download import FetchError, RawDataError, download, file_digests, manual_dir
from equitable_fl.data.idx_files import IdxFile, idx_files, place
from equitable_fl.data.prepared import PreparedDataset, stratified_split
from equitable_fl.data.verified_copy import copy_verified, expect_md5

NAMES = ("mnist", "fashion-mnist", "cifar10")

DEFAULTS: dict[str, Any] = {
    "mirrors": None,
    "checksums": {},
    "manual_dir": None,
    "local_source": None,
    "archive_limits": None,
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

    def checksum_names(self) -> set[str]:
        """File names the ``checksums`` option may name: downloads, CIFAR members, uncompressed IDX files."""
        names = {f for f, _ in self.downloads() + self.members()}
        return names | ({f.removesuffix(".gz") for f in names} if self.idx else set())

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
    known = src.checksum_names()
    unknown = sorted(set(opts["checksums"] or {}) - known)
    if unknown:
        raise ValueError(
            f"dataset {name!r}: checksums given for unknown files {unknown}; known files: {sorted(known)}"
        )
    opts["archive_limits"] = ArchiveLimits.from_options(opts["archive_limits"], name)
    local = opts["local_source"]
    opts["local_source"] = Path(str(local)).expanduser() if local else None
    return opts


def _overrides(opts: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v).lower() for k, v in (opts["checksums"] or {}).items()}


def _md5s(src: _Source, opts: dict[str, Any]) -> dict[str, str]:
    """Every downloaded file's expected md5: torchvision's value unless the config overrides it."""
    overrides = _overrides(opts)
    return {f: overrides.get(f, m) for f, m in src.downloads() + src.members()}


def _urls(mirrors: list[str], filename: str) -> list[str]:
    return [(m if m.endswith("/") else m + "/") + filename for m in mirrors]


def fetch(name: str, cfg: dict[str, Any], raw_dir: Path) -> None:
    """Place the verified raw files of ``name`` in torchvision's layout under ``raw_dir``."""
    src = _source(name)
    opts = _options(name, cfg)
    mirrors = [str(m) for m in (opts["mirrors"] if opts["mirrors"] is not None else src.mirrors())]
    if src.idx:
        _fetch_idx(src, opts, Path(raw_dir), mirrors)
    else:
        _fetch_cifar(src, opts, Path(raw_dir), mirrors)


def _fetch_idx(src: _Source, opts: dict[str, Any], raw_dir: Path, mirrors: list[str]) -> None:
    # Downloads go beside torchvision's own download location, so download=True would find them too.
    folder = src.folder(raw_dir)

    def download_gz(f: IdxFile) -> Path:
        urls, dest = _urls(mirrors, f.gz_name), folder / f.gz_name
        return download(
            urls, dest, md5=f.gz_md5, dataset=src.name, manual_path=None, timeout=float(opts["timeout"])
        )

    place(
        idx_files(src.class_name, dict(src.downloads()), _overrides(opts)),
        folder,
        dataset=src.name,
        class_name=src.class_name,
        local_source=opts["local_source"],
        manual=manual_dir(opts, src.name, raw_dir),
        mirrors=mirrors,
        download_gz=download_gz,
    )


def _fetch_cifar(src: _Source, opts: dict[str, Any], raw_dir: Path, mirrors: list[str]) -> None:
    folder, md5s = src.folder(raw_dir), _md5s(src, opts)
    if not _member_problems(src, folder, md5s):
        return  # already extracted and verified
    filename = src.downloads()[0][0]
    manual_path: Path | None = manual_dir(opts, src.name, raw_dir) / filename
    if opts["local_source"] is not None:
        manual_path = _cifar_local_source(src, opts["local_source"], folder, md5s)
        if manual_path is None:
            return
        mirrors = []  # a named local source replaces the mirrors
    path = download(
        _urls(mirrors, filename),
        raw_dir / filename,
        md5=md5s[filename],
        dataset=src.name,
        manual_path=manual_path,
        timeout=float(opts["timeout"]),
    )
    safe_extract(path, raw_dir, opts["archive_limits"])
    problems = _member_problems(src, folder, md5s)
    if problems:
        raise RawDataError(
            f"dataset {src.name!r}: {path.name} verified but its contents do not: " + "; ".join(problems)
        )


def _cifar_local_source(src: _Source, local: Path, folder: Path, md5s: dict[str, str]) -> Path | None:
    """Copy verified batch files from a local torchvision root or batch folder and return None, or
    return the local archive to use instead of a download."""
    base, first = src.folder(Path(".")), src.members()[0][0]
    batches = next((d for d in (local / base, local) if (d / first).is_file()), None)
    if batches is not None:
        for filename, _ in src.members():
            _, problem = copy_verified(batches / filename, folder / filename, expect_md5(md5s[filename]))
            if problem is not None:
                raise FetchError(
                    f"dataset {src.name!r}: local_source file {batches / filename}: {problem}. Fix it by "
                    f"replacing the file, by setting `checksums: {{{filename}: <its md5>}}` if you trust it, "
                    "or by removing `local_source` to download the archive from the mirrors.",
                    dataset=src.name,
                    attempts=[(f"local source {batches / filename}", problem)],
                    manual_path=None,
                )
        return None
    archive = local / src.downloads()[0][0]
    if not archive.is_file():
        raise FetchError(
            f"dataset {src.name!r}: local_source {local} holds neither {base}/ (a torchvision root), nor the "
            f"batch files ({first} ...), nor {archive.name}; name the folder that holds one of them, or "
            "remove `local_source` to download from the mirrors",
            dataset=src.name,
            attempts=[],
            manual_path=None,
        )
    return archive


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
