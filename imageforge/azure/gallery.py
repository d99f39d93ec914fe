"""The Compute Gallery side of an image: gallery, image definition, versions and their tags.

The gallery is the source of truth (docs/ARCHITECTURE.md): a version's tags carry its stage and
evidence; ``list_versions``/``get_version`` read them into ``VersionInfo``. Tags are written with
ARM's Tags API (``{id}/providers/Microsoft.Resources/tags/default``, operation Merge/Delete),
which changes only the named keys: two writers never lose each other's tags, and a version
can be tagged while it replicates.

``reserve_version`` (imageforge.azure.reservation) makes two concurrent builds of one image
choose different versions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imageforge import regions as region_names
from imageforge import tags
from imageforge.azure.arm import arm_call, as_json, error_code, is_not_found, parse_version_id
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError, NotFoundError, VersionError
from imageforge.versions import Version

#: Tests that ended in an error (not a failed assertion); the promote gate requires 0.
TESTS_ERRORS = tags.PREFIX + "tests-errors"
#: Where the test report of a version is kept (path or URL).
REPORT = tags.PREFIX + "report"
#: The regions whose replication failed (cleared when replication completes).
REPLICATION_FAILED = tags.PREFIX + "replication-failed"
CREATED_BY_VALUE = "imageforge"
ARCHITECTURE = "x64"


# ids --------------------------------------------------------------------------------------


def group_id(session: Session, group: str | None = None) -> str:
    name = group or session.site.resource_group
    return f"/subscriptions/{session.subscription_id}/resourceGroups/{name}"


def gallery_id(session: Session) -> str:
    return f"{group_id(session)}/providers/Microsoft.Compute/galleries/{session.site.gallery}"


def definition_id(session: Session, image: ImageDefinition) -> str:
    return f"{gallery_id(session)}/images/{image.gallery_image.name}"


def version_id(session: Session, image: ImageDefinition, version: str) -> str:
    return f"{definition_id(session, image)}/versions/{version}"


def _where(session: Session) -> str:
    return f"gallery {session.site.gallery} (resource group {session.site.resource_group})"


# the records ------------------------------------------------------------------------------


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
        tests_errors=_int_tag(tag_values, TESTS_ERRORS),
        targets=targets,
        region_status=status,
        location=region_names.normalize(str(data.get("location", ""))),
    )


def latest_of(versions: list[VersionInfo]) -> VersionInfo | None:
    """Azure's "latest": the highest version not excluded from latest."""
    eligible = [v for v in versions if not v.exclude_from_latest]
    return max(eligible, key=lambda v: v.version) if eligible else None


def _with_latest(versions: list[VersionInfo]) -> list[VersionInfo]:
    latest = latest_of(versions)
    if latest is None:
        return versions
    return [_replace(v, is_latest=v.name == latest.name) for v in versions]


def _replace(info: VersionInfo, **changes: Any) -> VersionInfo:
    from dataclasses import replace

    return replace(info, **changes)


# gallery and image definition -------------------------------------------------------------


def _base_tags(session: Session) -> dict[str, str]:
    return tags.merge(session.site.tags, {tags.CREATED_BY: CREATED_BY_VALUE})


def ensure_gallery(session: Session) -> str:
    """Create the resource group and gallery in ``site.location`` unless they exist."""
    site = session.site
    with arm_call(f"resource group {site.resource_group}", where=session.where):
        try:
            session.resource.resource_groups.get(site.resource_group)
        except Exception as err:
            if not is_not_found(err):
                raise
            session.resource.resource_groups.create_or_update(
                site.resource_group, {"location": site.location, "tags": _base_tags(session)}
            )
    with arm_call(f"gallery {site.gallery}", where=session.where):
        try:
            gallery = session.compute.galleries.get(site.resource_group, site.gallery)
        except Exception as err:
            if not is_not_found(err):
                raise
            gallery = session.compute.galleries.begin_create_or_update(
                site.resource_group,
                site.gallery,
                {
                    "location": site.location,
                    "tags": _base_tags(session),
                    "properties": {"description": "imageforge golden images"},
                },
            ).result()
    return str(as_json(gallery).get("id") or gallery_id(session))


