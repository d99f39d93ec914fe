"""Gallery image versions (``galleries/{g}/images/{i}/versions/{v}``).

PUT creates a version from ``storageProfile.source.virtualMachineId`` (a generalized VM of the
gallery's region, captured through the backend), from another gallery image version id, or
from a managed image id (``storageProfile.source.id``, an image of the gallery's region that
must exist, as in Azure; an image captured from a sandbox VM is copied, so the version boots,
one recorded from a disk is recorded only).
The publishing region is the gallery's location. PATCH (and PUT of an existing version) may
change only target regions, replica counts, excludeFromLatest, endOfLifeDate, tags and
safetyProfile.allowDeletionOfReplicatedLocations. GET with ``$expand=ReplicationStatus`` adds
replicationStatus; lists page with ``nextLink``.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter, not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import (
    common,
    galleries,
    images,
    replication,
    versionspec,
)
from imageforge.sandbox.emulator.lro import utc_now
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Compute"
TYPE = galleries.VERSION_TYPE
_SOURCE = "galleryImageVersion.properties.storageProfile.source"


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


# sources ----------------------------------------------------------------------------------


def _resolve_source(
    em: Emulator, storage: Any, image: Resource, location: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what storageProfile echoes, what the worker needs) for the version's source."""
    if not isinstance(storage, dict) or not isinstance(storage.get("source"), dict):
        raise invalid_parameter(
            "storageProfile.source is required: give virtualMachineId or id.", target=_SOURCE
        )
    source = copy.deepcopy(storage["source"])
    vm_id = source.get("virtualMachineId")
    other_id = source.get("id")
    if vm_id and other_id:
        raise invalid_parameter("Give only one of source.virtualMachineId and source.id.", _SOURCE)
    if (
        not vm_id
        and isinstance(other_id, str)
        and "/providers/microsoft.compute/virtualmachines/" in other_id.lower()
    ):
        vm_id = other_id
    if vm_id:
        return source, _vm_source(em, str(vm_id), image, location)
    if not isinstance(other_id, str) or not other_id:
        raise invalid_parameter(
            "storageProfile.source is required: give virtualMachineId or id.", target=_SOURCE
        )
    lowered = other_id.lower()
    if "/providers/microsoft.compute/galleries/" in lowered and "/versions/" in lowered:
        return source, _version_source(em, other_id, image, location)
    if "/providers/microsoft.compute/images/" in lowered:
        return source, _managed_image_source(em, other_id, image, location)
    raise invalid_parameter(
        f"The source '{other_id}' is not a virtual machine, gallery image version or managed "
        "image id.",
        target=f"{_SOURCE}.id",
    )


def _vm_source(em: Emulator, vm_id: str, image: Resource, location: str) -> dict[str, Any]:
    vm = em.store.get(vm_id)
    target = f"{_SOURCE}.virtualMachineId"
    if vm is None or vm.type.lower() != "microsoft.compute/virtualmachines":
        raise ArmError(
            404, "NotFound", f"The source virtual machine '{vm_id}' was not found.", target=target
        )
    if vm.properties.get("provisioningState") != "Succeeded":
        raise invalid_parameter(
            f"The source virtual machine '{vm.body['name']}' is "
            f"{vm.properties.get('provisioningState')}; it must be Succeeded.",
            target=target,
        )
    if vm.body["location"] != location:
        raise invalid_parameter(
            f"The source virtual machine '{vm.body['name']}' is in '{vm.body['location']}'; "
            f"it must be in the image version's region '{location}'.",
            target=target,
        )
    facts = vm.internal
    _match_definition(
        image,
        os_type=facts["osType"],
        os_state="Generalized" if facts.get("generalized") else "Specialized",
        generation=facts["hyperVGeneration"],
        what=f"source virtual machine '{vm.body['name']}'",
    )
    return {"kind": "vm", "vmId": vm.id, "vmKey": facts["vmKey"]}


