"""Version reservation: two concurrent builds of one image never publish the same version.

ARM offers no compare-and-swap for "create version N unless it exists" (a PUT of an existing
gallery image version is an update), so the version is chosen with Lamport's bakery algorithm
over one tag per reservation on the image definition, written with ARM's Tags API
(``{definition id}/providers/Microsoft.Resources/tags/default``). Operation ``Merge`` writes
only the named key and ``Delete`` (name/value) removes a key only if it still has the value we
saw, so every reservation owns a single-writer register that nobody else can overwrite, and one
GET of the tags is an atomic snapshot of all registers.

A register is the tag ``imageforge.reserve.<run id>.<nonce>`` with the value
``choosing <utc>`` or ``claimed <version> <utc>``. One attempt:

1. write ``choosing``; read the snapshot, then list the existing versions (in that order: a
   claim that disappeared from the snapshot was released after its version was created);
2. candidate = ``next_version(existing ∪ live claims)`` (or the requested / build-id version,
   refused when it exists or is claimed by a live reservation);
3. write ``claimed <candidate>``;
4. read snapshots until no other live register says ``choosing`` (short, growing sleeps);
   if another live claim has the same candidate and a lower key (run id first), we lose:
   start over at 1 (the winner's claim is now visible, so the next candidate differs);
5. make sure the candidate was not published meanwhile (a lower-keyed winner may have
   published and released it between our steps); if it was, start over.

The claim is held while the build runs and removed when the ``with`` block exits; by then a
published version blocks the number by itself. A crashed run's register goes stale:
``choosing`` after ``choosing_seconds``, ``claimed`` after ``lease_seconds`` (the longest a
build may hold a reservation); stale registers are ignored and deleted. A reservation whose own
choosing phase took longer than half of ``choosing_seconds`` (so others may have ignored it)
starts over, which keeps the algorithm safe when clocks differ by less than that.

Assumption: ARM applies a Tags API Merge/Delete atomically (no lost update of other keys).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from imageforge import tags
from imageforge.azure import gallery, tagsapi
from imageforge.azure.clients import Session
from imageforge.azure.ids import definition_id
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, VersionError
from imageforge.versions import Version, next_version

log = logging.getLogger("imageforge.azure")

PREFIX = tags.PREFIX + "reserve."
CHOOSING = "choosing"
CLAIMED = "claimed"
CHOOSING_SECONDS = 120.0
LEASE_SECONDS = 24 * 3600.0
MAX_ATTEMPTS = 50
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Register:
    """One reservation's tag, parsed."""

    key: str
    value: str
    state: str
    version: Version | None
    stamp: float

    def stale(self, now: float, *, choosing_seconds: float, lease_seconds: float) -> bool:
        limit = choosing_seconds if self.state == CHOOSING else lease_seconds
        return now - self.stamp > limit