def definition_body(session: Session, image: ImageDefinition) -> dict[str, Any]:
    """The image definition as the image file says it should be."""
    spec = image.gallery_image
    return {
        "location": session.site.location,
        "tags": tags.merge(_base_tags(session), {tags.IMAGE: image.name}),
        "properties": {
            "description": image.description,
            "osType": image.os_type,
            "osState": spec.os_state,
            "hyperVGeneration": spec.hyper_v_generation,
            "architecture": ARCHITECTURE,
            "identifier": {"publisher": spec.publisher, "offer": spec.offer, "sku": spec.sku},
            "features": [{"name": "SecurityType", "value": spec.security_type}],
        },
    }


def _immutable(props: Mapping[str, Any]) -> dict[str, str]:
    identifier = props.get("identifier") or {}
    features = {
        str(f.get("name", "")).lower(): str(f.get("value", ""))
        for f in props.get("features") or []
        if isinstance(f, Mapping)
    }
    return {
        "osType": str(props.get("osType", "")),
        "osState": str(props.get("osState", "")),
        "hyperVGeneration": str(props.get("hyperVGeneration") or "V1"),
        "architecture": str(props.get("architecture") or ARCHITECTURE),
        "identifier.publisher": str(identifier.get("publisher", "")),
        "identifier.offer": str(identifier.get("offer", "")),
        "identifier.sku": str(identifier.get("sku", "")),
        "features.SecurityType": features.get("securitytype", "Standard"),
    }


def check_definition(
    image: ImageDefinition, existing: Mapping[str, Any], wanted: Mapping[str, Any]
) -> None:
    """Refuse (ConfigError) when the gallery's definition differs from the file in what
    Azure cannot change after creation."""
    have = _immutable(existing.get("properties") or {})
    want = _immutable(wanted.get("properties") or {})
    for key, value in want.items():
        if have[key].lower() != value.lower():
            raise ConfigError(
                f"refusing to change gallery image {image.gallery_image.name}: {key} is "
                f"{have[key]!r} in the gallery but {value!r} in the image file "
                "(Azure cannot change it; use a new gallery image name)",
                path=str(image.path),
                key="gallery_image",
            )


def ensure_image_definition(session: Session, image: ImageDefinition) -> str:
    """Create the gallery image definition from the image file unless it exists; an existing
    one must match the file in everything Azure cannot change. Returns its id.

    An existing definition is never PUT again: a PUT replaces its tags, and the version
    reservations of running builds live there.
    """
    site = session.site
    name = image.gallery_image.name
    wanted = definition_body(session, image)
    what = f"gallery image {name} in {_where(session)}"
    with arm_call(what, where=session.where):
        try:
            existing = as_json(
                session.compute.gallery_images.get(site.resource_group, site.gallery, name)
            )
        except Exception as err:
            if not is_not_found(err):
                raise
            existing = None
            if error_code(err) in ("ParentResourceNotFound", "ResourceGroupNotFound"):
                ensure_gallery(session)
    if existing is not None:
        check_definition(image, existing, wanted)
        return str(existing.get("id") or definition_id(session, image))
    with arm_call(what, where=session.where):
        created = session.compute.gallery_images.begin_create_or_update(
            site.resource_group, site.gallery, name, wanted
        ).result()
    return str(as_json(created).get("id") or definition_id(session, image))


# versions ---------------------------------------------------------------------------------


def _definition_missing(session: Session, image: ImageDefinition) -> NotFoundError:
    return NotFoundError(
        f"gallery image {image.gallery_image.name} (image {image.name}) does not exist in "
        f"{_where(session)}: build a version first"
    )


