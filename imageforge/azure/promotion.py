"""Promotion: what makes a version "latest", and what takes that back.

``promote`` makes a version eligible for latest (all target regions, or some for a staged
rollout) after the gate (azure/evidence.py); ``force`` skips the gate only with a reason, and
records both (``imageforge.override``, ``imageforge.reason``). ``rollback`` excludes it again
(stage ``revoked``), refused when no other promoted version would remain latest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from imageforge import regions as region_names
from imageforge import tags
from imageforge.azure.clients import Session
from imageforge.azure.evidence import PREVIEW_REFUSED, gate_problems
from imageforge.azure.gallery import list_versions, read_version, tag_version, update_version
from imageforge.azure.records import VersionInfo, latest_of
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError, GateError


def _label(image: ImageDefinition, version: str) -> str:
    return f"image {image.name} version {version}"


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_reason(reason: str | None) -> None:
    """Refuse a reason that still holds Azure DevOps macro syntax: ``$(System.AccessToken)``
    typed as a pipeline's free-text parameter is expanded by the agent before any script sees
    it, so a reason with ``$(`` has either been through that already or would be next time;
    either way it does not belong in a tag everyone can read."""
    if reason and "$(" in reason:
        raise ConfigError(
            "--reason contains '$(', which Azure DevOps expands as a macro (a secret such as "
            "$(System.AccessToken) would land in the version's tags): write it without '$('"
        )


@dataclass(frozen=True)
class PromoteResult:
    image: str
    version: str
    changed: bool
    message: str
    regions: tuple[str, ...] | None = None
    forced: bool = False
    problems: tuple[str, ...] = ()


def _check_regions(image: ImageDefinition, regions: Iterable[str]) -> list[str]:
    checked = []
    for name in regions:
        if not region_names.is_region(name):
            known = ", ".join(r.name for r in image.target_regions)
            raise ConfigError(
                f"--regions: {name!r} is not an Azure region (target regions of image "
                f"{image.name}: {known})"
            )
        checked.append(image.region(name).name)
    return list(dict.fromkeys(checked))


def promote(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    *,
    regions: list[str] | None = None,
    force: bool = False,
    reason: str | None = None,
    actor: str,
) -> PromoteResult:
    """Make the version eligible for "latest" (all target regions, or ``regions`` for a
    staged rollout, added to the regions promoted before), after the gate."""
    check_reason(reason)
    if force and not (reason and reason.strip()):
        raise ConfigError("--force needs --reason: the override and its reason are recorded")
    chosen = _check_regions(image, regions) if regions else None
    info = read_version(session, image, version)
    label = _label(image, info.name)
    problems = gate_problems(image, info, chosen)
    if info.is_preview:  # not even --force: no override turns a preview into production
        raise GateError(f"promote refused for {label}: {PREVIEW_REFUSED}")
    if problems and not force:
        raise GateError(f"promote refused for {label}: {'; '.join(problems)}")
    names = [t.region for t in info.targets]
    if chosen is None:
        latest_regions = set(names)
    else:
        before = (
            set()
            if info.exclude_from_latest
            else {t.region for t in info.targets if not t.exclude_from_latest}
        )
        latest_regions = before | set(chosen)
    per_region_ok = all((t.region in latest_regions) != t.exclude_from_latest for t in info.targets)
    shown = (
        "all target regions"
        if latest_regions >= set(names)
        else ", ".join(r for r in names if r in latest_regions)
    )
    if info.stage == "promoted" and not info.exclude_from_latest and per_region_ok:
        by = info.tags.get(tags.PROMOTED_BY, "?")
        at = info.tags.get(tags.PROMOTED_AT, "?")
        return PromoteResult(
            image.name,
            info.name,
            False,
            f"{label} is already promoted ({shown}; by {by} at {at}); nothing changed",
            tuple(sorted(latest_regions)),
        )
    publishing: dict[str, Any] = {"excludeFromLatest": False}
    if not per_region_ok:
        publishing["targetRegions"] = _targets(info, latest=latest_regions)
    if info.exclude_from_latest or "targetRegions" in publishing:
        info = update_version(
            session, image, info, {"properties": {"publishingProfile": publishing}}
        )
    updates: dict[str, object] = {
        tags.STAGE: "promoted",
        tags.PROMOTED_BY: actor,
        tags.PROMOTED_AT: _stamp(),
        tags.PROMOTED_REGIONS: "all"
        if latest_regions >= set(names)
        else ",".join(sorted(latest_regions)),
        tags.REASON: reason.strip() if reason and reason.strip() else None,
        tags.OVERRIDE: ("gate skipped: " + "; ".join(problems)) if force and problems else None,
    }
    info = tag_version(session, image, info, updates)
    suffix = f" (override: {'; '.join(problems)})" if force and problems else ""
    return PromoteResult(
        image.name,
        info.name,
        True,
        f"promoted {label} to latest in {shown}{suffix}",
        tuple(sorted(latest_regions)),
        forced=bool(force and problems),
        problems=tuple(problems),
    )


# rollback ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackResult:
    latest_now: str | None
    image: str = ""
    version: str = ""
    changed: bool = True
    message: str = ""


def rollback(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    *,
    actor: str,
    reason: str | None = None,
) -> RollbackResult:
    """Exclude the version from latest again (stage ``revoked``); Azure's "latest" falls back
    to the highest other version not excluded. Refused when no other promoted version would
    remain."""
    check_reason(reason)
    info = read_version(session, image, version)
    label = _label(image, info.name)
    versions = list_versions(session, image)
    others = [
        v
        for v in versions
        if v.name != info.name and v.stage == "promoted" and not v.exclude_from_latest
    ]
    fallback = latest_of(others)
    excluded = info.exclude_from_latest and all(t.exclude_from_latest for t in info.targets)
    if excluded and info.stage == "revoked":
        return RollbackResult(
            fallback.name if fallback else None,
            image.name,
            info.name,
            False,
            f"{label} is already rolled back; nothing changed",
        )
    if not info.exclude_from_latest and fallback is None:
        raise GateError(
            f"rollback refused: no other promoted version of {image.name} to fall back to "
            f"({info.name} would leave no latest)"
        )
    if not excluded:
        # Both levels: GalleryRP's spec does not say whether the version's excludeFromLatest or
        # a region's wins, and with every flag set no reading of it keeps this version latest.
        info = update_version(
            session,
            image,
            info,
            {"properties": {"publishingProfile": _excluded_everywhere(info)}},
        )
    info = tag_version(
        session,
        image,
        info,
        {
            tags.STAGE: "revoked",
            tags.REVOKED_BY: actor,
            tags.REVOKED_AT: _stamp(),
            tags.REASON: reason.strip() if reason and reason.strip() else None,
        },
    )
    after = [v for v in versions if v.name != info.name] + [info]
    latest = latest_of(after)
    latest_now = latest.name if latest else None
    return RollbackResult(
        latest_now,
        image.name,
        info.name,
        True,
        f"rolled back {label}: latest is now {latest_now or 'none'}",
    )


def _excluded_everywhere(info: VersionInfo) -> dict[str, Any]:
    """A publishingProfile update that excludes the version from latest at both levels."""
    return {"excludeFromLatest": True, "targetRegions": _targets(info, latest=set())}


def _targets(info: VersionInfo, *, latest: set[str]) -> list[dict[str, Any]]:
    """The version's target regions as they are, each excluded from latest unless in
    ``latest``."""
    return [
        {
            "name": t.region,
            "regionalReplicaCount": t.replicas,
            "storageAccountType": t.storage_account_type,
            "excludeFromLatest": t.region not in latest,
        }
        for t in info.targets
    ]
