"""Verified, resumable downloads with mirrors and a manual fallback.

Raw datasets are large, come from servers that go away (yann.lecun.com no longer serves MNIST) and are
fetched on machines that may be offline. So a download here:

- tries each mirror in order and, when all fail, says exactly what failed where and where a file
  downloaded by hand is picked up instead (a :class:`FetchError`);
- streams into ``<dest>.part`` and resumes it with an HTTP ``Range`` request after a dropped connection,
  so a 170 MB archive is not restarted from zero;
- puts a file at ``dest`` only after its checksum verified, with an atomic rename: whatever sits at
  ``dest`` can be trusted, which is what lets Snakemake and DVC reuse it;
- never trusts a file without a checksum unless the caller says so explicitly (``allow_unverified``).

Only :mod:`urllib` is used, so the library has no HTTP dependency; proxies set in the environment
(``https_proxy``, ``no_proxy``) are honoured as urllib does.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_USER_AGENT = "equitable-fl-fetch/1 (+urllib)"
# A transfer that keeps making progress is resumed on the same URL this many times in one call.
_MAX_RESUMES = 3


class FetchError(RuntimeError):
    """No mirror (nor a manually placed file) gave a file with the expected checksum.

    ``attempts`` lists ``(source, what went wrong)`` pairs in the order they were tried.
    """

    def __init__(
        self, message: str, *, dataset: str, attempts: list[tuple[str, str]], manual_path: Path | None
    ):
        super().__init__(message)
        self.dataset = dataset
        self.attempts = attempts
        self.manual_path = manual_path


class RawDataError(RuntimeError):
    """Raw files are missing or unreadable when a dataset is prepared from them."""


@dataclass(frozen=True)
class Checksums:
    """Expected digests of one file; at least one must be set unless verification is waived."""

    sha256: str | None = None
    md5: str | None = None

    def __post_init__(self) -> None:
        for algo in ("sha256", "md5"):
            value = getattr(self, algo)
            if value is not None:
                object.__setattr__(self, algo, value.strip().lower())

    @property
    def empty(self) -> bool:
        return self.sha256 is None and self.md5 is None

    def expected(self) -> dict[str, str]:
        return {algo: v for algo in ("sha256", "md5") if (v := getattr(self, algo)) is not None}

    def mismatch(self, path: Path, chunk: int = 1 << 20) -> str | None:
        """Return None if ``path`` matches every expected digest, else a message with both hashes."""
        expected = self.expected()
        if not expected:
            return None
        actual = file_digests(path, tuple(expected), chunk)
        bad = [a for a in expected if actual[a] != expected[a]]
        if not bad:
            return None
        return "checksum mismatch: " + "; ".join(f"expected {a} {expected[a]}, got {actual[a]}" for a in bad)


def file_digests(
    path: Path, algorithms: tuple[str, ...] = ("sha256",), chunk: int = 1 << 20
) -> dict[str, str]:
    """Hex digests of a file for several algorithms in one pass over the data."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            for h in hashers.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashers.items()}


class _DroppedConnectionError(Exception):
    """The connection ended before the announced length arrived; the ``.part`` file is kept."""

    def __init__(self, message: str, progressed: bool, appended: bool):
        super().__init__(message)
        self.progressed = progressed
        self.appended = appended


class _RangeNotSatisfiableError(Exception):
    """The server says the ``.part`` file already holds all bytes (HTTP 416)."""


def download(
    urls: list[str],
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    dataset: str,
    manual_path: Path | None,
    timeout: float = 30,
    chunk: int = 1 << 20,
    allow_unverified: bool = False,
) -> Path:
    """Make ``dest`` hold the verified file and return ``dest``.

    Order: an existing ``dest`` that verifies is returned without touching the network; then a file
    at ``manual_path`` (downloaded by hand; ``None`` when the caller looks for such files itself) is
    verified and hard-linked or copied to ``dest``; then each URL is tried in turn. Raises
    :class:`FetchError` naming every attempt when nothing worked. Without ``sha256``/``md5`` the call
    is refused unless ``allow_unverified`` is set.
    """
    dest = Path(dest)
    manual_path = Path(manual_path) if manual_path is not None else None
    sums = Checksums(sha256=sha256, md5=md5)
    if sums.empty and not allow_unverified:
        raise ValueError(
            f"dataset {dataset!r}: refusing to fetch {dest.name} without a sha256 or md5 to verify it; "
            "set the checksum (or allow_unverified explicitly)"
        )
    attempts: list[tuple[str, str]] = []

    if dest.is_file():
        problem = sums.mismatch(dest, chunk)
        if problem is None:
            return dest
        attempts.append((f"existing file {dest}", f"{problem} (it will be replaced)"))
        log.warning("%s: existing %s does not verify: %s", dataset, dest, problem)

    dest.parent.mkdir(parents=True, exist_ok=True)
    if manual_path is not None and manual_path.is_file() and manual_path.resolve() != dest.resolve():
        problem = _adopt_manual(manual_path, dest, sums, chunk)
        if problem is None:
            log.info("%s: using manually downloaded %s", dataset, manual_path)
            return dest
        attempts.append((f"manual file {manual_path}", problem))

    part = dest.with_name(dest.name + ".part")
    for url in urls:
        problem = _fetch_url(url, part, dest, sums, timeout, chunk)
        if problem is None:
            return dest
        log.warning("%s: %s failed: %s", dataset, url, problem)
        attempts.append((url, problem))

    raise FetchError(
        _failure_message(dataset, dest, urls, attempts, manual_path, sums),
        dataset=dataset,
        attempts=attempts,
        manual_path=manual_path,
    )