def list_versions(
    session: Session, image: ImageDefinition, *, status: bool = False
) -> list[VersionInfo]:
    """Every version of the image, lowest first. ``status=True`` also reads each version's
    replication status (one more request per version)."""
    site = session.site
    name = image.gallery_image.name
    with arm_call(f"versions of gallery image {name}", where=session.where):
        try:
            items = [
                as_json(v)
                for v in session.compute.gallery_image_versions.list_by_gallery_image(
                    site.resource_group, site.gallery, name
                )
            ]
        except Exception as err:
            if is_not_found(err):
                raise _definition_missing(session, image) from None
            raise
    infos = []
    for data in items:
        try:
            info = version_info(data)
        except VersionError:
            continue  # not a Major.Minor.Patch name: not one of ours
        if status:
            info = get_version(session, image, info.name)
        infos.append(info)
    return _with_latest(sorted(infos, key=lambda v: v.version))


def _version_name(image: ImageDefinition, session: Session, version: str) -> str:
    """``version`` as a version name; a full version id must be this image's."""
    parts = parse_version_id(version) if version.strip().startswith("/") else None
    if version.strip().startswith("/") and parts is None:
        raise VersionError(f"{version!r} is not a gallery image version id")
    if parts is None:
        return str(Version.parse(version, where=f"image {image.name}: version"))
    name = image.gallery_image.name
    if (parts["image"].lower(), parts["gallery"].lower(), parts["rg"].lower()) != (
        name.lower(),
        session.site.gallery.lower(),
        session.site.resource_group.lower(),
    ):
        raise NotFoundError(
            f"version id {version} belongs to gallery image {parts['image']} in gallery "
            f"{parts['gallery']}, not to image {image.name} (gallery image {name} in "
            f"{_where(session)})"
        )
    return str(Version.parse(parts["version"], where=f"image {image.name}: version"))


def _owner_of(session: Session, image: ImageDefinition, version: str) -> str | None:
    """Which other gallery image of the gallery has ``version`` (for a better message)."""
    site = session.site
    try:
        others = [
            as_json(i).get("name", "")
            for i in session.compute.gallery_images.list_by_gallery(
                site.resource_group, site.gallery
            )
        ]
        for other in others:
            if other.lower() == image.gallery_image.name.lower():
                continue
            try:
                session.compute.gallery_image_versions.get(
                    site.resource_group, site.gallery, other, version
                )
                return str(other)
            except Exception:  # noqa: BLE001 - only looking for a hint
                continue
    except Exception:  # noqa: BLE001 - only looking for a hint
        return None
    return None


def get_version(session: Session, image: ImageDefinition, version: str) -> VersionInfo:
    """One version with its replication status; NotFoundError names image and version."""
    site = session.site
    name = image.gallery_image.name
    wanted = _version_name(image, session, version)
    try:
        with arm_call(f"version {wanted} of image {image.name}", where=session.where):
            data = as_json(
                session.compute.gallery_image_versions.get(
                    site.resource_group, site.gallery, name, wanted, expand="ReplicationStatus"
                )
            )
    except NotFoundError:
        with arm_call(f"gallery image {name}", where=session.where):
            try:
                session.compute.gallery_images.get(site.resource_group, site.gallery, name)
            except Exception as err:
                if is_not_found(err):
                    raise _definition_missing(session, image) from None
                raise
        owner = _owner_of(session, image, wanted)
        hint = f" ({wanted} is a version of gallery image {owner})" if owner else ""
        raise NotFoundError(
            f"image {image.name} has no version {wanted} in {_where(session)}{hint}"
        ) from None
    info = version_info(data)
    tagged = info.tags.get(tags.IMAGE)
    if tagged and tagged != image.name:
        raise AzureError(
            f"version {wanted} of gallery image {name} was built for image {tagged}, not "
            f"{image.name}: two image files use gallery image {name}"
        )
    return info


