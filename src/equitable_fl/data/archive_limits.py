"""How much extracting one archive may write: total bytes, member count and expansion ratio.

A verified checksum says an archive is the file we expected, not that it is harmless: users accept
archives with ``allow_unverified``, bring their own, or pin the hash of whatever a mirror served. A
1.9 MB zip can hold 2 GB of zeros, and a tar can hold a million empty files. So every extraction is
budgeted twice by :class:`ExtractionBudget`:

- *before* anything is written, from the sizes and member count the archive's headers declare, so an
  oversized archive is refused in milliseconds (a tar's listing stops at the first member over a limit);
- *while* writing, from the bytes actually written, because headers can lie: a copy stops at the limit,
  so no more than the limit is ever written, and :func:`~equitable_fl.data.archive.safe_extract`
  removes the partial output.

Defaults (:class:`ArchiveLimits`) leave room for the paper's largest sets: PlantVillage's ~2 GB zip of
JPEGs (≈2.2 GB and ≈165k members with its colour, grey and segmented copies; JPEGs barely compress, ratio
≈1) and Brain-MRI's 7k images (≈150 MB). A dataset's ``archive_limits`` option overrides them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

DEFAULT_MAX_TOTAL_BYTES = 8 * 1024**3  # 8 GiB: ~4x PlantVillage's full zip
DEFAULT_MAX_MEMBERS = 500_000  # ~3x PlantVillage's members
DEFAULT_MAX_RATIO = 100.0  # image archives expand ~1x, text-heavy ones ~10x; bombs 1000x and more
# Archives may always expand to this many bytes whatever their ratio, so a tiny archive of a few text
# files is never refused for compressing well.
RATIO_ALLOWANCE = 1024**2


class ArchiveLimitError(ValueError):
    """An archive declares or writes more than a limit allows; ``limit`` names it, ``found`` the value."""

    def __init__(self, message: str, *, limit: str, found: float):
        super().__init__(message)
        self.limit = limit
        self.found = found


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds for one extraction; see the module docstring for the defaults' reasoning."""

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_members: int = DEFAULT_MAX_MEMBERS
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def from_options(cls, value: Mapping[str, Any] | None, dataset: str) -> ArchiveLimits:
        """Limits from a dataset's ``archive_limits`` option (``None``/missing keys: the defaults)."""
        if value is None:
            return cls()
        known = [f.name for f in fields(cls)]
        if not isinstance(value, Mapping):
            raise ValueError(
                f"dataset {dataset!r}: archive_limits must be a mapping with keys {known}, got {value!r}"
            )
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(
                f"dataset {dataset!r}: unknown archive_limits keys {unknown}; known keys: {known}"
            )
        checked: dict[str, Any] = {}
        for key, given in value.items():
            number = key == "max_ratio"
            ok_type = isinstance(given, int | float) if number else isinstance(given, int)
            if isinstance(given, bool) or not ok_type or not given > 0 or not math.isfinite(given):
                kind = "a positive number" if number else "a positive integer"
                raise ValueError(f"dataset {dataset!r}: archive_limits.{key} must be {kind}, got {given!r}")
            checked[key] = float(given) if number else int(given)
        return cls(**checked)

    def ratio_cap(self, archive_size: int) -> int:
        """Bytes the ratio limit allows an archive of ``archive_size`` bytes to expand to."""
        return max(int(self.max_ratio * archive_size), RATIO_ALLOWANCE)


_DEFAULTS = ArchiveLimits()


class ExtractionBudget:
    """Running member and byte totals of one archive, refused as soon as a limit is passed.

    ``stage`` is ``"declared"`` (counting the headers before extraction) or ``"written"`` (counting
    the bytes written during it); ``declared_bytes`` (for the latter) shows in messages to say that the
    headers did not tell the truth.
    """

    def __init__(self, archive: Path, limits: ArchiveLimits, stage: str, declared_bytes: int | None = None):
        self.archive = Path(archive)
        self.limits = limits
        self.stage = stage
        self.declared_bytes = declared_bytes
        self.archive_size = self.archive.stat().st_size
        self.members = 0
        self.bytes = 0
        self.last_member = ""
        self._cap = min(limits.max_total_bytes, limits.ratio_cap(self.archive_size))

    def add_member(self, name: str, count: int = 1) -> None:
        """Count ``count`` more members, the last of them ``name``; refuse when over ``max_members``."""
        self.members += count
        self.last_member = name
        if self.members > self.limits.max_members:
            limit = self.limits.max_members
            raise self._refuse("max_members", limit, f"at least {self.members:,} members", name, self.members)

    def add_bytes(self, name: str, size: int) -> None:
        """Count ``size`` more bytes of member ``name``; refuse when over the tighter byte limit."""
        self.bytes += size
        if self.bytes > self._cap:
            raise self._refuse_bytes(name, f"at least {self.bytes:,}")

    def room(self) -> int:
        """Bytes that may still be written."""
        return max(self._cap - self.bytes, 0)

    def copy(self, src: IO[bytes], out: IO[bytes], name: str, chunk: int = 1 << 20) -> None:
        """Copy ``src`` into ``out`` counting bytes; stop after writing exactly the allowed bytes."""
        while block := src.read(chunk):
            room = self.room()
            if len(block) > room:
                out.write(block[:room])
                self.bytes += room
                raise self._refuse_bytes(name, f"more than {self.bytes:,}")
            out.write(block)
            self.bytes += len(block)

    def _refuse_bytes(self, name: str, total: str) -> ArchiveLimitError:
        if self.limits.max_total_bytes <= self.limits.ratio_cap(self.archive_size):
            limit = self.limits.max_total_bytes
            return self._refuse("max_total_bytes", limit, f"{total} bytes", name, self.bytes)
        ratio = self.bytes / max(self.archive_size, 1)
        what = (
            f"{total} bytes from a {self.archive_size:,}-byte archive, a ratio of {ratio:,.0f} "
            f"(any archive may expand to {RATIO_ALLOWANCE:,} bytes)"
        )
        return self._refuse("max_ratio", self.limits.max_ratio, what, name, ratio)

    def _refuse(self, limit: str, value: float, what: str, name: str, found: float) -> ArchiveLimitError:
        if self.stage == "declared":
            when = f"before extraction: its headers declare {what} (counted up to member {name!r})"
        else:
            lie = (
                f"; its headers declared only {self.declared_bytes:,} bytes, so they do not match the data"
                if self.declared_bytes is not None and self.bytes > self.declared_bytes
                else ""
            )
            when = (
                f"during extraction at member {name!r}: it wrote {what}{lie}; the partial output was removed"
            )
        raised = f"`archive_limits: {{{limit}: {_round_up(found)}}}`"
        message = (
            f"{self.archive}: refused {when}. That is over the limit {limit} = {_show(value)} "
            f"(default {_show(getattr(_DEFAULTS, limit))}). If you trust this archive, raise the limit above "
            f"the value found in this dataset's options, e.g. {raised}."
        )
        return ArchiveLimitError(message, limit=limit, found=found)


def _show(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _round_up(value: float) -> int:
    """A round number above twice ``value`` (1, 2 or 5 times a power of ten): a raised limit to suggest."""
    target = max(2 * value, 10)
    power = 10 ** math.floor(math.log10(target))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= target)
