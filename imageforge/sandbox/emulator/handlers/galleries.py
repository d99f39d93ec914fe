"""Microsoft.Compute galleries and gallery image definitions (``galleries/{g}/images/{i}``).

Both are created, updated and deleted as long-running operations whose work is bookkeeping.
An image definition's osType, osState, hyperVGeneration and identifier cannot change once it
exists (PropertyChangeNotAllowed); a gallery with image definitions and a definition with
versions cannot be deleted (CannotDeleteResource).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from imageforge.sandbox.emulator.armerrors import (
    cannot_delete,
    invalid_parameter,
    property_change_not_allowed,
)
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, sharing
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Compute"
GALLERY_TYPE = "Microsoft.Compute/galleries"
IMAGE_TYPE = "Microsoft.Compute/galleries/images"
VERSION_TYPE = "Microsoft.Compute/galleries/images/versions"

_GALLERY_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?$")
_IMAGE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9])?$")
_GALLERY_READONLY = ("provisioningState", "identifier", "sharingStatus")
_IMAGE_READONLY = ("provisioningState",)
_IMAGE_FIXED = ("osType", "osState", "hyperVGeneration", "identifier")
OS_TYPES = ("Windows", "Linux")
OS_STATES = ("Generalized", "Specialized")
GENERATIONS = ("V1", "V2")


def gallery_id(req: ArmRequest) -> str:
    return common.provider_id(
        req.subscription,
        req.param("resourceGroupName"),
        PROVIDER,
        "galleries",
        req.param("galleryName"),
    )


def image_id(req: ArmRequest) -> str:
    return f"{gallery_id(req)}/images/{req.param('galleryImageName')}"


def require_gallery(em: Emulator, req: ArmRequest) -> Resource:
    return common.require(em, gallery_id(req), GALLERY_TYPE, req.param("resourceGroupName"))


def require_image(em: Emulator, req: ArmRequest) -> Resource:
    require_gallery_parent(em, req)
    return common.require(em, image_id(req), IMAGE_TYPE, req.param("resourceGroupName"))


def require_gallery_parent(em: Emulator, req: ArmRequest) -> Resource:
    return common.require_parent(em, gallery_id(req), req.param("resourceGroupName"))


# galleries --------------------------------------------------------------------------------


def put_gallery(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("galleryName")
    if not _GALLERY_NAME.match(name):
        raise invalid_parameter(
            f"The gallery name '{name}' is invalid: use up to 80 letters, digits, underscores "
            "and periods, not starting or ending with a period.",
            target="galleryName",
        )
    body = common.body_object(req)
    group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
    location = common.location_of(body, GALLERY_TYPE)
    props = common.drop(common.properties_of(body), *_GALLERY_READONLY)
    with em.store.lock:
        existing = em.store.get(gallery_id(req))
        if existing is not None:
            common.same_location(existing, location, GALLERY_TYPE)
            common.reject_if_busy(existing, f"gallery '{name}'")
            props = sharing.profile_on_write(existing.properties, props)
            res = existing
            res.body["tags"] = common.tags_of(body, res.body.get("tags"))
            res.body["properties"] = {**props, "identifier": existing.properties["identifier"]}
        else:
            rid = common.provider_id(
                req.subscription, group.body["name"], PROVIDER, "galleries", name
            )
            res = Resource(rid, GALLERY_TYPE, common.base_body(rid, GALLERY_TYPE, location, {}))
            res.body["tags"] = common.tags_of(body)
            props = sharing.profile_on_write(None, props)
            res.body["properties"] = {
                **props,
                "identifier": {"uniqueName": f"{req.subscription}-{name.upper()}"},
            }
        return common.put_with_operation(
            em, req, res, common.GALLERY, created=existing is None, render=_shown
        )


def _shown(res: Resource) -> dict[str, Any]:
    """A gallery as a write's answer shows it: like a plain GET (no sharing groups)."""
    return sharing.gallery_view(res.body, {})


def patch_gallery(em: Emulator, req: ArmRequest) -> ArmResponse:
    body = common.body_object(req)
    with em.store.lock:
        res = require_gallery(em, req)
        common.reject_if_busy(res, f"gallery '{res.body['name']}'")
        props = common.drop(common.properties_of(body), *_GALLERY_READONLY)
        res.properties.update(sharing.profile_on_write(res.properties, props))
        if "tags" in body:
            res.body["tags"] = common.tags_of(body)
        return common.put_with_operation(em, req, res, common.GALLERY, created=False, render=_shown)


def get_gallery(em: Emulator, req: ArmRequest) -> ArmResponse:
    """The gallery; its sharing groups only with ``$select``/``$expand`` (handlers.sharing)."""
    return ArmResponse(200, sharing.gallery_view(require_gallery(em, req).body, req.query))


def list_galleries(em: Emulator, req: ArmRequest) -> ArmResponse:
    group = req.params.get("resourceGroupName")
    if group:
        common.require_group(em, req.subscription, group)
        scope = common.rg_id(req.subscription, group)
    else:
        scope = f"/subscriptions/{req.subscription}"
    found = em.store.resources(GALLERY_TYPE, scope)
    return common.paginate(em, req, [_shown(r) for r in found])