def _version_source(em: Emulator, source_id: str, image: Resource, location: str) -> dict[str, Any]:
    other = em.store.get(source_id)
    if other is None or other.type.lower() != TYPE.lower():
        raise ArmError(
            404,
            "NotFound",
            f"The source image version '{source_id}' was not found.",
            target=f"{_SOURCE}.id",
        )
    state = other.internal.get("regions", {}).get(location, {}).get("state")
    if state != "Completed":
        raise invalid_parameter(
            f"The source image version '{source_id}' is not replicated to '{location}'.",
            target=f"{_SOURCE}.id",
        )
    parent = em.store.get(source_id.rsplit("/versions/", 1)[0])
    if parent is not None:
        _match_definition(
            image,
            os_type=parent.properties["osType"],
            os_state=parent.properties["osState"],
            generation=parent.properties.get("hyperVGeneration", "V1"),
            what=f"source image version '{other.body['name']}'",
        )
    return {
        "kind": "version",
        "id": other.id,
        "blob": other.internal["blob"],
        "captured": other.internal.get("captured", True),
    }


def _managed_image_source(
    em: Emulator, source_id: str, image: Resource, location: str
) -> dict[str, Any]:
    target = f"{_SOURCE}.id"
    managed = em.store.get(source_id)
    if managed is None or managed.type.lower() != images.TYPE.lower():
        raise ArmError(
            404, "NotFound", f"The source managed image '{source_id}' was not found.", target=target
        )
    name = managed.body["name"]
    if managed.properties.get("provisioningState") != "Succeeded":
        raise invalid_parameter(
            f"The source managed image '{name}' is "
            f"{managed.properties.get('provisioningState')}; it must be Succeeded.",
            target=target,
        )
    if managed.body["location"] != location:
        raise invalid_parameter(
            f"The source managed image '{name}' is in '{managed.body['location']}'; it must be "
            f"in the image version's region '{location}'.",
            target=target,
        )
    facts = managed.internal
    _match_definition(
        image,
        os_type=facts["osType"],
        os_state=facts["osState"],
        generation=facts["hyperVGeneration"],
        what=f"source managed image '{name}'",
    )
    return {
        "kind": "managed-image",
        "id": managed.id,
        "blob": facts.get("blob"),
        "captured": bool(facts.get("captured")),
    }


def _match_definition(
    image: Resource, *, os_type: str, os_state: str, generation: str, what: str
) -> None:
    props = image.properties
    name = image.body["name"]
    if os_type.lower() != props["osType"].lower():
        raise invalid_parameter(
            f"The OS type of the {what} ({os_type}) does not match the osType of gallery image "
            f"'{name}' ({props['osType']}).",
            target=_SOURCE,
        )
    if os_state.lower() != props["osState"].lower():
        raise invalid_parameter(
            f"The {what} is {os_state}, but gallery image '{name}' has osState "
            f"{props['osState']}"
            + (": generalize the VM first." if os_state == "Specialized" else "."),
            target=_SOURCE,
        )
    wanted = props.get("hyperVGeneration", "V1")
    if generation.upper() != wanted.upper():
        raise invalid_parameter(
            f"The Hyper-V generation of the {what} ({generation}) does not match the "
            f"hyperVGeneration of gallery image '{name}' ({wanted}).",
            target=_SOURCE,
        )


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
        echo, source = _resolve_source(em, props.get("storageProfile"), image, location)
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
        em.store.put(res)
        return em.ops.start(
            req,
            provider=PROVIDER,
            location=location,
            resource_id=rid,
            work=replication.worker(em, rid),
            on_failure=replication.on_failure(em, rid),
            status=201,
            body=render(res),
            style="gallery",
            op_id=op_id,
        )


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
    op_id = str(uuid.uuid4())
    res.internal["op"] = op_id
    em.store.put(res)
    return em.ops.start(
        req,
        provider=PROVIDER,
        location=res.body["location"],
        resource_id=res.id,
        work=replication.worker(em, res.id),
        on_failure=replication.on_failure(em, res.id),
        status=200,
        body=render(res),
        style="gallery",
        op_id=op_id,
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
