"""Gallery image versions and the schemes that choose the next one.

Azure names a gallery image version Major.Minor.Patch, each part an integer from 0 to
2**31 - 1. Two schemes pick the next version of an image:

- ``semver``: the next patch after the highest existing version (1.0.0 for the first);
- ``date``: YYYY.MMDD.N for the build day in UTC. N is the pipeline build id when one is given
  (Azure DevOps' $(Build.BuildId)), otherwise a counter one above the highest N of that day.
  MMDD is an integer (month * 100 + day), so 5 January is ``2026.105.N``: Azure compares parts
  as integers and rejects nothing, but a leading zero would not survive a round trip.

The existing versions come from a ``VersionSource``: the gallery in production
(imageforge.azure.gallery), a fixed list in tests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from imageforge.errors import VersionError

INT32_MAX = 2**31 - 1
SCHEMES = ("semver", "date")
_PATTERN = re.compile(r"(\d+)\.(\d+)\.(\d+)", re.ASCII)  # Azure takes ASCII digits only


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, *, where: str = "version") -> Version:
        """Parse ``text`` or raise VersionError naming ``where`` and the value.

        Whitespace around the version is an error, not trimmed: callers pass the text on as
        they got it (to Azure, into tags and paths), where ``" 1.0.0"`` is not ``1.0.0``.
        """
        if isinstance(text, str) and text != text.strip():
            raise VersionError(
                f"{where}: invalid version {text!r}: leading or trailing whitespace; "
                f"expected Major.Minor.Patch, three non-negative integers (e.g. 1.4.0)"
            )
        match = _PATTERN.fullmatch(text) if isinstance(text, str) else None
        if not match:
            raise VersionError(
                f"{where}: invalid version {text!r}: expected Major.Minor.Patch, "
                f"three non-negative integers (e.g. 1.4.0)"
            )
        parts = tuple(int(p) for p in match.groups())
        for part in parts:
            if part > INT32_MAX:
                raise VersionError(
                    f"{where}: invalid version {text!r}: each part must be at most "
                    f"{INT32_MAX} (a 32-bit signed integer)"
                )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class VersionSource(Protocol):
    """Where the existing versions of an image come from."""

    def existing_versions(self, image_name: str) -> list[Version]: ...


@dataclass(frozen=True)
class StaticVersionSource:
    """A fixed set of versions (tests, --dry-run without Azure access)."""

    versions: tuple[Version, ...] = ()

    def existing_versions(self, image_name: str) -> list[Version]:
        return list(self.versions)


def next_version(
    scheme: str,
    existing: Iterable[Version],
    *,
    today: dt.date | None = None,
    build_id: int | str | None = None,
) -> Version:
    """Return the version the next build of an image gets under ``scheme``."""
    versions = sorted(existing)
    if scheme == "semver":
        if not versions:
            return Version(1, 0, 0)
        top = versions[-1]
        if top.patch >= INT32_MAX:
            raise VersionError(f"cannot bump {top}: patch would exceed {INT32_MAX}")
        return Version(top.major, top.minor, top.patch + 1)
    if scheme == "date":
        day = today or dt.datetime.now(dt.UTC).date()
        major, minor = day.year, day.month * 100 + day.day
        if build_id not in (None, ""):
            try:
                n = int(str(build_id))
            except ValueError:
                raise VersionError(
                    f"build id {build_id!r} is not an integer (date scheme YYYY.MMDD.N)"
                ) from None
            if not 0 <= n <= INT32_MAX:
                raise VersionError(f"build id {n} is out of range 0..{INT32_MAX}")
            candidate = Version(major, minor, n)
            if candidate in versions:
                raise VersionError(f"version {candidate} already exists (build id {n} reused)")
            return candidate
        same_day = [v.patch for v in versions if (v.major, v.minor) == (major, minor)]
        return Version(major, minor, max(same_day) + 1 if same_day else 1)
    raise VersionError(f"unknown version scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
