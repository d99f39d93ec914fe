"""Gallery image versions (``galleries/{g}/images/{i}/versions/{v}``): PUT, PATCH, GET, list,
DELETE, and Azure's "latest" version in a region.

PUT creates a version from a VM, another version or a managed image (``versionsource``), with
a publishing profile that ``versionspec`` validates; replication (``replication``) is the
long-running operation's work. The publishing region is the gallery's location. PATCH (and
PUT of an existing version) may change only target regions, replica counts,
excludeFromLatest, endOfLifeDate, tags and safetyProfile.allowDeletionOfReplicatedLocations.
GET with ``$expand=ReplicationStatus`` adds replicationStatus; lists page with ``nextLink``.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import invalid_parameter, not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import (
    common,
    galleries,
    replication,
    versionsource,
    versionspec,
)
from imageforge.sandbox.emulator.lro import utc_now
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Compute"
TYPE = galleries.VERSION_TYPE


def version_id(req: ArmRequest) -> str:
    return f"{galleries.image_id(req)}/versions/{req.param('galleryImageVersionName')}"


def _require_image_parent(em: Emulator, req: ArmRequest) -> Resource:
    group = req.param("resourceGroupName")
    galleries.require_gallery_parent(em, req)
    return common.require_parent(em, galleries.image_id(req), group)


def require_version(em: Emulator, req: ArmRequest) -> Resource:
    _require_image_parent(em, req)
    return common.require(em, version_id(req), TYPE, req.param("resourceGroupName"))


def render(res: Resource, *, expand: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(res.body)
    if expand and "replicationstatus" in expand.lower():
        body["properties"]["replicationStatus"] = replication.status(res)
    return body


# handlers ---------------------------------------------------------------------------------


def put_version(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("galleryImageVersionName")
    versionspec.parse_name(name)
    body = common.body_object(req)
    props = versionspec.clean_input(common.properties_of(body))
    with em.store.lock:
        image = _require_image_parent(em, req)
        existing = em.store.get(version_id(req))
        if existing is not None:
            return _update(em, req, existing, body, props, full=True)
        location = common.location_of(body, TYPE)
        gallery_location = image.body["location"]
        if location != gallery_location:
            raise invalid_parameter(
                f"The image version must be created in the gallery's region '{gallery_location}', "
                f"not '{location}'.",
                target="location",
            )
        publishing = versionspec.normalize_publishing(props.get("publishingProfile"), location)
        publishing["publishedDate"] = utc_now()
        safety = versionspec.normalize_safety(props.get("safetyProfile"))
        storage_given = props.get("storageProfile")
        echo, source = versionsource.resolve_source(em, storage_given, image, location)
        storage = copy.deepcopy(props["storageProfile"])
        storage["source"] = echo
        disk = storage.get("osDiskImage") if isinstance(storage.get("osDiskImage"), dict) else {}
        storage["osDiskImage"] = {"hostCaching": "ReadWrite", **disk, "sizeInGB": 30}
        storage.setdefault("dataDiskImages", [])
        safety["reportedForPolicyViolation"] = False
        rid = f"{image.id}/versions/{name}"
        res = Resource(rid, TYPE, common.base_body(rid, TYPE, location, common.tags_of(body)))
        extra = {
            k: v
            for k, v in props.items()
            if k not in ("publishingProfile", "storageProfile", "safetyProfile")
        }
        res.body["properties"] = {
            **extra,
            "publishingProfile": publishing,
            "storageProfile": storage,
            "safetyProfile": safety,
            "provisioningState": "Creating",
        }
        op_id = str(uuid.uuid4())
        res.internal = {
            "blob": uuid.uuid4().hex,
            "sourceRegion": location,
            "source": source,
            "captured": source["kind"] == "vm" or bool(source.get("captured")),
            "regions": {
                r: replication.pending_region() for r in versionspec.target_region_names(publishing)
            },
            "op": op_id,
            "osType": image.properties["osType"],
            "hyperVGeneration": image.properties.get("hyperVGeneration", "V1"),
        }
        return _replicate(em, req, res, status=201)


def patch_version(em: Emulator, req: ArmRequest) -> ArmResponse:
    body = common.body_object(req)
    props = versionspec.clean_input(common.properties_of(body))
    if "storageProfile" not in props:
        # GalleryImageVersionUpdate.properties is GalleryImageVersionProperties, which
        # requires storageProfile (GalleryRP.json 2025-03-03 and 2025-12-03); an empty one
        # (example GalleryImageVersion_Update_WithoutSourceId) changes nothing. The message is
        # Compute's usual one for a missing required parameter (from memory, not the spec).
        raise invalid_parameter(
            "Required parameter 'storageProfile' is missing (null).",
            target="galleryImageVersion.properties.storageProfile",
        )
    with em.store.lock:
        res = require_version(em, req)
        return _update(em, req, res, body, props, full=False)


def _update(
    em: Emulator,
    req: ArmRequest,
    res: Resource,
    body: dict[str, Any],
    props: dict[str, Any],
    *,
    full: bool,
) -> ArmResponse:
    common.reject_if_busy(res, f"gallery image version '{res.body['name']}'")
    versionspec.changed_location(body.get("location"), res.body["location"])
    versionspec.check_fixed(props, res.properties)
    old = res.properties["publishingProfile"]
    given = props.get("publishingProfile") or {}
    merged = {k: v for k, v in old.items() if k not in versionspec.UPDATABLE_PUBLISHING}
    merged.pop("publishedDate", None)
    if not full:
        merged.update({k: v for k, v in old.items() if k in versionspec.UPDATABLE_PUBLISHING})
    merged.update({k: v for k, v in given.items() if k in versionspec.UPDATABLE_PUBLISHING})
    publishing = versionspec.normalize_publishing(merged, res.internal["sourceRegion"])
    publishing["publishedDate"] = old["publishedDate"]
    safety = copy.deepcopy(res.properties.get("safetyProfile", {}))
    given_safety = props.get("safetyProfile") or {}
    for key in versionspec.UPDATABLE_SAFETY:
        if key in given_safety:
            safety[key] = given_safety[key]
    safety = versionspec.normalize_safety(safety)

    before = versionspec.target_region_names(old)
    after = versionspec.target_region_names(publishing)
    removed = [r for r in before if r not in after]
    if removed and not safety["allowDeletionOfReplicatedLocations"]:
        raise not_allowed(
            f"Removing regions ({', '.join(regions.display_name(r) for r in removed)}) from "
            f"gallery image version '{res.body['name']}' is not allowed: its "
            "safetyProfile.allowDeletionOfReplicatedLocations is false."
        )
    states = res.internal["regions"]
    for region in removed:
        states.pop(region, None)
    res.internal["remove"] = res.internal.get("remove", []) + removed
    for region in after:
        if states.get(region, {}).get("state") in (None, "Failed", "Unknown"):
            states[region] = replication.pending_region()
    res.properties["publishingProfile"] = publishing
    res.properties["safetyProfile"] = safety
    if full or "tags" in body:
        res.body["tags"] = common.tags_of(body)
    res.properties["provisioningState"] = "Updating"
    res.internal["op"] = str(uuid.uuid4())
    return _replicate(em, req, res, status=200)


def _replicate(em: Emulator, req: ArmRequest, res: Resource, *, status: int) -> ArmResponse:
    """Store ``res`` and answer with its operation ``internal["op"]``, whose work is the
    replication worker (capture, copies to pending regions, removal of dropped ones)."""
    em.store.put(res)
    return em.ops.start(
        req,
        provider=PROVIDER,
        location=res.body["location"],
        resource_id=res.id,
        work=replication.worker(em, res.id),
        on_failure=replication.on_failure(em, res.id),
        status=status,
        body=render(res),
        style="gallery",
        op_id=res.internal["op"],
    )


def get_version(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, render(require_version(em, req), expand=req.query.get("$expand")))


def list_versions(em: Emulator, req: ArmRequest) -> ArmResponse:
    group = req.param("resourceGroupName")
    galleries.require_gallery_parent(em, req)
    image = common.require(em, galleries.image_id(req), galleries.IMAGE_TYPE, group)
    return common.paginate(em, req, [render(r) for r in em.store.resources(TYPE, image.id)])


def delete_version(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        _require_image_parent(em, req)
        return common.delete_resource(
            em, req, version_id(req), "gallery image version", common.GALLERY, cleanup=remove_images
        )


def remove_images(em: Emulator, res: Resource) -> None:
    """Delete every regional copy of a version's image."""
    blob = res.internal.get("blob")
    if not blob:
        return
    for region in set(res.internal.get("regions", {})) | set(res.internal.get("remove", [])):
        em.backend.remove_image(em.blob_dir(region, blob))


# latest -----------------------------------------------------------------------------------


def latest_in_region(em: Emulator, image: Resource, region: str) -> Resource | None:
    """Azure's "latest": the highest version not excluded from latest (globally or in this
    region) that is replicated to ``region``."""
    best: tuple[tuple[int, int, int], Resource] | None = None
    for res in em.store.resources(TYPE, image.id):
        publishing = res.properties.get("publishingProfile", {})
        if publishing.get("excludeFromLatest"):
            continue
        target = next(
            (
                t
                for t in publishing.get("targetRegions", [])
                if regions.normalize(t["name"]) == region
            ),
            None,
        )
        if target is None or target.get("excludeFromLatest"):
            continue
        if res.internal.get("regions", {}).get(region, {}).get("state") != "Completed":
            continue
        key = versionspec.parse_name(res.body["name"])
        if best is None or key > best[0]:
            best = (key, res)
    return best[1] if best else None
