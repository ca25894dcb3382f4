"""Archive limits: bombs, member floods and lying headers are refused, leaving nothing behind."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from equitable_fl.data import image_folder
from equitable_fl.data.archive import ArchiveLimitError, ArchiveLimits, UnsafeArchiveError, safe_extract
from equitable_fl.data.archive_limits import ExtractionBudget

BOMB_BYTES = 8 * 1024**2  # 8 MiB of zeros deflate to ~8 KB


def _zip_bomb(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        zf.writestr("zeros.bin", b"\0" * BOMB_BYTES)
    return path


def _lie_about_sizes(path: Path, member: str, declared: int) -> None:
    """Rewrite ``member``'s uncompressed size in its local header and central directory entry."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while (at := data.find(signature, at)) != -1:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", data, at + size_at, declared)
            at += 4
    path.write_bytes(bytes(data))


def _nothing_left(work: Path) -> None:
    """No target and no temporary extraction folder: only the archive itself."""
    assert sorted(p.name for p in work.iterdir()) == ["bomb.zip"]


def test_zip_bomb_is_refused_by_the_default_ratio_before_writing(tmp_path):
    archive = _zip_bomb(tmp_path / "bomb.zip")
    assert archive.stat().st_size < 100_000
    with pytest.raises(ArchiveLimitError) as info:
        safe_extract(archive, tmp_path / "out")
    assert info.value.limit == "max_ratio" and info.value.found > 100
    message = str(info.value)
    assert "before extraction" in message and "max_ratio = 100" in message
    assert f"{BOMB_BYTES:,} bytes" in message
    assert "archive_limits: {max_ratio:" in message
    _nothing_left(tmp_path)


def test_zip_bomb_over_max_total_bytes_names_limit_value_and_fix(tmp_path):
    archive = _zip_bomb(tmp_path / "bomb.zip")
    limits = ArchiveLimits(max_total_bytes=1024**2, max_ratio=1e6)
    with pytest.raises(ArchiveLimitError) as info:
        safe_extract(archive, tmp_path / "out", limits)
    assert info.value.limit == "max_total_bytes" and info.value.found == BOMB_BYTES
    message = str(info.value)
    assert "max_total_bytes = 1,048,576" in message and f"{BOMB_BYTES:,}" in message
    assert "archive_limits: {max_total_bytes: 20000000}" in message
    _nothing_left(tmp_path)


def test_raised_limits_let_a_trusted_archive_through(tmp_path):
    archive = _zip_bomb(tmp_path / "bomb.zip")
    safe_extract(archive, tmp_path / "out", ArchiveLimits(max_ratio=10_000))
    assert (tmp_path / "out" / "zeros.bin").stat().st_size == BOMB_BYTES


def test_counting_copy_writes_no_more_than_the_limit(tmp_path):
    """The during-extraction check, on a real bomb's member stream whose header is not trusted."""
    archive = _zip_bomb(tmp_path / "bomb.zip")
    limit = 1024**2
    budget = ExtractionBudget(archive, ArchiveLimits(max_total_bytes=limit, max_ratio=1e6), "written", 1000)
    out_path = tmp_path / "written.bin"
    with (
        zipfile.ZipFile(archive) as zf,
        zf.open("zeros.bin") as src,
        open(out_path, "wb") as out,
        pytest.raises(ArchiveLimitError) as info,
    ):
        budget.copy(src, out, "zeros.bin", chunk=300_000)
    assert out_path.stat().st_size == limit
    message = str(info.value)
    assert "during extraction at member 'zeros.bin'" in message
    assert "headers declared only 1,000 bytes" in message and "max_total_bytes = 1,048,576" in message


def test_zip_whose_header_lies_about_sizes_is_refused_during_extraction(tmp_path):
    archive = _zip_bomb(tmp_path / "bomb.zip", extra={"first.txt": b"written before the lie is found"})
    _lie_about_sizes(archive, "zeros.bin", 1000)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("zeros.bin").file_size == 1000  # the headers now pass every limit
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, work / "out", ArchiveLimits(max_total_bytes=1024**2))
    assert "'zeros.bin'" in str(info.value) and "does not match its header" in str(info.value)
    assert list(work.iterdir()) == []  # first.txt, already written, went with the temporary folder


def test_tar_with_too_many_members_is_refused(tmp_path):
    archive = tmp_path / "many.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for i in range(50):
            info = tarfile.TarInfo(f"f/{i:03d}.txt")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ArchiveLimitError) as info:
        safe_extract(archive, work / "out", ArchiveLimits(max_members=20))
    assert info.value.limit == "max_members"
    message = str(info.value)
    assert "at least 21 members" in message and "'f/020.txt'" in message and "max_members = 20" in message
    assert "archive_limits: {max_members:" in message
    assert list(work.iterdir()) == []
    safe_extract(archive, work / "out", ArchiveLimits(max_members=50))  # exactly at the limit is fine
    assert len(list((work / "out" / "f").iterdir())) == 50


def test_defaults_fit_the_papers_largest_datasets():
    limits = ArchiveLimits()
    assert limits.max_total_bytes >= 3 * 2 * 1024**3  # PlantVillage's ~2 GB zip, with room
    assert limits.max_members >= 3 * 54_305 * 3  # its colour, grey and segmented copies, with room
    assert limits.max_ratio >= 10  # JPEG archives expand ~1x


@pytest.mark.parametrize(
    "value,match",
    [
        ({"max_bytes": 1}, r"unknown archive_limits keys \['max_bytes'\]; known keys: \['max_total_bytes'"),
        ({"max_members": 0}, "archive_limits.max_members must be a positive integer, got 0"),
        ({"max_total_bytes": 1.5}, "must be a positive integer, got 1.5"),
        ({"max_ratio": True}, "max_ratio must be a positive number, got True"),
        ([1, 2], "must be a mapping"),
    ],
)
def test_bad_archive_limits_options_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        ArchiveLimits.from_options(value, "plantvillage")


def test_options_reach_the_image_folder_extraction(tmp_path):
    archive = _zip_bomb(tmp_path / "bomb.zip")
    cfg = {"archive": str(archive), "allow_unverified": True, "archive_limits": {"max_total_bytes": 1024**2}}
    raw = tmp_path / "raw"
    with pytest.raises(ArchiveLimitError, match="max_total_bytes = 1,048,576"):
        image_folder.fetch("brain-mri", cfg, raw)
    assert not (raw / image_folder.EXTRACTED).exists()
    assert not (raw / image_folder.MARKER).exists()
    assert ArchiveLimits.from_options(None, "x") == image_folder.options("brain-mri", {})["archive_limits"]
