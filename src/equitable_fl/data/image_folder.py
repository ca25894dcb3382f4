"""Image-folder datasets: images in one sub-folder per class, from an archive or a local folder.

Any dataset name with ``kind: image_folder`` in the config is read by this module (its defaults are
:data:`GENERIC`); Brain-MRI and PlantVillage are presets of the kind, with their own defaults
(:data:`DEFAULTS`). Class names and their count come from the folders, or are checked against the
``classes`` option when it lists them.

Sources: a ``url`` (or list of mirrors) downloaded and verified by ``sha256``; a hand-downloaded
``archive``; or a local ``folder`` that already holds the class folders, read in place. A folder needs
no checksum (nothing is downloaded): ``fetch`` records the sha256 of its content
(:func:`~equitable_fl.data.class_folders.tree_digest`) and, when ``sha256`` is set, checks it; ``prepare``
refuses a folder whose content changed since it was fetched.

Which public versions the presets point to, and why:

- ``brain-mri``: the Kaggle "Brain Tumor MRI Dataset" by Masoud Nickparvar
  (https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset), the most used public
  4-class tumour set (glioma, meningioma, notumor, pituitary; 7,023 images). Its zip holds
  ``Training/<class>/`` and ``Testing/<class>/``, so the default ``layout: split_folders`` keeps the
  authors' own split. Kaggle downloads need a login, so there is no default URL: download the zip
  yourself (``kaggle datasets download -d masoudnickparvar/brain-tumor-mri-dataset``) and put it at
  the path the error message names (``<raw_dir>/../manual/brain-mri/brain-tumor-mri-dataset.zip``
  unless ``archive`` says otherwise).
- ``plantvillage``: the 38-class "color" release in the spMohanty/PlantVillage-Dataset GitHub
  repository (``raw/color/<class>/``, 54,305 images; Mohanty et al. 2016), the original public release
  rather than one of the many re-uploads. The URL is GitHub's zip of a pinned commit that still has
  ``raw/`` (later commits moved the data to the Hugging Face mirror ``mohanty/PlantVillage``); the zip
  also carries the grayscale and segmented copies, so it is several GB.

No default checksum is known for either (Kaggle versions and GitHub-generated zips are not published
with hashes), so ``sha256`` defaults to ``null`` and ``fetch`` refuses to go on until you set it, or set
``allow_unverified: true`` to accept a file once; the refusal message prints the sha256 of a file it
finds locally so it can be pinned. An unverified download is never trusted silently.

Images are decoded with Pillow, converted to RGB and resized to ``resolution``×``resolution`` (default
64) with bilinear resampling, ignoring aspect ratio. 64 keeps the full sets in memory (PlantVillage:
54,305×3×64×64 bytes ≈ 0.67 GB) and keeps federated training of the paper's CNNs within a CPU-only
budget; 128 or 224 is one config value away. Class names are the sorted folder names, files are read in
sorted order, and a split is a seeded stratified one, so the same archive gives the same arrays.

Config keys: ``url`` (one URL or a list, tried in order), ``filename`` (name of the downloaded archive
under ``raw_dir``; default: the archive's or the URL's file name, else ``<name>.zip``), ``archive`` (a
hand-downloaded archive to use), ``folder`` (a local folder holding the class folders, used in place of
an archive), ``sha256`` (of the archive, or of the folder's content), ``allow_unverified``,
``root`` (folder inside the archive or folder holding the class folders; a preset's default ``root``
is a path inside its archive and does not apply to a ``folder``), ``layout`` (``split_folders``
with ``train_folder``/``test_folder``, or ``single_folder`` split by ``test_size`` fraction and
``split_seed``), ``classes`` (expected class names, or ``null`` to accept what is found),
``resolution``, ``train_limit``/``test_limit``/``limit_seed``, ``manual_dir``, ``timeout``,
``archive_limits`` (``{max_total_bytes, max_members, max_ratio}`` for the extraction; defaults in
:class:`~equitable_fl.data.archive_limits.ArchiveLimits`: 8 GiB, 500,000 members, ratio 100).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from equitable_fl import io
from equitable_fl.data.archive import safe_extract
from equitable_fl.data.archive_limits import ArchiveLimits
from equitable_fl.data.class_folders import (
    class_folders,
    list_images,
    pin_folder,
    unchanged_folder,
)
from equitable_fl.data.download import FetchError, RawDataError, download, file_digests, manual_dir
from equitable_fl.data.image_presets import (  # noqa: F401  (re-exported: the presets' names)
    _SOURCE_PAGES,
    DEFAULTS,
    GENERIC,
    PLANTVILLAGE_CLASSES,
    PLANTVILLAGE_COMMIT,
)
from equitable_fl.data.prepared import PreparedDataset, stratified_split
from equitable_fl.data.torchvision_sets import subsample

log = logging.getLogger(__name__)

NAMES = ("brain-mri", "plantvillage")  # the presets (options in image_presets)
EXTRACTED = "extracted"
MARKER = "extracted.json"
LAYOUTS = ("split_folders", "single_folder")


class UnverifiedSourceError(FetchError):
    """No checksum is configured for an archive and unverified use was not allowed explicitly."""


def defaults(name: str) -> dict[str, Any]:
    """The default options of ``name``: a preset's, or :data:`GENERIC` for any other name."""
    return dict(DEFAULTS.get(name, GENERIC))