class GalleryVersionSource:
    """``VersionSource`` over the gallery: the existing versions of an image."""

    def __init__(
        self, session: Session, images: Mapping[str, ImageDefinition] | None = None
    ) -> None:
        self.session = session
        self.images = dict(images or {})

    def existing_versions(self, image_name: str) -> list[Version]:
        site = self.session.site
        gallery_image = (
            self.images[image_name].gallery_image.name if image_name in self.images else image_name
        )
        with arm_call(f"versions of gallery image {gallery_image}", where=self.session.where):
            try:
                items = list(
                    self.session.compute.gallery_image_versions.list_by_gallery_image(
                        site.resource_group, site.gallery, gallery_image
                    )
                )
            except Exception as err:
                if is_not_found(err):
                    return []
                raise
        found = []
        for item in items:
            try:
                found.append(Version.parse(str(as_json(item).get("name", ""))))
            except VersionError:
                continue
        return sorted(found)


def replication_status(session: Session, image: ImageDefinition, version: str) -> ReplicationStatus:
    """The version's replication, region by region."""
    info = get_version(session, image, version)
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


# tags -------------------------------------------------------------------------------------


def update_tags_at(
    session: Session,
    scope: str,
    updates: Mapping[str, object],
    *,
    current: Mapping[str, str] | None = None,
    what: str = "",
) -> dict[str, str]:
    """Apply ``updates`` (None removes) to the tags of ``scope`` with the Tags API.

    Merge and Delete touch only the named keys, so concurrent writers of other keys are never
    lost. ``current`` (the tags as last read) saves a read; the limits are checked on it.
    Returns the tags as ARM reports them afterwards.
    """
    api = session.resource.tags
    what = what or scope
    with arm_call(f"tags of {what}", where=session.where):
        if current is None:
            current = _tags_of(as_json(api.get_at_scope(scope)))
        tags.merge(current, updates)  # Azure's limits, names and values, checked up front
        sets = {name: tags.clip(value) for name, value in updates.items() if value is not None}
        deletes = {
            name: value
            for name, value in current.items()
            if name in updates and updates[name] is None
        }
        result: dict[str, str] | None = None
        if sets:
            result = _tags_of(
                as_json(
                    api.begin_update_at_scope(
                        scope, {"operation": "Merge", "properties": {"tags": sets}}
                    ).result()
                )
            )
        if deletes:
            result = _tags_of(
                as_json(
                    api.begin_update_at_scope(
                        scope, {"operation": "Delete", "properties": {"tags": deletes}}
                    ).result()
                )
            )
    return result if result is not None else dict(current)


def read_tags_at(session: Session, scope: str, *, what: str = "") -> dict[str, str]:
    with arm_call(f"tags of {what or scope}", where=session.where):
        return _tags_of(as_json(session.resource.tags.get_at_scope(scope)))


def _tags_of(data: Mapping[str, Any]) -> dict[str, str]:
    return dict(((data.get("properties") or {}).get("tags")) or {})


def set_version_tags(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    updates: Mapping[str, object],
) -> dict[str, str]:
    """Merge ``updates`` into a version's tags (``None`` removes a tag); returns the tags."""
    info = version if isinstance(version, VersionInfo) else get_version(session, image, version)
    return update_tags_at(
        session,
        info.id,
        updates,
        current=info.tags,
        what=f"version {info.name} of image {image.name}",
    )


def reserve_version(
    session: Session,
    image: ImageDefinition,
    *,
    scheme: str,
    build_id: str | None,
    requested: str | None,
    run_id: str,
    **options: Any,
) -> Any:
    """Reserve the version a build of ``image`` publishes (see imageforge.azure.reservation)."""
    from imageforge.azure.reservation import reserve

    return reserve(
        session,
        image,
        scheme=scheme,
        build_id=build_id,
        requested=requested,
        run_id=run_id,
        **options,
    )
