"""The end of a version's life: deprecation (its endOfLifeDate) and the retention policy that
prunes old versions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from imageforge import tags
from imageforge.azure import locks, managedimages
from imageforge.azure.clients import Session
from imageforge.azure.evidence import BUSY
from imageforge.azure.gallery import delete_versions, list_versions, read_version, update_version
from imageforge.azure.records import VersionInfo, latest_of
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError

#: How long a preview (a shallow version built with --preview) is kept, in days.
PREVIEW_DAYS = 7


def _label(image: ImageDefinition, version: str) -> str:
    return f"image {image.name} version {version}"


@dataclass(frozen=True)
class DeprecateResult:
    image: str
    version: str
    end_of_life: dt.date
    changed: bool
    message: str


def deprecate(
    session: Session, image: ImageDefinition, version: str | VersionInfo, *, end_of_life: dt.date
) -> DeprecateResult:
    """Set the version's endOfLifeDate (midnight UTC of ``end_of_life``)."""
    info = read_version(session, image, version)
    label = _label(image, info.name)
    if info.end_of_life_date is not None and info.end_of_life_date.date() == end_of_life:
        return DeprecateResult(
            image.name, info.name, end_of_life, False,
            f"{label} already reaches end of life on {end_of_life.isoformat()}; nothing changed",
        )  # fmt: skip
    stamp = f"{end_of_life.isoformat()}T00:00:00+00:00"
    update_version(
        session, image, info, {"properties": {"publishingProfile": {"endOfLifeDate": stamp}}}
    )
    return DeprecateResult(
        image.name, info.name, end_of_life, True,
        f"{label} reaches end of life on {end_of_life.isoformat()}",
    )  # fmt: skip


# prune ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    candidates: list[str]
    deleted: list[str]
    image: str = ""
    kept: list[str] = field(default_factory=list)
    message: str = ""


def prune_plan(
    versions: list[VersionInfo],
    *,
    keep: int,
    days: int,
    now: dt.datetime,
    preview_days: int = PREVIEW_DAYS,
) -> tuple[list[VersionInfo], list[VersionInfo]]:
    """(candidates, kept): keep the newest ``keep`` promoted versions, anything younger than
    ``days`` (or of unknown age), anything busy, and never the current latest. Previews
    (shallow versions) have their own policy: each goes once older than ``preview_days``."""
    previews = [v for v in versions if v.is_preview]
    old = now - dt.timedelta(days=preview_days)
    doomed = {
        v.name
        for v in previews
        if v.published_date is not None
        and v.published_date <= old
        and v.provisioning_state not in BUSY
    }
    versions = [v for v in versions if not v.is_preview]
    candidates, kept = _release_plan(versions, keep=keep, days=days, now=now)
    return (
        sorted(candidates + [v for v in previews if v.name in doomed], key=lambda v: v.version),
        sorted(kept + [v for v in previews if v.name not in doomed], key=lambda v: v.version),
    )


def _release_plan(
    versions: list[VersionInfo], *, keep: int, days: int, now: dt.datetime
) -> tuple[list[VersionInfo], list[VersionInfo]]:
    latest = latest_of(versions)
    promoted = sorted((v for v in versions if v.stage == "promoted"), key=lambda v: v.version)
    keep_names = {v.name for v in promoted[len(promoted) - keep :]} if keep > 0 else set()
    if latest is not None:
        keep_names.add(latest.name)
    cutoff = now - dt.timedelta(days=days)
    for v in versions:
        if v.published_date is None or v.published_date > cutoff:
            keep_names.add(v.name)
        if v.provisioning_state in BUSY:
            keep_names.add(v.name)
    candidates = [v for v in versions if v.name not in keep_names]
    kept = [v for v in versions if v.name in keep_names]
    return candidates, kept


def prune(
    session: Session,
    image: ImageDefinition,
    *,
    keep: int = 3,
    days: int = 30,
    yes: bool = False,
    now: dt.datetime | None = None,
    preview_days: int = PREVIEW_DAYS,
    actor: str = "imageforge",
) -> PruneResult:
    """List (and with ``yes`` delete) the versions the retention policy lets go; the deletes
    run with imageforge's lock on the gallery's group lifted (by ``actor``) and restored."""
    if keep < 0 or days < 0 or preview_days < 0:
        raise ConfigError("prune: --keep, --days and --preview-days must be >= 0")
    moment = now or dt.datetime.now(dt.UTC)
    versions = list_versions(session, image)
    candidates, kept = prune_plan(
        versions, keep=keep, days=days, now=moment, preview_days=preview_days
    )
    names = [v.name for v in candidates]
    policy = f"keep {keep} newest promoted, anything younger than {days} days, and latest"
    if any(v.is_preview for v in versions):
        policy += f"; previews until {preview_days} days old"
    if not candidates:
        return PruneResult(
            [], [], image.name, [v.name for v in kept],
            f"nothing to prune for image {image.name} ({policy})",
        )  # fmt: skip
    if not yes:
        return PruneResult(
            names, [], image.name, [v.name for v in kept],
            f"would delete {len(names)} version(s) of image {image.name}: {', '.join(names)} "
            "(run again with --yes to delete)",
        )  # fmt: skip
    with locks.lifted(session, actor=actor, why="prune"):
        deleted, failures = delete_versions(session, image, names)
        images, image_failures = _delete_managed_images(session, candidates, deleted)
    failures += image_failures
    if failures:
        raise AzureError(
            f"prune deleted {len(deleted)} of {len(names)} version(s); {failures[0]}"
            + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        )
    return PruneResult(
        names, deleted, image.name, [v.name for v in kept],
        f"deleted {len(deleted)} version(s) of image {image.name}: {', '.join(deleted)}"
        + (f"; and their managed image(s): {', '.join(images)}" if images else ""),
    )  # fmt: skip


def _delete_managed_images(
    session: Session, candidates: list[VersionInfo], deleted: list[str]
) -> tuple[list[str], list[str]]:
    """Delete the managed images (tag imageforge.managed-image) of the deleted versions:
    (what happened to each, one message per failure). One already gone is no error."""
    done, failures = [], []
    for info in candidates:
        managed_id = info.tags.get(tags.MANAGED_IMAGE)
        if info.name not in deleted or not managed_id:
            continue
        try:
            _, name = managedimages.parse_id(managed_id)
            gone = not managedimages.delete(session, managed_id)
            done.append(f"{name} (already gone)" if gone else name)
        except AzureError as err:
            failures.append(f"version {info.name}'s managed image {managed_id}: {err}")
    return done, failures