def options(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Defaults of ``name`` overlaid with ``cfg``, with ``url`` always a list and ``filename`` set.

    The config checks (:mod:`equitable_fl.config.dataset_options`) report every bad option before any
    job; these checks keep library callers from getting a silently ignored option.
    """
    unknown = sorted(set(cfg) - set(GENERIC))
    if unknown:
        raise ValueError(f"dataset {name!r}: unknown option(s) {unknown}; known options: {sorted(GENERIC)}")
    opts = {**defaults(name), **cfg}
    url = opts["url"]
    opts["url"] = [] if url is None else [url] if isinstance(url, str) else [str(u) for u in url]
    if opts["layout"] not in LAYOUTS:
        raise ValueError(f"dataset {name!r}: layout must be one of {LAYOUTS}, got {opts['layout']!r}")
    if int(opts["resolution"]) <= 0:
        raise ValueError(f"dataset {name!r}: resolution must be positive, got {opts['resolution']}")
    if opts["folder"] and (cfg.get("url") or cfg.get("archive")):  # a preset's default url gives way
        raise ValueError(f"dataset {name!r}: give one source: `folder`, or `archive`/`url`, not both")
    if opts["folder"] and "root" not in cfg:  # a preset's root is a path inside its archive
        opts["root"] = GENERIC["root"]
    opts["filename"] = opts["filename"] or default_filename(name, opts)
    opts["archive_limits"] = ArchiveLimits.from_options(opts["archive_limits"], name)
    return opts


def default_filename(name: str, opts: dict[str, Any]) -> str:
    """The archive file under ``raw_dir``: named as the hand-downloaded archive or the URL, or <name>.zip."""
    if opts.get("archive"):
        return Path(str(opts["archive"])).name
    urls = opts.get("url") or []
    tail = str(urls[0]).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] if urls else ""
    return tail or f"{name}.zip"


def _manual_archive(name: str, opts: dict[str, Any], raw_dir: Path) -> Path:
    if opts["archive"]:
        return Path(str(opts["archive"]))
    return manual_dir(opts, name, raw_dir) / str(opts["filename"])


def fetch(name: str, cfg: dict[str, Any], raw_dir: Path) -> None:
    """Download (or pick up) the archive, verify it, and safely extract it to ``<raw_dir>/extracted``."""
    opts = options(name, cfg)
    raw_dir = Path(raw_dir)
    if opts["folder"]:
        pin_folder(name, Path(str(opts["folder"])), str(opts["root"] or ""), opts["sha256"], raw_dir)
        return
    dest = raw_dir / str(opts["filename"])
    manual = _manual_archive(name, opts, raw_dir)
    sha256 = str(opts["sha256"]).lower() if opts["sha256"] else None
    if sha256 is None and not opts["allow_unverified"]:
        _refuse_unverified(name, opts, dest, manual)
    try:
        archive = download(
            opts["url"],
            dest,
            sha256=sha256,
            dataset=name,
            manual_path=manual,
            timeout=float(opts["timeout"]),
            allow_unverified=sha256 is None,
        )
    except FetchError as exc:
        raise FetchError(
            f"{exc}\n{_where_to_get(name)} and put it at {manual}{_or_other_sources(name)}.",
            dataset=name,
            attempts=exc.attempts,
            manual_path=manual,
        ) from exc
    digest = sha256 or file_digests(archive)["sha256"]
    if sha256 is None:
        log.warning("%s: using UNVERIFIED %s (sha256 %s); set sha256 to pin it", name, archive, digest)
    marker = raw_dir / MARKER
    extracted = raw_dir / EXTRACTED
    record = {"archive": archive.name, "sha256": digest, "verified": sha256 is not None}
    if extracted.is_dir() and marker.is_file() and io.read_json(marker) == record:
        return
    marker.unlink(missing_ok=True)
    if extracted.exists():
        shutil.rmtree(extracted)
    safe_extract(archive, extracted, opts["archive_limits"])
    io.write_json(marker, record)


def _where_to_get(name: str) -> str:
    page = _SOURCE_PAGES.get(name)
    return f"Download it yourself from {page}" if page else f"Download the archive of {name!r} yourself"


def _or_other_sources(name: str) -> str:
    return (
        "" if name in _SOURCE_PAGES else ", or set `archive:` (an archive file) or `folder:` (class folders)"
    )


def _refuse_unverified(name: str, opts: dict[str, Any], dest: Path, manual: Path) -> None:
    lines = [
        f"dataset {name!r}: no sha256 is configured for {opts['filename']}, so a download cannot be verified."
    ]
    local = next((p for p in (dest, manual) if p.is_file()), None)
    if local is not None:
        digest = file_digests(local)["sha256"]
        lines.append(f"The file at {local} has sha256 {digest}; if you trust it, set `sha256: {digest}`.")
    else:
        if not opts["url"]:
            lines.append(f"{_where_to_get(name)} and put it at {manual}.")
        lines.append(
            f"Set `sha256:` for {name} in the config to the archive's sha256 (put a hand-downloaded copy at "
            f"{manual} and rerun to see its hash), or set `allow_unverified: true` to accept it unverified."
        )
    raise UnverifiedSourceError("\n".join(lines), dataset=name, attempts=[], manual_path=manual)


def prepare(name: str, cfg: dict[str, Any], raw_dir: Path | None) -> PreparedDataset:
    """Read the extracted class folders into a :class:`PreparedDataset` (uint8 3×R×R, int64 labels)."""
    opts = options(name, cfg)
    if raw_dir is None:
        raise ValueError(f"dataset {name!r} is prepared from fetched files: a raw_dir is required")
    raw_dir = Path(raw_dir)
    base = _base_folder(name, opts, raw_dir)
    if opts["layout"] == "split_folders":
        train_dir, test_dir = base / str(opts["train_folder"]), base / str(opts["test_folder"])
        train_classes, test_classes = class_folders(train_dir), class_folders(test_dir)
        if train_classes != test_classes:
            raise RawDataError(
                f"dataset {name!r}: class folders differ between {train_dir} {train_classes} "
                f"and {test_dir} {test_classes}"
            )
        classes = _check_classes(name, opts, train_classes, train_dir)
        train_files, train_labels = list_images(train_dir, classes)
        test_files, test_labels = list_images(test_dir, classes)
    else:
        classes = _check_classes(name, opts, class_folders(base), base)
        files, labels = list_images(base, classes)
        n_test = round(float(opts["test_size"]) * len(files))
        if not 0 < n_test < len(files):
            raise ValueError(
                f"dataset {name!r}: test_size {opts['test_size']} of {len(files)} images "
                "leaves an empty split"
            )
        train_idx, test_idx = stratified_split(labels, n_test, int(opts["split_seed"]))
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
        train_files, train_labels = [files[i] for i in train_idx], labels[train_idx]
        test_files, test_labels = [files[i] for i in test_idx], labels[test_idx]

    seed, res = int(opts["limit_seed"]), int(opts["resolution"])
    keep_train = subsample(train_labels, opts["train_limit"], seed)
    keep_test = subsample(test_labels, opts["test_limit"], seed)
    marker = raw_dir / MARKER
    source = {"archive": io.read_json(marker) if marker.is_file() else None}
    if opts["folder"]:
        source = {"folder": unchanged_folder(name, raw_dir)}
    return PreparedDataset(
        name=name,
        x_train=_load_images([train_files[i] for i in keep_train], res),
        y_train=train_labels[keep_train],
        x_test=_load_images([test_files[i] for i in keep_test], res),
        y_test=test_labels[keep_test],
        class_names=tuple(classes),
        source={
            **source,
            "url": opts["url"],
            "root": opts["root"],
            "layout": opts["layout"],
            "resolution": res,
            "resample": "bilinear",
            "test_size": opts["test_size"] if opts["layout"] == "single_folder" else None,
            "split_seed": int(opts["split_seed"]),
            "full_train_size": len(train_files),
            "full_test_size": len(test_files),
            "train_limit": opts["train_limit"],
            "test_limit": opts["test_limit"],
            "limit_seed": seed,
        },
    )


def _base_folder(name: str, opts: dict[str, Any], raw_dir: Path) -> Path:
    if opts["folder"]:
        return Path(str(opts["folder"])).expanduser().resolve() / str(opts["root"] or "")
    extracted = raw_dir / EXTRACTED
    base = extracted / str(opts["root"] or "")
    if not base.is_dir():
        found = sorted(p.name for p in extracted.iterdir()) if extracted.is_dir() else []
        raise RawDataError(
            f"dataset {name!r}: folder {base} does not exist (root={opts['root']!r}); "
            f"{extracted} holds {found or 'nothing'}: run the fetch step, or set `root` to the folder "
            "that holds one sub-folder per class"
        )
    return base


def _check_classes(name: str, opts: dict[str, Any], found: list[str], folder: Path) -> list[str]:
    expected = opts["classes"]
    if expected is not None and set(expected) != set(found):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        raise RawDataError(
            f"dataset {name!r}: class folders in {folder} do not match the configured classes: "
            f"missing {missing}, unexpected {extra} (set `classes: null` to accept the folders as they are)"
        )
    return found


def _load_images(files: list[Path], resolution: int) -> np.ndarray:
    out = np.empty((len(files), 3, resolution, resolution), dtype=np.uint8)
    for i, path in enumerate(files):
        out[i] = load_image(path, resolution)
    return out


def load_image(path: Path, resolution: int) -> np.ndarray:
    """One image as uint8 3×R×R: RGB, resized with bilinear resampling; errors name the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if rgb.size != (resolution, resolution):
                rgb = rgb.resize((resolution, resolution), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RawDataError(f"cannot read image {path}: {exc}") from exc
