"""MNIST-family IDX files, accepted in whatever wrapper and layout users have them, verified by content.

torchvision reads the four uncompressed files ``<root>/<ClassName>/raw/*-ubyte``. Users have the same
data as torchvision's ``.gz`` downloads, as Debian's ``dataset-fashion-mnist`` (``.gz`` files whose
gzip headers Debian rewrote, so their md5s differ from torchvision's list while the data is identical),
as the uncompressed files of an existing torchvision root, or as four files in one folder (also spelled
``train-images.idx3-ubyte``). So a file is accepted when the md5 of its *uncompressed content* matches
the published raw-file md5 (:data:`RAW_MD5`) or, for a gzipped file, when the md5 of the file as stored
matches torchvision's ``.gz`` md5. The ``checksums`` option overrides either (by the uncompressed or the
``.gz`` file name).

For each file, in order: the uncompressed file already in place; the ``local_source`` folder (when set,
the file must be there: nothing is downloaded); the manual folder; the mirrors (a ``.gz`` download,
kept beside the uncompressed file). A folder is searched flat, as a torchvision root
(``<folder>/<ClassName>/raw/``) and as ``<folder>/raw/``. Every candidate is read once, gunzipped and
hashed on the way into a temporary file that is renamed into place only if it verifies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from equitable_fl.data.download import FetchError, file_digests
from equitable_fl.data.verified_copy import Digests, copy_verified

log = logging.getLogger(__name__)

# md5 of the uncompressed files as published by the datasets' authors (LeCun et al.; Zalando Research).
RAW_MD5: dict[str, dict[str, str]] = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}


@dataclass(frozen=True)
class IdxFile:
    """One of a dataset's four files: the name torchvision reads and the md5s it may have."""

    name: str  # e.g. "train-images-idx3-ubyte"
    content_md5: str  # of the uncompressed file
    gz_md5: str  # of torchvision's .gz download

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"

    def spellings(self) -> list[str]:
        """File names it may have: uncompressed first, then gzipped; ``-idx`` or ``.idx``."""
        stems = [self.name, self.name.replace("-idx", ".idx", 1)]
        return [s + ext for ext in ("", ".gz") for s in stems]

    def check(self, digests: Digests) -> str | None:
        """None when the content (or torchvision's gzipped file) matches, else the mismatch, both hashes."""
        if digests.content == self.content_md5 or digests.gzip == self.gz_md5:
            return None
        return (
            f"checksum mismatch: expected md5 {self.content_md5} of the uncompressed content "
            f"(or md5 {self.gz_md5} of torchvision's {self.gz_name}), found {digests.describe()}"
        )


def idx_files(class_name: str, gz_md5s: dict[str, str], overrides: dict[str, str]) -> list[IdxFile]:
    """The four files of torchvision class ``class_name``; ``overrides`` maps file names to md5s."""
    files = []
    for gz_name, gz_md5 in gz_md5s.items():
        name = gz_name.removesuffix(".gz")
        content = overrides.get(name, RAW_MD5[class_name][name])
        files.append(IdxFile(name, content.lower(), overrides.get(gz_name, gz_md5).lower()))
    return files


def search_folders(folder: Path, class_name: str) -> list[Path]:
    """Where a folder may hold the files: flat, as a torchvision root, or in its ``raw/``."""
    return [folder, folder / class_name / "raw", folder / "raw"]


@dataclass
class _Context:
    dataset: str
    class_name: str
    target_dir: Path  # <raw_dir>/<ClassName>/raw
    local_source: Path | None
    manual: Path
    mirrors: list[str]


def place(
    files: list[IdxFile],
    target_dir: Path,
    *,
    dataset: str,
    class_name: str,
    local_source: Path | None,
    manual: Path,
    mirrors: list[str],
    download_gz: Callable[[IdxFile], Path],
) -> None:
    """Make ``target_dir/<name>`` hold each file's verified uncompressed content.

    ``download_gz`` fetches a file's ``.gz`` from the mirrors (verified by its md5) and returns its path,
    raising :class:`FetchError` when no mirror works. Raises :class:`FetchError` naming the file, every
    source tried with both hashes, and every way to fix it.
    """
    if local_source is not None and not local_source.is_dir():
        raise ValueError(
            f"dataset {dataset!r}: local_source {str(local_source)!r} is not a folder; name the folder that "
            f"holds the four files (flat, or a torchvision root with {class_name}/raw/)"
        )
    ctx = _Context(dataset, class_name, target_dir, local_source, manual, mirrors)
    for f in files:
        _place_one(f, ctx, download_gz)