def _failure_message(
    dataset: str,
    dest: Path,
    urls: list[str],
    attempts: list[tuple[str, str]],
    manual_path: Path | None,
    sums: Checksums,
) -> str:
    lines = [f"could not fetch {dest.name} for dataset {dataset!r}:"]
    if not urls:
        lines.append("  - no download URL is configured")
    lines += [f"  - {source}: {problem}" for source, problem in attempts]
    expected = ", ".join(f"{a} {v}" for a, v in sums.expected().items()) or "no checksum configured"
    if manual_path is None:
        return "\n".join(lines)
    lines.append(
        f"To use a file downloaded by hand, put it at {manual_path} (expected {expected}); "
        f"it is verified and used instead of the network."
    )
    return "\n".join(lines)


def _adopt_manual(manual_path: Path, dest: Path, sums: Checksums, chunk: int) -> str | None:
    """Hard-link (or copy) a hand-downloaded file to a temp name, verify it there, rename onto dest."""
    tmp = dest.with_name(f".{dest.name}.manual.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(manual_path, tmp)
        except OSError:
            shutil.copyfile(manual_path, tmp)
        problem = sums.mismatch(tmp, chunk)
        if problem is not None:
            return problem
        os.replace(tmp, dest)
        return None
    except OSError as exc:
        return f"cannot read it: {exc}"
    finally:
        tmp.unlink(missing_ok=True)


def _fetch_url(url: str, part: Path, dest: Path, sums: Checksums, timeout: float, chunk: int) -> str | None:
    """Download ``url`` into ``part`` (resuming), verify, rename onto ``dest``; return the problem or None."""
    resumes = 0
    appended = restarted = False
    while True:
        try:
            appended |= _transfer(url, part, timeout, chunk)
        except _DroppedConnectionError as exc:
            appended |= exc.appended
            if exc.progressed and resumes < _MAX_RESUMES:
                resumes += 1
                log.info("%s: %s; resuming (%d/%d)", url, exc, resumes, _MAX_RESUMES)
                continue
            return f"{exc}; partial file kept at {part} and resumed next time"
        except _RangeNotSatisfiableError:
            # The part file may already be complete; verified below, restarted from zero if not.
            appended = True
        except Exception as exc:  # every failure is reported per mirror, not raised
            return describe_error(exc, timeout)
        problem = sums.mismatch(part, chunk)
        if problem is None:
            os.replace(part, dest)
            return None
        part.unlink(missing_ok=True)
        if appended and not restarted:
            # Bytes stitched onto an earlier partial file may come from another version of the file:
            # one clean download from zero before blaming the mirror.
            restarted, appended, resumes = True, False, 0
            continue
        return f"{problem}; the downloaded data was deleted"


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _transfer(url: str, part: Path, timeout: float, chunk: int) -> bool:
    """Append the rest of ``url`` to ``part`` (or rewrite it when the server ignores ``Range``).

    Returns whether bytes were appended to an existing partial file (a resume).
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            exc.close()
            raise _RangeNotSatisfiableError from exc
        raise
    with response:
        status = getattr(response, "status", None)
        mode = "wb"
        if offset and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                raise http.client.HTTPException(
                    f"server answered range {response.headers.get('Content-Range')!r} to bytes={offset}-"
                )
            mode = "ab"
        else:
            offset = 0
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        received = 0
        part.parent.mkdir(parents=True, exist_ok=True)
        with open(part, mode) as fh:
            try:
                while block := response.read(chunk):
                    fh.write(block)
                    received += len(block)
            except http.client.IncompleteRead as exc:
                fh.write(exc.partial)
                received += len(exc.partial)
                raise _DroppedConnectionError(
                    _short_read(offset, received, length), received > 0, mode == "ab"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise _DroppedConnectionError(
                    f"{_short_read(offset, received, length)} ({exc})", received > 0, mode == "ab"
                ) from exc
        if length is not None and received < length:
            raise _DroppedConnectionError(_short_read(offset, received, length), received > 0, mode == "ab")
    return mode == "ab"


def _short_read(offset: int, received: int, length: int | None) -> str:
    total = f" of {offset + length}" if length is not None else ""
    return f"connection dropped after {offset + received}{total} bytes"


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """A short human description of a network failure: HTTP status, DNS failure, refused, timeout."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    after = f" after {timeout:g} s" if timeout is not None else ""
    if isinstance(reason, socket.gaierror):
        return f"DNS lookup failed ({reason.strerror or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"timed out{after}"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({reason})"
    if isinstance(reason, ConnectionError):
        return f"connection failed ({reason})"
    if isinstance(exc, ValueError):
        return f"invalid URL ({exc})"
    return f"{type(exc).__name__}: {reason}"


def manual_dir(cfg: dict[str, object], dataset: str, raw_dir: Path) -> Path:
    """Folder where hand-downloaded files for ``dataset`` are picked up.

    ``cfg["manual_dir"]`` if set, else ``<raw_dir>/../manual/<dataset>``: beside the raw folder rather
    than inside it, because a workflow manager may wipe the raw folder before re-running a fetch.
    """
    configured = cfg.get("manual_dir")
    return Path(str(configured)) if configured else Path(raw_dir).parent / "manual" / dataset