def delete_gallery(em: Emulator, req: ArmRequest) -> ArmResponse:
    return common.delete_resource(
        em, req, gallery_id(req), "gallery", common.GALLERY, refuse=_HAS_DEFINITIONS
    )


def _refuse_nested(
    child_type: str, kind: str, children: str
) -> Callable[[Emulator, Resource], None]:
    """A DELETE check: CannotDeleteResource while the resource has ``child_type`` children."""

    def refuse(em: Emulator, res: Resource) -> None:
        if em.store.resources(child_type, res.id):
            raise cannot_delete(
                f"Can not delete resource before nested resources are deleted: {kind} "
                f"'{res.body['name']}' still has {children}."
            )

    return refuse


_HAS_DEFINITIONS = _refuse_nested(IMAGE_TYPE, "gallery", "image definitions")
_HAS_VERSIONS = _refuse_nested(VERSION_TYPE, "gallery image", "versions")


# image definitions ------------------------------------------------------------------------


def _check_definition(props: dict[str, Any]) -> None:
    prefix = "galleryImage.properties"
    if props.get("osType") not in OS_TYPES:
        raise invalid_parameter(
            f"osType must be one of {', '.join(OS_TYPES)}.", target=f"{prefix}.osType"
        )
    if props.get("osState") not in OS_STATES:
        raise invalid_parameter(
            f"osState must be one of {', '.join(OS_STATES)}.", target=f"{prefix}.osState"
        )
    if props.get("hyperVGeneration") not in GENERATIONS:
        raise invalid_parameter(
            f"hyperVGeneration must be one of {', '.join(GENERATIONS)}.",
            target=f"{prefix}.hyperVGeneration",
        )
    identifier = props.get("identifier")
    if not isinstance(identifier, dict) or not all(
        isinstance(identifier.get(k), str) and identifier.get(k)
        for k in ("publisher", "offer", "sku")
    ):
        raise invalid_parameter(
            "identifier needs non-empty publisher, offer and sku.", target=f"{prefix}.identifier"
        )


def _check_unchanged(existing: dict[str, Any], new: dict[str, Any]) -> None:
    for key in _IMAGE_FIXED:
        if key not in new:
            continue
        old_value, new_value = existing.get(key), new.get(key)
        if key == "identifier" and isinstance(old_value, dict) and isinstance(new_value, dict):
            same = all(
                str(old_value.get(k, "")).lower() == str(new_value.get(k, "")).lower()
                for k in ("publisher", "offer", "sku")
            )
        else:
            same = str(old_value).lower() == str(new_value).lower()
        if not same:
            raise property_change_not_allowed(f"galleryImage.properties.{key}")


def put_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("galleryImageName")
    if not _IMAGE_NAME.match(name):
        raise invalid_parameter(
            f"The gallery image name '{name}' is invalid: use up to 80 letters, digits, "
            "hyphens, underscores and periods.",
            target="galleryImageName",
        )
    body = common.body_object(req)
    with em.store.lock:
        gallery = require_gallery_parent(em, req)
        location = common.location_of(body, IMAGE_TYPE)
        _same_as_gallery(gallery, location)
        props = common.drop(common.properties_of(body), *_IMAGE_READONLY)
        props.setdefault("hyperVGeneration", "V1")
        props.setdefault("architecture", "x64")
        _check_definition(props)
        existing = em.store.get(image_id(req))
        if existing is not None:
            common.reject_if_busy(existing, f"gallery image '{existing.body['name']}'")
            _check_unchanged(existing.properties, props)
            res = existing
            res.body["properties"] = {
                **props,
                **{k: existing.properties[k] for k in _IMAGE_FIXED if k in existing.properties},
            }
            res.body["tags"] = common.tags_of(body, res.body.get("tags"))
        else:
            rid = f"{gallery.id}/images/{name}"
            res = Resource(rid, IMAGE_TYPE, common.base_body(rid, IMAGE_TYPE, location, {}))
            res.body["tags"] = common.tags_of(body)
            res.body["properties"] = props
        return common.put_with_operation(em, req, res, common.GALLERY, created=existing is None)


def _same_as_gallery(gallery: Resource, location: str) -> None:
    if gallery.body["location"] != location:
        raise invalid_parameter(
            f"The location '{location}' must be the gallery's location "
            f"'{gallery.body['location']}'.",
            target="location",
        )


def patch_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    body = common.body_object(req)
    with em.store.lock:
        res = require_image(em, req)
        common.reject_if_busy(res, f"gallery image '{res.body['name']}'")
        props = common.drop(common.properties_of(body), *_IMAGE_READONLY)
        _check_unchanged(res.properties, props)
        merged = copy.deepcopy(res.properties)
        merged.update({k: v for k, v in props.items() if k not in _IMAGE_FIXED})
        res.body["properties"] = merged
        if "tags" in body:
            res.body["tags"] = common.tags_of(body)
        return common.put_with_operation(em, req, res, common.GALLERY, created=False)


def get_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, require_image(em, req).body)


def list_images(em: Emulator, req: ArmRequest) -> ArmResponse:
    gallery = require_gallery(em, req)
    return common.paginate(em, req, [r.body for r in em.store.resources(IMAGE_TYPE, gallery.id)])


def delete_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        require_gallery_parent(em, req)
        return common.delete_resource(
            em, req, image_id(req), "gallery image", common.GALLERY, refuse=_HAS_VERSIONS
        )