def _place_one(f: IdxFile, ctx: _Context, download_gz: Callable[[IdxFile], Path]) -> None:
    target = ctx.target_dir / f.name
    attempts: list[tuple[str, str]] = []
    bad: list[Path] = []  # our own or hand-placed files that did not verify

    def fail() -> FetchError:
        message = _message(f, ctx, attempts, bad)
        return FetchError(message, dataset=ctx.dataset, attempts=attempts, manual_path=ctx.manual)

    if target.is_file():
        problem = f.check(Digests(file_digests(target, ("md5",))["md5"]))
        if problem is None:
            return
        attempts.append((f"existing file {target}", f"{problem} (it is replaced if another source verifies)"))
        bad.append(target)

    if ctx.local_source is not None:
        folders = search_folders(ctx.local_source, ctx.class_name)
        found = _adopt_first(f, folders, target, "local source", attempts, None)
        if found is True:
            return
        if found is None:
            where = ", ".join(str(d) for d in folders)
            attempts.append(
                (f"local source {ctx.local_source}", f"no {' or '.join(f.spellings())} in {where}")
            )
        raise fail()

    if _adopt_first(f, search_folders(ctx.manual, ctx.class_name), target, "manual file", attempts, bad):
        return
    try:
        gz = download_gz(f)
    except FetchError as exc:
        attempts += exc.attempts
        raise fail() from exc
    _, problem = copy_verified(gz, target, f.check)
    if problem is not None:
        attempts.append((f"downloaded {gz}", problem))
        bad.append(gz)
        raise fail()
    for source, problem in attempts:
        log.warning("%s: %s not used: %s", ctx.dataset, source, problem)


def _adopt_first(
    f: IdxFile,
    folders: list[Path],
    target: Path,
    label: str,
    attempts: list[tuple[str, str]],
    bad: list[Path] | None,
) -> bool | None:
    """Place the first candidate in ``folders`` that verifies: True; False if none did; None if none exist."""
    found = False
    for folder in folders:
        for name in f.spellings():
            candidate = folder / name
            if not candidate.is_file():
                continue
            found = True
            _, problem = copy_verified(candidate, target, f.check)
            if problem is None:
                log.info("%s: using %s (%s)", f.name, candidate, label)
                return True
            attempts.append((f"{label} {candidate}", problem))
            if bad is not None:  # files of a named local source are the user's: never suggest deleting them
                bad.append(candidate)
    return False if found else None


def _message(f: IdxFile, ctx: _Context, attempts: list[tuple[str, str]], bad: list[Path]) -> str:
    if ctx.local_source is not None:
        head = f"dataset {ctx.dataset!r}: local_source {ctx.local_source} holds no {f.name} (gzipped or not)"
    else:
        head = f"could not fetch {f.gz_name} for dataset {ctx.dataset!r}, nor find {f.name} (gzipped or not)"
    lines = [f"{head} whose content verifies:"]
    lines += [f"  - {source}: {problem}" for source, problem in attempts]
    lines.append("Ways to fix it:")
    gz_path, raw_path = ctx.manual / f.gz_name, ctx.manual / f.name
    lines.append(
        f"  - put the file, gzipped or not, at {gz_path} or {raw_path}, or name a folder that already "
        f"holds the four files with the dataset option `local_source: /path/to/folder` (flat, or a "
        f"torchvision root with {ctx.class_name}/raw/, e.g. Debian's /usr/share/datasets/<name>/). "
        f"Accepted: uncompressed content with md5 {f.content_md5}, or torchvision's {f.gz_name} with "
        f"md5 {f.gz_md5}."
    )
    lines.append(
        f"  - if you trust a file whose content differs (another release), set the dataset option "
        f"`checksums: {{{f.name}: <md5 of its uncompressed content>}}` (md5s of files found: above)."
    )
    where = ", ".join(ctx.mirrors) or "no mirror is configured: set `mirrors`"
    if ctx.local_source is not None:
        lines.append(f"  - remove the `local_source` option to download {f.name} from the mirrors ({where}).")
    if bad:
        lines.append(
            f"  - delete {', '.join(map(str, bad))} and run the fetch again to download it from the mirrors "
            f"({where})."
        )
    return "\n".join(lines)