def _stamp(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_stamp(text: str) -> float | None:
    try:
        return (
            dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
        )
    except ValueError:
        return None


def parse_register(key: str, value: str) -> Register | None:
    """A register from a tag, or None when the tag is not one (or is garbled)."""
    if not key.lower().startswith(PREFIX):
        return None
    parts = value.split()
    if len(parts) == 2 and parts[0] == CHOOSING:
        stamp = _parse_stamp(parts[1])
        return Register(key, value, CHOOSING, None, stamp) if stamp is not None else None
    if len(parts) == 3 and parts[0] == CLAIMED:
        stamp = _parse_stamp(parts[2])
        try:
            version = Version.parse(parts[1])
        except VersionError:
            return None
        return Register(key, value, CLAIMED, version, stamp) if stamp is not None else None
    return None


def register_key(run_id: str, nonce: str | None = None) -> str:
    """``imageforge.reserve.<run id>.<nonce>``: unique per reservation, ordered by run id."""
    safe = _UNSAFE.sub("-", run_id).strip("-.")[:64] or "run"
    return f"{PREFIX}{safe}.{nonce or uuid.uuid4().hex[:8]}"


class Reservation:
    """One reservation of a version of one image (use ``reserve``)."""

    def __init__(
        self,
        session: Session,
        image: ImageDefinition,
        *,
        scheme: str,
        build_id: str | None,
        requested: Version | None,
        run_id: str,
        choosing_seconds: float = CHOOSING_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        today: dt.date | None = None,
    ) -> None:
        self.session = session
        self.image = image
        self.scheme = scheme
        self.build_id = build_id
        self.requested = requested
        self.run_id = run_id
        self.key = register_key(run_id)
        self.choosing_seconds = choosing_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.sleep = sleep
        self.today = today
        self.scope = ""
        self.value: str | None = None
        self.version: Version | None = None
        self.attempts = 0

    # registers -------------------------------------------------------------------------

    def _what(self) -> str:
        return f"version reservations of image {self.image.name}"

    def _write(self, value: str) -> None:
        tagsapi.merge_at(self.session, self.scope, {self.key: value}, what=self._what())
        self.value = value

    def _delete(self, key: str, value: str) -> None:
        tagsapi.delete_at(self.session, self.scope, {key: value}, what=self._what())

    def _snapshot(self) -> dict[str, str]:
        return tagsapi.read_at(self.session, self.scope, what=self._what())

    def _others(self, snapshot: Mapping[str, str], *, collect: bool = False) -> list[Register]:
        """The live registers of other reservations; stale ones are deleted if ``collect``."""
        now = self.clock()
        live = []
        for key, value in snapshot.items():
            if key.lower() == self.key.lower():
                continue
            reg = parse_register(key, value)
            if reg is None:
                continue
            if reg.stale(
                now, choosing_seconds=self.choosing_seconds, lease_seconds=self.lease_seconds
            ):
                if collect:
                    log.info("removing the stale version reservation %s (%s)", key, value)
                    try:
                        self._delete(key, value)
                    except AzureError as err:
                        log.warning("could not remove stale reservation %s: %s", key, err)
                continue
            live.append(reg)
        return live

    def _existing(self) -> set[Version]:
        return set(gallery.version_names(self.session, self.image.gallery_image.name))

    def _published(self, version: Version) -> bool:
        return gallery.version_exists(self.session, self.image, str(version))

    # the algorithm ---------------------------------------------------------------------

    @property
    def fixed(self) -> bool:
        """The candidate cannot change (requested version, or date scheme with a build id)."""
        return self.requested is not None or (self.scheme == "date" and bool(self.build_id))

    def _candidate(self, existing: set[Version], claims: list[Register]) -> Version:
        claimed = {r.version: r for r in claims if r.version is not None}
        if self.fixed:
            if self.requested is not None:
                wanted = self.requested
            else:
                wanted = next_version(self.scheme, (), today=self.today, build_id=self.build_id)
            if wanted in existing:
                hint = "choose another --version" if self.requested else "build id reused"
                raise VersionError(
                    f"version {wanted} of image {self.image.name} already exists in gallery "
                    f"{self.session.site.gallery} ({hint})"
                )
            if wanted in claimed:
                raise VersionError(
                    f"version {wanted} of image {self.image.name} is being built by another run "
                    f"(reservation {claimed[wanted].key})"
                )
            return wanted
        return next_version(
            self.scheme, existing | set(claimed), today=self.today, build_id=self.build_id
        )

    def _settle(self, candidate: Version, started: float) -> bool:
        """Steps 4 and 5: True when ``candidate`` is ours, False to start over."""
        if self.clock() - started > self.choosing_seconds / 2:
            log.info("choosing took too long; starting the reservation over")
            return False
        delay = 0.05
        give_up = self.clock() + self.choosing_seconds
        while True:
            snapshot = self._snapshot()
            if snapshot.get(self.key) != self.value:
                log.warning("reservation %s vanished from the image definition; retrying", self.key)
                return False
            others = self._others(snapshot)
            if any(r.state == CHOOSING for r in others):
                if self.clock() > give_up:
                    return False  # others keep choosing: start over rather than wait forever
                self.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
                continue
            rivals = [
                r
                for r in others
                if r.state == CLAIMED
                and r.version == candidate
                and r.key.lower() < self.key.lower()
            ]
            if rivals:
                if self.fixed:
                    raise VersionError(
                        f"version {candidate} of image {self.image.name} is being built by "
                        f"another run (reservation {rivals[0].key})"
                    )
                return False
            break
        if self._published(candidate):
            if self.fixed:
                raise VersionError(
                    f"version {candidate} of image {self.image.name} already exists in gallery "
                    f"{self.session.site.gallery}"
                )
            return False
        return True

    def acquire(self) -> Version:
        """Reserve a version; the image definition must exist (the build ensured it)."""
        self.scope = definition_id(self.session, self.image)
        try:
            while True:
                self.attempts += 1
                if self.attempts > MAX_ATTEMPTS:
                    raise AzureError(
                        f"could not reserve a version of image {self.image.name} after "
                        f"{MAX_ATTEMPTS} attempts (too many concurrent builds?)"
                    )
                started = self.clock()
                self._write(f"{CHOOSING} {_stamp(started)}")
                snapshot = self._snapshot()
                existing = self._existing()
                others = self._others(snapshot, collect=self.attempts == 1)
                candidate = self._candidate(existing, [r for r in others if r.state == CLAIMED])
                self._write(f"{CLAIMED} {candidate} {_stamp(self.clock())}")
                if self._settle(candidate, started):
                    self.version = candidate
                    log.info(
                        "reserved version %s of image %s (%s, attempt %d)",
                        candidate, self.image.name, self.key, self.attempts,
                    )  # fmt: skip
                    return candidate
        except BaseException:
            self.release()
            raise

    def refresh(self) -> None:
        """Renew the claim's lease (a build running longer than ``lease_seconds``)."""
        if self.version is not None:
            self._write(f"{CLAIMED} {self.version} {_stamp(self.clock())}")

    def release(self) -> None:
        """Remove this reservation's register (best effort: a stale register expires)."""
        if self.value is None or not self.scope:
            return
        value, self.value = self.value, None
        try:
            self._delete(self.key, value)
        except AzureError as err:
            log.warning("could not release version reservation %s: %s", self.key, err)


@contextmanager
def reserve(
    session: Session,
    image: ImageDefinition,
    *,
    scheme: str,
    build_id: str | None,
    requested: Version | None,
    run_id: str,
    **options: Any,
) -> Iterator[Version]:
    """Reserve the next version of ``image`` for the ``with`` block (see the module docstring)."""
    reservation = Reservation(
        session,
        image,
        scheme=scheme,
        build_id=build_id,
        requested=requested,
        run_id=run_id,
        **options,
    )
    version = reservation.acquire()
    try:
        yield version
    finally:
        reservation.release()
