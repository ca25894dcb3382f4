"""safe_extract(): plain archives extract; hostile ones are refused with nothing written."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from equitable_fl.data.archive import UnsafeArchiveError, safe_extract

FILES = {"top/a.txt": b"alpha", "top/sub/b.txt": b"beta", "other.txt": b"gamma"}


def _tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tf.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _zip(
    path: Path, entries: list[tuple[str, bytes] | zipfile.ZipInfo | tuple[zipfile.ZipInfo, bytes]]
) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for entry in entries:
            if isinstance(entry[0], zipfile.ZipInfo):
                zf.writestr(entry[0], entry[1])
            else:
                zf.writestr(*entry)
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".extract"))


@pytest.mark.parametrize("mode,suffix", [("w:gz", ".tar.gz"), ("w:gz", ".tgz"), ("w", ".tar")])
def test_tar_extracts(tmp_path, mode, suffix):
    archive = _tar(tmp_path / f"ok{suffix}", list(FILES.items()), mode)
    target = tmp_path / "out"
    files = safe_extract(archive, target)
    assert files == sorted(target / name for name in FILES)
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data
    assert _leftovers(tmp_path) == []


def test_zip_extracts_with_inner_symlink(tmp_path):
    archive = _zip(tmp_path / "ok.zip", [*FILES.items(), _zip_symlink("top/link", "sub/b.txt")])
    target = tmp_path / "out"
    files = safe_extract(archive, target)
    assert target / "top" / "link" in files
    assert (target / "top" / "link").is_symlink()
    assert (target / "top" / "link").read_bytes() == b"beta"
    assert _leftovers(tmp_path) == []


def test_tar_inner_links_are_allowed(tmp_path):
    archive = _tar(
        tmp_path / "links.tar.gz",
        [*FILES.items(), _link("top/sym", "sub/b.txt"), _link("top/hard", "top/a.txt", tarfile.LNKTYPE)],
    )
    target = tmp_path / "out"
    safe_extract(archive, target)
    assert (target / "top" / "sym").read_bytes() == b"beta"
    assert (target / "top" / "hard").read_bytes() == b"alpha"


def test_existing_target_keeps_other_entries(tmp_path):
    target = tmp_path / "out"
    (target / "top").mkdir(parents=True)
    (target / "top" / "old.txt").write_bytes(b"old")
    (target / "keep.txt").write_bytes(b"keep")
    archive = _tar(tmp_path / "ok.tar.gz", list(FILES.items()))
    safe_extract(archive, target)
    assert (target / "keep.txt").read_bytes() == b"keep"
    assert not (target / "top" / "old.txt").exists()  # top-level entries from the archive replace old ones
    assert (target / "top" / "a.txt").read_bytes() == b"alpha"


def test_not_an_archive(tmp_path):
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"plain text")
    with pytest.raises(UnsafeArchiveError, match="neither a zip nor a tar"):
        safe_extract(bogus, tmp_path / "out")


def _device() -> tarfile.TarInfo:
    info = tarfile.TarInfo("dev/null-ish")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


HOSTILE_TARS = {
    "traversal": ([("ok.txt", b"fine"), ("../evil", b"pwned")], "../evil"),
    "nested-traversal": ([("ok.txt", b"fine"), ("a/../../evil", b"pwned")], "a/../../evil"),
    "absolute": ([("ok.txt", b"fine"), ("{outside}/evil", b"pwned")], "evil"),
    "symlink-escape": ([("ok.txt", b"fine"), _link("escape", "../outside")], "escape"),
    "symlink-absolute": ([("ok.txt", b"fine"), _link("escape", "{outside}")], "escape"),
    "hardlink-escape": ([("ok.txt", b"fine"), _link("hard", "../outside/evil", tarfile.LNKTYPE)], "hard"),
    "hardlink-absolute": ([("ok.txt", b"fine"), _link("hard", "{outside}/victim", tarfile.LNKTYPE)], "hard"),
    "write-through-symlink": ([_link("d", "."), ("d/evil", b"pwned")], "d/evil"),
    "device": ([("ok.txt", b"fine"), _device()], "dev/null-ish"),
    # Each link looks harmless on its own; together they climb out of the target.
    "symlink-chain": ([("ok.txt", b"fine"), _link("d/a", ".."), _link("x", "d/a/../..")], "x"),
}


def _materialise(entries, outside: Path):
    out = []
    for entry in entries:
        if isinstance(entry, tarfile.TarInfo):
            clone = _link(entry.name, entry.linkname.replace("{outside}", str(outside)), entry.type)
            if entry.type == tarfile.CHRTYPE:
                clone = _device()
            out.append(clone)
        else:
            out.append((entry[0].replace("{outside}", str(outside)), entry[1]))
    return out


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_and_nothing_is_extracted(tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    entries, member = HOSTILE_TARS[case]
    archive = _tar(tmp_path / "evil.tar.gz", _materialise(entries, outside))
    work = tmp_path / "work"
    work.mkdir()
    target = work / "out"
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, target)
    assert member in str(info.value)
    assert not target.exists()
    assert sorted(p.name for p in work.iterdir()) == []  # no temp folder left behind
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"precious"
    assert not (tmp_path / "evil").exists()


HOSTILE_ZIPS = {
    "traversal": ([("ok.txt", b"fine"), ("../evil", b"pwned")], "../evil"),
    "backslash-traversal": ([("ok.txt", b"fine"), ("a\\..\\..\\evil", b"pwned")], "evil"),
    "absolute": ([("ok.txt", b"fine"), ("/tmp/equitable-fl-evil", b"pwned")], "/tmp/equitable-fl-evil"),
    "drive-letter": ([("ok.txt", b"fine"), ("C:/evil", b"pwned")], "C:/evil"),
    "symlink-escape": ([("ok.txt", b"fine"), _zip_symlink("escape", "../outside")], "escape"),
    "symlink-absolute": ([("ok.txt", b"fine"), _zip_symlink("escape", "/etc")], "escape"),
    "symlink-chain": ([("ok.txt", b"fine"), _zip_symlink("d/a", ".."), _zip_symlink("x", "d/a/../..")], "x"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused_and_nothing_is_extracted(tmp_path, case):
    entries, member = HOSTILE_ZIPS[case]
    archive = _zip(tmp_path / "evil.zip", entries)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, work / "out")
    assert member in str(info.value)
    assert list(work.iterdir()) == []
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/equitable-fl-evil").exists()


def test_refused_archive_leaves_existing_target_untouched(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_bytes(b"keep")
    archive = _tar(tmp_path / "evil.tar.gz", [("keep.txt", b"replaced"), ("../evil", b"pwned")])
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, target)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert (target / "keep.txt").read_bytes() == b"keep"
    assert _leftovers(tmp_path) == []
