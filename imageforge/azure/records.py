"""A gallery image version as imageforge reads it: the records parsed from its REST JSON.

``version_info`` is the one parser of a version's ARM representation (``$expand=
ReplicationStatus`` adds the per-region states); the records are frozen, and a step that
changes a version returns the new record (``with_tags``) so the next step need not read it
again. Nothing here calls ARM.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from imageforge import regions as region_names
from imageforge import tags
from imageforge.versions import Version


@dataclass(frozen=True)
class RegionStatus:
    """Replication of a version into one region."""

    region: str  # short ARM name, e.g. westeurope
    state: str  # Replicating | Completed | Failed | Unknown
    progress: int = 0
    details: str = ""


@dataclass(frozen=True)
class TargetInfo:
    """A version's target region as published (publishingProfile.targetRegions[])."""

    region: str
    replicas: int
    storage_account_type: str
    exclude_from_latest: bool


@dataclass(frozen=True)
class VersionInfo:
    """One gallery image version, as its ARM representation and tags describe it."""

    name: str
    version: Version
    id: str
    stage: str
    tags: Mapping[str, str]
    exclude_from_latest: bool
    published_date: dt.datetime | None
    end_of_life_date: dt.datetime | None
    provisioning_state: str
    regions: Mapping[str, str]  # region -> replication state ("Unknown" if not fetched)
    is_latest: bool = False
    tests_passed: int | None = None
    tests_failed: int | None = None
    tests_errors: int | None = None
    targets: tuple[TargetInfo, ...] = ()
    region_status: tuple[RegionStatus, ...] = ()
    location: str = ""
    #: publishingProfile.replicationMode: "Full" (Azure's default) or "Shallow" (a preview)
    replication_mode: str = "Full"

    @property
    def test_summary(self) -> str:
        if self.tests_passed is None and self.tests_failed is None:
            return "not tested"
        text = f"{self.tests_passed or 0} passed, {self.tests_failed or 0} failed"
        return text + (f", {self.tests_errors} errors" if self.tests_errors else "")

    @property
    def target_names(self) -> list[str]:
        return [t.region for t in self.targets]

    def target(self, region: str) -> TargetInfo | None:
        wanted = region_names.normalize(region)
        return next((t for t in self.targets if t.region == wanted), None)

    @property
    def is_preview(self) -> bool:
        """A shallow version: published without replication, its regions fixed for good
        (GalleryRP: replicationMode "is not updatable"); never production."""
        return self.replication_mode.lower() == "shallow"

    def failed_regions(self) -> list[RegionStatus]:
        return [r for r in self.region_status if r.state == "Failed"]


@dataclass(frozen=True)
class ReplicationStatus:
    """``$expand=ReplicationStatus`` of a version."""

    version: str
    aggregated: str  # InProgress | Completed | Failed | Unknown
    regions: tuple[RegionStatus, ...] = field(default_factory=tuple)

    @property
    def states(self) -> dict[str, str]:
        return {r.region: r.state for r in self.regions}


def _int_tag(values: Mapping[str, str], name: str) -> int | None:
    raw = values.get(name)
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _date(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _status_of(props: Mapping[str, Any]) -> tuple[RegionStatus, ...] | None:
    status = props.get("replicationStatus")
    if not isinstance(status, Mapping):
        return None
    return tuple(
        RegionStatus(
            region_names.normalize(str(item.get("region", ""))),
            str(item.get("state", "Unknown")),
            int(item.get("progress") or 0),
            str(item.get("details") or ""),
        )
        for item in status.get("summary") or []
    )


def version_info(data: Mapping[str, Any], *, is_latest: bool = False) -> VersionInfo:
    """A VersionInfo from a version's REST JSON (with replicationStatus when expanded)."""
    props = data.get("properties") or {}
    publishing = props.get("publishingProfile") or {}
    tag_values = dict(data.get("tags") or {})
    targets = tuple(
        TargetInfo(
            region_names.normalize(str(t.get("name", ""))),
            int(t.get("regionalReplicaCount") or publishing.get("replicaCount") or 1),
            str(t.get("storageAccountType") or publishing.get("storageAccountType") or ""),
            bool(t.get("excludeFromLatest", False)),
        )
        for t in publishing.get("targetRegions") or []
    )
    status = _status_of(props)
    if status is None:
        regions = {t.region: "Unknown" for t in targets}
        status = ()
    else:
        regions = {r.region: r.state for r in status}
    name = str(data.get("name", ""))
    return VersionInfo(
        name=name,
        version=Version.parse(name, where="gallery version"),
        id=str(data.get("id", "")),
        stage=tag_values.get(tags.STAGE, ""),
        tags=tag_values,
        exclude_from_latest=bool(publishing.get("excludeFromLatest", False)),
        published_date=_date(publishing.get("publishedDate")),
        end_of_life_date=_date(publishing.get("endOfLifeDate")),
        provisioning_state=str(props.get("provisioningState", "")),
        regions=regions,
        is_latest=is_latest,
        tests_passed=_int_tag(tag_values, tags.TESTS_PASSED),
        tests_failed=_int_tag(tag_values, tags.TESTS_FAILED),
        tests_errors=_int_tag(tag_values, tags.TESTS_ERRORS),
        targets=targets,
        region_status=status,
        location=region_names.normalize(str(data.get("location", ""))),
        replication_mode=str(publishing.get("replicationMode") or "Full"),
    )


def latest_of(versions: list[VersionInfo]) -> VersionInfo | None:
    """Azure's "latest": the highest version not excluded from latest."""
    eligible = [v for v in versions if not v.exclude_from_latest]
    return max(eligible, key=lambda v: v.version) if eligible else None


def with_latest(versions: list[VersionInfo]) -> list[VersionInfo]:
    """``versions`` with ``is_latest`` set on Azure's "latest" among them."""
    latest = latest_of(versions)
    if latest is None:
        return versions
    return [replace(v, is_latest=v.name == latest.name) for v in versions]


def with_tags(info: VersionInfo, values: Mapping[str, str]) -> VersionInfo:
    """``info`` as it is once its tags are ``values`` (what a Tags API write answered): the
    next step of a build carries this instead of reading the version again."""
    return replace(
        info,
        tags=dict(values),
        stage=values.get(tags.STAGE, ""),
        tests_passed=_int_tag(values, tags.TESTS_PASSED),
        tests_failed=_int_tag(values, tags.TESTS_FAILED),
        tests_errors=_int_tag(values, tags.TESTS_ERRORS),
    )


def replication_of(info: VersionInfo) -> ReplicationStatus:
    """The version's replication, region by region, with Azure's aggregated state."""
    states = {r.state for r in info.region_status}
    if not info.region_status:
        aggregated = "Unknown"
    elif "Failed" in states:
        aggregated = "Failed"
    elif states <= {"Completed"}:
        aggregated = "Completed"
    else:
        aggregated = "InProgress"
    return ReplicationStatus(info.name, aggregated, info.region_status)
