"""The Compute Gallery's REST calls: gallery, image definition, versions and their tags.

Every call imageforge makes on a gallery, a definition or a version is here (the Tags API
itself is azure/tagsapi.py, the records read from the answers azure/records.py). The gallery is
the source of truth (docs/ARCHITECTURE.md): a version's tags carry its stage and evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from imageforge import tags
from imageforge.azure import tagsapi
from imageforge.azure.arm import arm_call, as_json, error_code, is_not_found, parse_version_id
from imageforge.azure.clients import Session
from imageforge.azure.definition import base_tags, check_definition, definition_body
from imageforge.azure.ids import definition_id, gallery_id, where
from imageforge.azure.records import VersionInfo, version_info, with_latest, with_tags
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, NotFoundError, VersionError
from imageforge.versions import Version

# gallery and image definition -------------------------------------------------------------


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
                site.resource_group, {"location": site.location, "tags": base_tags(session.site)}
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
                    "tags": base_tags(session.site),
                    "properties": {"description": "imageforge golden images"},
                },
            ).result()
    return str(as_json(gallery).get("id") or gallery_id(session))


def ensure_image_definition(session: Session, image: ImageDefinition) -> str:
    """Create the gallery image definition from the image file unless it exists; an existing
    one must match the file in everything Azure cannot change. Returns its id.

    An existing definition is never PUT again: a PUT replaces its tags, and the version
    reservations of running builds live there.
    """
    site = session.site
    name = image.gallery_image.name
    wanted = definition_body(session, image)
    what = f"gallery image {name} in {where(session)}"
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
        f"{where(session)}: build a version first"
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
    return with_latest(sorted(infos, key=lambda v: v.version))


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
            f"{where(session)})"
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
            f"image {image.name} has no version {wanted} in {where(session)}{hint}"
        ) from None
    info = version_info(data)
    tagged = info.tags.get(tags.IMAGE)
    if tagged and tagged != image.name:
        raise AzureError(
            f"version {wanted} of gallery image {name} was built for image {tagged}, not "
            f"{image.name}: two image files use gallery image {name}"
        )
    return info


def version_names(session: Session, gallery_image: str) -> list[Version]:
    """The versions a gallery image has, lowest first (none when it does not exist yet); names
    that are not Major.Minor.Patch are not imageforge's and left out."""
    site = session.site
    with arm_call(f"versions of gallery image {gallery_image}", where=session.where):
        try:
            items = list(
                session.compute.gallery_image_versions.list_by_gallery_image(
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


def version_exists(session: Session, image: ImageDefinition, version: str) -> bool:
    """Whether the version exists (one GET, without its replication status)."""
    site = session.site
    with arm_call(f"version {version} of image {image.name}", where=session.where):
        try:
            session.compute.gallery_image_versions.get(
                site.resource_group, site.gallery, image.gallery_image.name, version
            )
        except Exception as err:
            if is_not_found(err):
                return False
            raise
    return True


class GalleryVersionSource:
    """``VersionSource`` over the gallery: the existing versions of an image."""

    def __init__(
        self, session: Session, images: Mapping[str, ImageDefinition] | None = None
    ) -> None:
        self.session = session
        self.images = dict(images or {})

    def existing_versions(self, image_name: str) -> list[Version]:
        image = self.images.get(image_name)
        return version_names(self.session, image.gallery_image.name if image else image_name)


# changing versions -----------------------------------------------------------------------


def read_version(
    session: Session, image: ImageDefinition, version: str | VersionInfo
) -> VersionInfo:
    """``version`` as a record: the one handed over as it is, a name or id read (get_version)."""
    return version if isinstance(version, VersionInfo) else get_version(session, image, version)


def tag_version(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    updates: Mapping[str, object],
) -> VersionInfo:
    """Merge ``updates`` into a version's tags (``None`` removes a tag); returns the version as
    it is afterwards. Handed the version as last read, its tags save a read."""
    info = read_version(session, image, version)
    what = f"version {info.name} of image {image.name}"
    values = tagsapi.update_at(session, info.id, updates, current=info.tags, what=what)
    return with_tags(info, values)


def set_version_tags(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    updates: Mapping[str, object],
) -> dict[str, str]:
    """``tag_version``, answering the tags afterwards."""
    return dict(tag_version(session, image, version, updates).tags)


def create_version(
    session: Session, image: ImageDefinition, version: str, body: dict[str, Any]
) -> VersionInfo:
    """PUT a new version and wait for it; the version as the operation answered it."""
    site = session.site
    with arm_call(f"publishing version {version} of image {image.name}", where=session.where):
        created = session.compute.gallery_image_versions.begin_create_or_update(
            site.resource_group, site.gallery, image.gallery_image.name, version, body
        ).result()
    return version_info(as_json(created))


def begin_update(
    session: Session, image: ImageDefinition, version: str, body: dict[str, Any]
) -> Any:
    """Start a PATCH of the version; returns its poller. GalleryRP's GalleryImageVersionUpdate
    reuses the version's properties model, whose only required member is ``storageProfile``
    (GalleryRP.json, stable/2025-03-03 and 2025-12-03); its example
    GalleryImageVersion_Update_WithoutSourceId sends it empty, which changes nothing. So every
    PATCH carries ``storageProfile: {}``."""
    site = session.site
    props = dict(body.get("properties") or {})
    props.setdefault("storageProfile", {})
    return session.compute.gallery_image_versions.begin_update(
        site.resource_group,
        site.gallery,
        image.gallery_image.name,
        version,
        {**body, "properties": props},
    )


def update_version(
    session: Session, image: ImageDefinition, info: VersionInfo, body: dict[str, Any]
) -> VersionInfo:
    """PATCH a version and wait for the operation (ARM polling); the version afterwards."""
    with arm_call(f"updating image {image.name} version {info.name}", where=session.where):
        return version_info(as_json(begin_update(session, image, info.name, body).result()))


def delete_versions(
    session: Session, image: ImageDefinition, names: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Delete versions, all at once; (deleted names, one error message per failure)."""
    site = session.site
    ops = []
    with arm_call(f"deleting versions of image {image.name}", where=session.where):
        for name in names:
            poller = session.compute.gallery_image_versions.begin_delete(
                site.resource_group, site.gallery, image.gallery_image.name, name
            )
            ops.append((name, poller))
    deleted, failures = [], []
    for name, poller in ops:
        try:
            with arm_call(f"deleting image {image.name} version {name}", where=session.where):
                poller.result()
            deleted.append(name)
        except AzureError as err:
            failures.append(str(err))
    return deleted, failures
