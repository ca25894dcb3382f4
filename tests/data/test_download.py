"""download(): verified, resumable, mirror-aware fetching against a real local HTTP server."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from equitable_fl.data.download import FetchError, download

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


def _get(urls, tmp_path: Path, **kw):
    kw.setdefault("sha256", SHA)
    kw.setdefault("manual_path", tmp_path / "manual" / "blob.bin")
    return download(urls, tmp_path / "raw" / "blob.bin", dataset="toy", timeout=5, chunk=16_384, **kw)


def _part(tmp_path: Path) -> Path:
    return tmp_path / "raw" / "blob.bin.part"


def test_downloads_and_verifies(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    dest = _get([url], tmp_path, md5=MD5)
    assert dest == tmp_path / "raw" / "blob.bin"
    assert dest.read_bytes() == DATA
    assert not _part(tmp_path).exists()
    assert [r.status for r in http_server.requests] == [200]


def test_existing_verified_file_needs_no_network(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    _get([url], tmp_path)
    http_server.requests.clear()
    assert _get([url], tmp_path).read_bytes() == DATA
    assert http_server.requests == []


def test_existing_file_that_does_not_verify_is_replaced(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    dest = tmp_path / "raw" / "blob.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"stale")
    assert _get([url], tmp_path).read_bytes() == DATA


def test_corrupted_byte_is_refused_and_nothing_is_kept(http_server, tmp_path):
    corrupt = bytearray(DATA)
    corrupt[1234] ^= 0xFF
    url = http_server.put("blob.bin", bytes(corrupt))
    with pytest.raises(FetchError) as info:
        _get([url], tmp_path)
    message = str(info.value)
    assert SHA in message and hashlib.sha256(corrupt).hexdigest() in message
    assert url in message
    assert not (tmp_path / "raw" / "blob.bin").exists()
    assert not _part(tmp_path).exists()


def test_interrupted_transfer_keeps_part_then_resumes_with_range(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    http_server.fail("blob.bin", "drop", times=None)  # every attempt dies half-way
    with pytest.raises(FetchError, match="connection dropped") as info:
        _get([url], tmp_path)
    assert str(_part(tmp_path)) in str(info.value)
    assert not (tmp_path / "raw" / "blob.bin").exists()  # never a file at dest before verification
    kept = _part(tmp_path).stat().st_size
    assert 0 < kept < len(DATA)
    assert DATA.startswith(_part(tmp_path).read_bytes())

    http_server.clear_failures()
    http_server.requests.clear()
    dest = _get([url], tmp_path)
    assert dest.read_bytes() == DATA
    assert not _part(tmp_path).exists()
    first = http_server.requests[0]
    assert first.range == f"bytes={kept}-" and first.status == 206


def test_single_drop_is_resumed_within_the_same_call(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    http_server.fail("blob.bin", "drop", times=1)
    assert _get([url], tmp_path).read_bytes() == DATA
    statuses = [(r.status, r.range) for r in http_server.requests]
    assert statuses[0] == (200, None)
    assert statuses[1][0] == 206 and statuses[1][1] == f"bytes={len(DATA) // 2}-"


def test_server_without_range_support_restarts_from_zero(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    http_server.ranges = False
    _part(tmp_path).parent.mkdir(parents=True)
    _part(tmp_path).write_bytes(DATA[:1000])
    assert _get([url], tmp_path).read_bytes() == DATA
    assert http_server.requests[0].range == "bytes=1000-" and http_server.requests[0].status == 200


def test_stale_part_from_another_file_is_discarded_and_refetched(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    _part(tmp_path).parent.mkdir(parents=True)
    _part(tmp_path).write_bytes(b"x" * 5000)  # right length prefix, wrong bytes
    assert _get([url], tmp_path).read_bytes() == DATA
    assert [(r.status, r.range) for r in http_server.requests] == [(206, "bytes=5000-"), (200, None)]


def test_complete_part_answered_416_is_verified_and_used(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    _part(tmp_path).parent.mkdir(parents=True)
    _part(tmp_path).write_bytes(DATA)
    assert _get([url], tmp_path).read_bytes() == DATA
    assert [r.status for r in http_server.requests] == [416]


def test_404_on_first_mirror_falls_back_to_second(http_server, tmp_path):
    http_server.put("mirror2/blob.bin", DATA)
    urls = [http_server.url("mirror1/blob.bin"), http_server.url("mirror2/blob.bin")]
    assert _get(urls, tmp_path).read_bytes() == DATA
    assert [(r.path, r.status) for r in http_server.requests] == [
        ("/mirror1/blob.bin", 404),
        ("/mirror2/blob.bin", 200),
    ]


def test_injected_404_is_reported(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    http_server.fail("blob.bin", "404", times=None)
    with pytest.raises(FetchError, match="HTTP 404"):
        _get([url], tmp_path)


def test_offline_fails_fast_with_a_useful_message(tmp_path, closed_port_url):
    urls = ["http://mirror.equitable-fl.invalid/blob.bin", closed_port_url + "blob.bin"]
    manual = tmp_path / "manual" / "blob.bin"
    start = time.monotonic()
    with pytest.raises(FetchError) as info:
        _get(urls, tmp_path, manual_path=manual)
    elapsed = time.monotonic() - start
    assert elapsed < 3, f"offline failure took {elapsed:.1f} s"
    message = str(info.value)
    assert "'toy'" in message
    for url in urls:
        assert url in message
    assert "DNS lookup failed" in message
    assert "connection refused" in message
    assert str(manual) in message and SHA in message
    assert info.value.dataset == "toy" and info.value.manual_path == manual
    assert [a[0] for a in info.value.attempts] == urls
    assert not (tmp_path / "raw" / "blob.bin").exists()


def test_manual_file_is_used_without_network(http_server, tmp_path, closed_port_url):
    url = http_server.put("blob.bin", DATA)
    manual = tmp_path / "manual" / "blob.bin"
    manual.parent.mkdir()
    manual.write_bytes(DATA)
    dest = _get([url, closed_port_url], tmp_path, manual_path=manual)
    assert dest.read_bytes() == DATA
    assert manual.read_bytes() == DATA  # the user's file is left in place
    assert http_server.requests == []


def test_wrong_manual_file_is_reported(tmp_path, closed_port_url):
    manual = tmp_path / "manual" / "blob.bin"
    manual.parent.mkdir()
    manual.write_bytes(b"not it")
    with pytest.raises(FetchError) as info:
        _get([closed_port_url + "blob.bin"], tmp_path, manual_path=manual)
    assert f"manual file {manual}" in str(info.value)
    assert hashlib.sha256(b"not it").hexdigest() in str(info.value)
    assert not (tmp_path / "raw" / "blob.bin").exists()


def test_no_checksum_is_refused_unless_allowed(http_server, tmp_path):
    url = http_server.put("blob.bin", DATA)
    with pytest.raises(ValueError, match="without a sha256 or md5"):
        _get([url], tmp_path, sha256=None)
    assert http_server.requests == []
    assert _get([url], tmp_path, sha256=None, allow_unverified=True).read_bytes() == DATA


def test_no_urls_names_the_manual_path(tmp_path):
    with pytest.raises(FetchError, match="no download URL is configured") as info:
        _get([], tmp_path)
    assert str(tmp_path / "manual" / "blob.bin") in str(info.value)
