"""Safe extraction of downloaded archives (.zip, .tar, .tar.gz/.tgz).

A downloaded archive is untrusted input: a member named ``../../.bashrc``, an absolute path, or a
symlink/hard link pointing out of the extraction folder would let it write anywhere. Every member is
checked *before* anything is written (``tarfile``'s ``data`` filter is applied too where the Python has
it, as a second line of defence, not the only one), extraction goes to a temporary folder beside the
target, and only a fully extracted tree is renamed into place, so a refused or interrupted archive leaves
nothing behind that a later step could mistake for data.

A member that is safe by name can still be too big: total size, member count and expansion ratio are
limited (:mod:`~equitable_fl.data.archive_limits`) from the headers before extraction and from the bytes
actually written during it. Files of both formats are written by one counting copy loop, links last.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from equitable_fl.data.archive_limits import ArchiveLimitError, ArchiveLimits, ExtractionBudget

__all__ = ["ArchiveLimitError", "ArchiveLimits", "UnsafeArchiveError", "archive_kind", "safe_extract"]

# A symlink member's data is its target path; anything longer is not a link a dataset needs.
_MAX_LINK_TARGET = 4096


class UnsafeArchiveError(ValueError):
    """An archive member would escape the extraction folder or is not a plain file, folder or link."""


@dataclass(frozen=True)
class _Member:
    name: str  # normalised relative POSIX path
    kind: str  # "file", "dir", "symlink" or "hardlink"
    link: str | None = None  # symlink target as stored, or the normalised hard link target


def safe_extract(archive: Path, target: Path, limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract ``archive`` into the folder ``target`` and return the extracted files, sorted.

    ``target`` is created if needed. Top-level entries of the archive replace same-named entries
    already in ``target``; nothing else in ``target`` is touched. Raises :class:`UnsafeArchiveError`
    (naming the member) before writing anything if a member is absolute, contains ``..``, is a device
    or FIFO, or is a link resolving outside ``target``; raises :class:`ArchiveLimitError` when the
    archive passes one of ``limits`` (default :class:`ArchiveLimits`), before extraction if its headers
    say so, else as soon as the bytes written do, removing what was written.
    """
    archive, target = Path(archive), Path(target)
    limits = limits or ArchiveLimits()
    kind = archive_kind(archive)
    declared = ExtractionBudget(archive, limits, "declared")
    members = _list_zip(archive, declared) if kind == "zip" else _list_tar(archive, declared)
    _validate(members, archive)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extract", dir=target.parent))
    try:
        written = ExtractionBudget(archive, limits, "written", declared_bytes=declared.bytes)
        if kind == "zip":
            _extract_zip(archive, tmp, members, written)
        else:
            _extract_tar(archive, tmp, members, written)
        _check_tree(tmp, archive)
        return _move_into_place(tmp, target, archive)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def archive_kind(archive: Path) -> str:
    """``"zip"`` or ``"tar"`` (plain or compressed), from the file's content rather than its name."""
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise UnsafeArchiveError(f"{archive} is neither a zip nor a tar archive")


def _normalise(name: str, archive: Path, label: str | None = None) -> str:
    """Turn a member name (or hard link target) into a clean relative POSIX path or refuse it."""
    label = label or f"member {name!r}"
    raw = name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: {label} has an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: {label} contains a '..' component")
    if not parts:
        return ""
    return "/".join(parts)


def _list_zip(archive: Path, budget: ExtractionBudget) -> list[_Member]:
    members: list[_Member] = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if infos:  # the central directory lists every member: the whole archive is counted at once
            budget.add_member(infos[-1].filename, len(infos))
            budget.add_bytes(infos[-1].filename, sum(info.file_size for info in infos))
        for info in zf.infolist():
            name = _normalise(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                if info.file_size > _MAX_LINK_TARGET:
                    raise UnsafeArchiveError(f"{archive}: symlink {info.filename!r} has an overlong target")
                members.append(_Member(name, "symlink", zf.read(info).decode("utf-8")))
            elif info.is_dir():
                members.append(_Member(name, "dir"))
            elif stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a special file")
            else:
                members.append(_Member(name, "file"))
    return members


def _list_tar(archive: Path, budget: ExtractionBudget) -> list[_Member]:
    members: list[_Member] = []
    with tarfile.open(archive) as tf:
        for info in tf:
            # Counted before anything else, so a tar bomb stops the listing at its first oversized member.
            budget.add_member(info.name)
            budget.add_bytes(info.name, info.size if info.isreg() else 0)
            name = _normalise(info.name, archive)
            if info.issym():
                members.append(_Member(name, "symlink", info.linkname))
            elif info.islnk():
                label = f"hard link {info.name!r} -> {info.linkname!r}"
                members.append(_Member(name, "hardlink", _normalise(info.linkname, archive, label)))
            elif info.isdir():
                members.append(_Member(name, "dir"))
            elif info.isreg():
                members.append(_Member(name, "file"))
            else:
                raise UnsafeArchiveError(f"{archive}: member {info.name!r} is a device, FIFO or special file")
    return members


def _validate(members: list[_Member], archive: Path) -> None:
    """Refuse links that escape, members below a symlink, and hard links to unknown files."""
    kinds: dict[str, str] = {}
    for m in members:
        if m.name == "" and m.kind != "dir":
            raise UnsafeArchiveError(f"{archive}: a {m.kind} member has an empty name")
        parents = m.name.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            prefix = "/".join(parents[:i])
            if kinds.get(prefix) in ("symlink", "hardlink", "file"):
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} lies below {prefix!r}, which is a {kinds[prefix]}"
                )
        previous = kinds.get(m.name)
        if previous is not None and (previous != m.kind or m.kind in ("symlink", "hardlink")):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} appears twice with different types")
        if m.kind == "symlink":
            assert m.link is not None
            link = m.link.replace("\\", "/")
            if link.startswith("/") or (len(link) > 1 and link[1] == ":"):
                raise UnsafeArchiveError(f"{archive}: symlink {m.name!r} points to absolute path {m.link!r}")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), link))
            if resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchiveError(f"{archive}: symlink {m.name!r} -> {m.link!r} points outside")
        if m.kind == "hardlink" and kinds.get(m.link or "") != "file":
            raise UnsafeArchiveError(
                f"{archive}: hard link {m.name!r} -> {m.link!r} does not point to a file in the archive"
            )
        for i in range(1, len(parents) + 1):
            kinds.setdefault("/".join(parents[:i]), "dir")
        kinds[m.name] = m.kind


