"""Copy a file into place while hashing it, gunzipping on the way, and keep it only if it verifies.

Users have dataset files in more than one wrapper: torchvision's ``.gz`` files, Debian's copies of the
same data with rewritten gzip headers, uncompressed files of an existing torchvision root. What must
match is the *content*. :func:`copy_verified` reads the source once: the bytes on disk are hashed (that
is the md5 torchvision lists for its ``.gz`` files), decompressed when they start with the gzip magic,
and the content is hashed and written to a temporary file beside the target in the same pass. The
temporary file is renamed onto the target only when the caller's check accepts the digests, so a file
at the target name is always one that verified.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Digests:
    """md5s of one source file: of its content, and of the file as stored when it was gzipped."""

    content: str
    gzip: str | None = None

    def describe(self) -> str:
        if self.gzip is None:
            return f"md5 {self.content}"
        return f"md5 {self.content} of the uncompressed content (md5 {self.gzip} of the gzipped file)"


def expect_md5(expected: str) -> Callable[[Digests], str | None]:
    """A check for :func:`copy_verified` accepting content with md5 ``expected``."""

    def check(digests: Digests) -> str | None:
        if digests.content == expected:
            return None
        return f"checksum mismatch: expected md5 {expected}, found {digests.describe()}"

    return check


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes every byte read through it."""

    def __init__(self, raw: io.BufferedReader):
        self._raw = raw
        self.md5 = hashlib.md5()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self._raw.readinto(buffer)
        self.md5.update(memoryview(buffer)[:n])
        return n


def copy_verified(
    source: Path, target: Path, check: Callable[[Digests], str | None], chunk: int = 1 << 20
) -> tuple[Digests | None, str | None]:
    """Copy ``source`` (gunzipped if it is gzip) onto ``target`` if ``check`` accepts its digests.

    ``check`` returns ``None`` to accept or a description of the problem. Returns the digests (``None``
    when the source cannot be read) and the problem (``None`` when ``target`` now holds the content).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digests = _stream(source, out, chunk)
        problem = check(digests)
        if problem is None:
            os.replace(tmp, target)
        return digests, problem
    except (OSError, EOFError, zlib.error) as exc:
        return None, f"cannot read it: {exc}"
    finally:
        tmp.unlink(missing_ok=True)


def _stream(source: Path, out: io.BufferedWriter, chunk: int) -> Digests:
    content = hashlib.md5()
    with open(source, "rb") as fh:
        gzipped = fh.read(2) == _GZIP_MAGIC
        fh.seek(0)
        if not gzipped:
            while block := fh.read(chunk):
                content.update(block)
                out.write(block)
            return Digests(content.hexdigest())
        reader = _HashingReader(fh)
        with gzip.GzipFile(fileobj=reader, mode="rb") as gz:
            while block := gz.read(chunk):
                content.update(block)
                out.write(block)
        while reader.read(chunk):  # anything after the last gzip member still counts for the file's md5
            pass
        return Digests(content.hexdigest(), reader.md5.hexdigest())
