"""A tree of class folders as an image-folder dataset holds it: classes, image files and a content digest.

One sub-folder per class, holding images at any depth; hidden entries and macOS's ``__MACOSX`` are not
data. Class names are the sorted folder names and files are listed in sorted relative-path order, so the
same tree always gives the same arrays.

Nothing here decodes an image (no Pillow): :func:`survey` is cheap enough for the config checks to run
on a local folder before any job (classes, image counts), and :func:`tree_digest` pins a folder's content
the way a sha256 pins an archive.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl import io
from equitable_fl.data.download import FetchError, RawDataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_CHUNK = 1 << 20


def visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name != "__MACOSX"


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``; an error if there are none."""
    if not folder.is_dir():
        raise RawDataError(f"class folder root {folder} does not exist")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and visible(p))
    if not classes:
        raise RawDataError(f"{folder} has no class sub-folders")
    return classes


def _images(class_dir: Path) -> list[Path]:
    """Image files under ``class_dir`` (any depth, hidden parts skipped), in sorted relative-path order."""
    found = []
    for root, dirs, files in os.walk(class_dir):
        dirs[:] = [d for d in dirs if visible(Path(d))]
        found += [
            Path(root) / f
            for f in files
            if visible(Path(f)) and Path(f).suffix.lower() in IMAGE_SUFFIXES and (Path(root) / f).is_file()
        ]
    return sorted(found, key=lambda p: p.relative_to(class_dir).as_posix())


def list_images(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    """Image files per class in sorted relative-path order, and their labels (the classes' positions)."""
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        class_dir = folder / cls
        if not class_dir.is_dir():
            raise RawDataError(f"class folder {class_dir} is missing")
        found = _images(class_dir)
        if not found:
            raise RawDataError(
                f"class folder {class_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        files += found
        labels += [label] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


@dataclass(frozen=True)
class Survey:
    """Classes and image counts of one class-folder tree (``train``/``test`` or a single ``all``)."""

    classes: list[str]
    counts: dict[str, int]  # split ("all", or "train" and "test") → images
    smallest_class: int  # fewest images of any class in any split


def survey(base: Path, split_folders: tuple[str, str] | None) -> Survey:
    """Classes and image counts under ``base`` (``split_folders``: the train and test sub-folders).

    Raises :class:`RawDataError` as preparing the tree would: a missing folder, no classes, classes that
    differ between the splits, an empty class.
    """
    parts = (
        {"all": base}
        if split_folders is None
        else dict(zip(("train", "test"), (base / f for f in split_folders), strict=True))
    )
    found = {split: class_folders(folder) for split, folder in parts.items()}
    classes = next(iter(found.values()))
    for names in found.values():
        if names != classes:
            raise RawDataError(
                f"class folders differ between {parts['train']} {found['train']} and {parts['test']} "
                f"{found['test']}"
            )
    counts, smallest = {}, None
    for split, folder in parts.items():
        per_class = []
        for cls in classes:
            n = len(_images(folder / cls))
            if n == 0:
                raise RawDataError(f"class folder {folder / cls} holds no images")
            per_class.append(n)
        counts[split] = sum(per_class)
        smallest = min(per_class) if smallest is None else min(smallest, *per_class)
    return Survey(classes, counts, int(smallest or 0))


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if visible(Path(d))]
        yield from (Path(root) / f for f in files if visible(Path(f)))


def tree_digest(folder: Path) -> tuple[str, int]:
    """The sha256 of a folder's content and its number of files.

    The digest is the sha256 of one line ``<relative path>\\0<sha256 of the file>\\n`` per visible file,
    in sorted relative-path order: renaming, adding, removing or changing any file changes it, and it
    does not depend on file times or on the order the file system lists entries in.
    """
    folder = Path(folder)
    lines = []
    for path in sorted(_files(folder), key=lambda p: p.relative_to(folder).as_posix()):
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        lines.append(f"{path.relative_to(folder).as_posix()}\0{h.hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest(), len(lines)


# ---------------------------------------------------------------------------------------------------
# a local folder as a dataset's source

FOLDER_MARKER = "folder.json"


def pin_folder(name: str, folder: Path, root: str, sha256: str | None, raw_dir: Path) -> dict[str, Any]:
    """The fetch step of a folder source: check it holds ``root``, pin its content, record it in raw_dir.

    With ``sha256`` set, the folder's :func:`tree_digest` must equal it. The record (folder, digest,
    file count) is written to ``<raw_dir>/folder.json`` and returned.
    """
    folder = Path(folder).expanduser().resolve()
    base = folder / root
    if not base.is_dir():
        raise FetchError(
            f"dataset {name!r}: folder {base} does not exist; set `folder` (and `root`) to the folder that "
            "holds one sub-folder per class",
            dataset=name,
            attempts=[(f"folder {base}", "missing")],
            manual_path=None,
        )
    digest, n_files = tree_digest(folder)
    expected = str(sha256).lower() if sha256 else None
    if expected is not None and digest != expected:
        raise FetchError(
            f"dataset {name!r}: the content of folder {folder} has sha256 {digest}, expected {expected} "
            f"(`sha256`); if the folder changed on purpose, set `sha256: {digest}`, or remove `sha256` to "
            "accept whatever the folder holds",
            dataset=name,
            attempts=[(f"folder {folder}", f"sha256 {digest} != {expected}")],
            manual_path=None,
        )
    record = {"folder": str(folder), "sha256": digest, "files": n_files, "verified": expected is not None}
    Path(raw_dir).mkdir(parents=True, exist_ok=True)
    io.write_json(Path(raw_dir) / FOLDER_MARKER, record)
    log.info("%s: folder %s, %d files, content sha256 %s", name, folder, n_files, digest)
    return record


def unchanged_folder(name: str, raw_dir: Path) -> dict[str, Any]:
    """The fetch step's record of a folder source, after checking the folder still has that content."""
    marker = Path(raw_dir) / FOLDER_MARKER
    if not marker.is_file():
        raise RawDataError(f"dataset {name!r}: {marker} is missing: run the fetch step first")
    record = io.read_json(marker)
    digest, _ = tree_digest(Path(record["folder"]))
    if digest != record["sha256"]:
        raise RawDataError(
            f"dataset {name!r}: folder {record['folder']} changed since it was fetched (content sha256 "
            f"{digest}, fetched {record['sha256']}); rerun the fetch step (snakemake -R fetch_"
            f"{name.replace('-', '_')}) to use its new content"
        )
    return record