# Opens a file member's data; None for folders and links.
_Opener = Callable[[], IO[bytes]] | None


def _extract_zip(archive: Path, dest: Path, members: list[_Member], budget: ExtractionBudget) -> None:
    with zipfile.ZipFile(archive) as zf:
        entries = zip(members, (partial(zf.open, info) for info in zf.infolist()), strict=True)
        try:
            _write_members(dest, entries, budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise UnsafeArchiveError(
                f"{archive}: member {budget.last_member!r} is corrupt: its data does not match its header "
                f"({exc}); nothing was extracted"
            ) from exc


def _extract_tar(archive: Path, dest: Path, members: list[_Member], budget: ExtractionBudget) -> None:
    data_filter = getattr(tarfile, "data_filter", None)

    def entries(tf: tarfile.TarFile) -> Iterable[tuple[_Member, _Opener]]:
        for m, info in zip(members, tf, strict=True):
            if data_filter is not None:
                try:
                    data_filter(info, str(dest))
                except tarfile.FilterError as exc:
                    raise UnsafeArchiveError(
                        f"{archive}: member {info.name!r} refused by tarfile: {exc}"
                    ) from exc
            yield m, (partial(tf.extractfile, info) if m.kind == "file" else None)

    with tarfile.open(archive) as tf:
        try:
            _write_members(dest, entries(tf), budget)
        except (tarfile.TarError, zlib.error, EOFError) as exc:
            raise UnsafeArchiveError(
                f"{archive}: member {budget.last_member!r} cannot be read ({exc}); nothing was extracted"
            ) from exc


def _write_members(dest: Path, entries: Iterable[tuple[_Member, _Opener]], budget: ExtractionBudget) -> None:
    """Create validated members under ``dest``, counting each member and every byte written."""
    symlinks: list[_Member] = []
    for m, open_data in entries:
        budget.add_member(m.name)
        path = dest / m.name if m.name else dest
        if m.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
        elif m.kind == "file":
            assert open_data is not None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a repeated member must not write through an earlier hard link
            with open_data() as src, open(path, "wb") as out:
                budget.copy(src, out, m.name)
        elif m.kind == "hardlink":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            os.link(dest / (m.link or ""), path)
        else:
            symlinks.append(m)
    # Symlinks last: no file write can then pass through a link created from the archive.
    for m in symlinks:
        path = dest / m.name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(m.link or "", path)


def _check_tree(root: Path, archive: Path) -> None:
    """Defence in depth: every extracted link must still resolve inside the extraction folder."""
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                if os.path.commonpath([real_root, resolved]) != real_root:
                    rel = os.path.relpath(path, root)
                    raise UnsafeArchiveError(f"{archive}: link {rel!r} resolves outside the target")


def _walk_files(root: Path) -> list[Path]:
    """Files and links below ``root`` (links to folders included, not followed), relative, sorted."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        found += [Path(dirpath, name).relative_to(root) for name in filenames + links]
    return sorted(found)


def _move_into_place(tmp: Path, target: Path, archive: Path) -> list[Path]:
    extracted = _walk_files(tmp)
    if not target.exists():
        os.replace(tmp, target)
        tmp.mkdir()  # keep the caller's cleanup of ``tmp`` simple
        return [target / rel for rel in extracted]
    entries = sorted(tmp.iterdir())
    for entry in entries:
        if (target / entry.name).resolve() == archive.resolve():
            raise UnsafeArchiveError(f"{archive}: member {entry.name!r} would overwrite the archive itself")
    for entry in entries:
        final = target / entry.name
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.is_dir():
            shutil.rmtree(final)
        os.replace(entry, final)
    return [target / rel for rel in extracted]
