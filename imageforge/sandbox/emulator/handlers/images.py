"""Managed images (``Microsoft.Compute/images``): PUT, GET, DELETE, list.

Packer < 1.7 can publish to a gallery only through a managed image, so the sandbox serves
them. PUT creates an image, as a long-running operation (201 and the compute monitor headers,
like a VM), from

- ``properties.sourceVirtualMachine.id``: a generalized VM of the image's region. Its root
  filesystem is captured through the machine backend into the region's image store, so a
  gallery image version created from the image (``storageProfile.source.id``) can boot;
- ``properties.storageProfile.osDisk`` (a managed disk, snapshot or blob URI): recorded only,
  since the sandbox holds no disks; a version created from such an image cannot boot.

Azure derives osType, osState and hyperVGeneration from a source VM (a hyperVGeneration that
contradicts the VM is refused); from a disk the caller names them (hyperVGeneration defaults
to V1). An existing image keeps its source: PUT may change only its tags. DELETE answers 202
with the compute monitors and removes the captured copy (a version already created from the
image keeps its own); a missing image answers 204 as ARM does.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from imageforge.sandbox.emulator.armerrors import (
    ArmError,
    invalid_parameter,
    not_allowed,
    property_change_not_allowed,
)
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Compute"
TYPE = "Microsoft.Compute/images"
VM_TYPE = "Microsoft.Compute/virtualMachines"
OS_TYPES = ("Windows", "Linux")
OS_STATES = ("Generalized", "Specialized")
GENERATIONS = ("V1", "V2")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_READONLY = ("provisioningState",)
_OS_DISK = "properties.storageProfile.osDisk"


def image_id(req: ArmRequest) -> str:
    return common.provider_id(
        req.subscription, req.param("resourceGroupName"), PROVIDER, "images",
        req.param("imageName"),
    )  # fmt: skip


def require_image(em: Emulator, req: ArmRequest) -> Resource:
    return common.require(em, image_id(req), TYPE, req.param("resourceGroupName"))


# sources ----------------------------------------------------------------------------------


def _choice(value: Any, allowed: tuple[str, ...], target: str) -> str:
    """``value`` spelled as Azure spells it (ARM enums are case-insensitive on input)."""
    for option in allowed:
        if isinstance(value, str) and value.lower() == option.lower():
            return option
    raise invalid_parameter(
        f"The value '{value}' of {target} is invalid: use one of {', '.join(allowed)}.",
        target=target,
    )


def _from_vm(
    em: Emulator, source: Any, location: str, generation: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(storageProfile, internal facts) of an image captured from a sandbox VM."""
    vm_id = source.get("id") if isinstance(source, dict) else None
    target = "properties.sourceVirtualMachine.id"
    if not isinstance(vm_id, str) or not vm_id:
        raise invalid_parameter("sourceVirtualMachine needs the id of a virtual machine.", target)
    vm = em.store.get(vm_id)
    if vm is None or vm.type.lower() != VM_TYPE.lower():
        raise ArmError(
            404, "NotFound", f"The source virtual machine '{vm_id}' was not found.", target=target
        )
    name = vm.body["name"]
    if vm.body["location"] != location:
        raise invalid_parameter(
            f"The source virtual machine '{name}' is in '{vm.body['location']}'; the image must "
            f"be created in the same region, not in '{location}'.",
            target=target,
        )
    if vm.properties.get("provisioningState") != "Succeeded":
        raise invalid_parameter(
            f"The source virtual machine '{name}' is "
            f"{vm.properties.get('provisioningState')}; it must be Succeeded.",
            target=target,
        )
    facts = vm.internal
    if not facts.get("generalized"):
        raise not_allowed(
            f"The operation 'Create Image' requires the Virtual Machine '{name}' to be Generalized."
        )
    vm_generation = facts.get("hyperVGeneration") or "V1"
    if (
        generation is not None
        and _choice(generation, GENERATIONS, "properties.hyperVGeneration") != vm_generation
    ):
        raise invalid_parameter(
            f"The hyperVGeneration '{generation}' does not match the Hyper-V generation of the "
            f"source virtual machine '{name}' ({vm_generation}).",
            target="properties.hyperVGeneration",
        )
    disk = vm.properties.get("storageProfile", {}).get("osDisk", {})
    managed = disk.get("managedDisk") or {}
    os_disk = {
        "osType": facts["osType"],
        "osState": "Generalized",
        "managedDisk": {"id": managed.get("id")},
        "caching": disk.get("caching", "ReadWrite"),
        "storageAccountType": managed.get("storageAccountType", "Premium_LRS"),
        "diskSizeGB": disk.get("diskSizeGB", 30),
    }
    internal = {
        "sourceVm": vm.id,
        "vmKey": facts["vmKey"],
        "osType": facts["osType"],
        "osState": "Generalized",
        "hyperVGeneration": vm_generation,
    }
    return os_disk, internal


def _from_disk(os_disk: Any, generation: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(storageProfile.osDisk, internal facts) of an image recorded from a disk or blob."""
    if not isinstance(os_disk, dict):
        raise invalid_parameter(
            "The image needs a source: give properties.sourceVirtualMachine or "
            "properties.storageProfile.osDisk.",
            target="properties",
        )
    disk = copy.deepcopy(os_disk)
    disk["osType"] = _choice(disk.get("osType"), OS_TYPES, f"{_OS_DISK}.osType")
    disk["osState"] = _choice(disk.get("osState"), OS_STATES, f"{_OS_DISK}.osState")
    sources = [
        key for key in ("blobUri", "managedDisk", "snapshot") if disk.get(key) not in (None, "", {})
    ]
    if len(sources) != 1:
        raise invalid_parameter(
            "The OS disk of an image needs exactly one of blobUri, managedDisk.id and snapshot.id.",
            target=_OS_DISK,
        )
    for key in ("managedDisk", "snapshot"):
        if key in sources and not (isinstance(disk[key], dict) and disk[key].get("id")):
            raise invalid_parameter(f"{key} needs an id.", target=f"{_OS_DISK}.{key}.id")
    disk.setdefault("caching", "ReadWrite")
    chosen = "V1" if generation is None else generation
    internal = {
        "osType": disk["osType"],
        "osState": disk["osState"],
        "hyperVGeneration": _choice(chosen, GENERATIONS, "properties.hyperVGeneration"),
    }
    return disk, internal


# handlers ---------------------------------------------------------------------------------


def put_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("imageName")
    if not _NAME.match(name):
        raise invalid_parameter(
            f"The image name '{name}' is invalid: use up to 80 letters, digits, underscores, "
            "periods and hyphens, starting with a letter or digit and ending with a letter, "
            "digit or underscore.",
            target="imageName",
        )
    body = common.body_object(req)
    props = common.drop(common.properties_of(body), *_READONLY)
    with em.store.lock:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        location = common.location_of(body, TYPE)
        existing = em.store.get(image_id(req))
        if existing is not None:
            return _update(em, req, existing, body, props, location)
        storage = props.get("storageProfile") or {}
        if not isinstance(storage, dict):
            raise invalid_parameter(
                "storageProfile must be an object.", target="properties.storageProfile"
            )
        generation = props.get("hyperVGeneration")
        source_vm = props.get("sourceVirtualMachine")
        if source_vm is not None:
            if storage.get("osDisk") is not None:
                raise invalid_parameter(
                    "Give either sourceVirtualMachine or storageProfile.osDisk, not both.",
                    target="properties.sourceVirtualMachine",
                )
            os_disk, internal = _from_vm(em, source_vm, location, generation)
            internal["blob"] = uuid.uuid4().hex
        else:
            os_disk, internal = _from_disk(storage.get("osDisk"), generation)
        internal["captured"] = "blob" in internal
        rid = common.provider_id(req.subscription, group.body["name"], PROVIDER, "images", name)
        res = Resource(rid, TYPE, common.base_body(rid, TYPE, location, common.tags_of(body)))
        properties: dict[str, Any] = {}
        if source_vm is not None:
            properties["sourceVirtualMachine"] = {"id": internal["sourceVm"]}
        properties["storageProfile"] = {
            "osDisk": os_disk,
            "dataDisks": copy.deepcopy(storage.get("dataDisks") or []),
            "zoneResilient": bool(storage.get("zoneResilient", False)),
        }
        properties["provisioningState"] = "Creating"
        properties["hyperVGeneration"] = internal["hyperVGeneration"]
        res.body["properties"] = properties
        res.internal = internal
        em.store.put(res)

        def capture(_op_id: str) -> None:
            if internal["captured"]:
                dest = em.blob_dir(location, internal["blob"])
                dest.mkdir(parents=True, exist_ok=True)
                em.backend.capture(internal["vmKey"], dest)
            common.set_state(em, rid, "Succeeded")

        return em.ops.start(
            req,
            provider=PROVIDER,
            location=location,
            resource_id=rid,
            work=capture,
            on_failure=common.failure_handler(em, rid),
            status=201,
            body=copy.deepcopy(res.body),
        )


def _update(
    em: Emulator,
    req: ArmRequest,
    res: Resource,
    body: dict[str, Any],
    props: dict[str, Any],
    location: str,
) -> ArmResponse:
    """PUT of an existing image: the same source (or none given); only tags change."""
    common.same_location(res, location, TYPE)
    common.reject_if_busy(res, f"image '{res.body['name']}'")
    given_vm = props.get("sourceVirtualMachine")
    current_vm = res.properties.get("sourceVirtualMachine")
    if given_vm is not None and (
        not isinstance(given_vm, dict)
        or current_vm is None
        or str(given_vm.get("id", "")).lower() != current_vm["id"].lower()
    ):
        raise property_change_not_allowed("sourceVirtualMachine")
    given_disk = (props.get("storageProfile") or {}).get("osDisk")
    if given_disk is not None and current_vm is None:
        current = res.properties["storageProfile"]["osDisk"]
        for key in ("blobUri", "managedDisk", "snapshot", "osType", "osState"):
            if key in given_disk and str(given_disk[key]).lower() != str(current.get(key)).lower():
                raise property_change_not_allowed(f"storageProfile.osDisk.{key}")
    given_generation = props.get("hyperVGeneration")
    if given_generation is not None and (
        str(given_generation).upper() != res.properties["hyperVGeneration"]
    ):
        raise property_change_not_allowed("hyperVGeneration")
    if "tags" in body:
        res.body["tags"] = common.tags_of(body)
    return common.put_with_operation(em, req, res, common.COMPUTE, created=False)


def get_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, require_image(em, req).body)


def list_images(em: Emulator, req: ArmRequest) -> ArmResponse:
    group = req.params.get("resourceGroupName")
    if group:
        scope = common.require_group(em, req.subscription, group).id
    else:
        scope = f"/subscriptions/{req.subscription}"
    return common.paginate(em, req, [r.body for r in em.store.resources(TYPE, scope)])


def delete_image(em: Emulator, req: ArmRequest) -> ArmResponse:
    return common.delete_resource(
        em, req, image_id(req), "image", common.COMPUTE, cleanup=remove_blob
    )


def remove_blob(em: Emulator, res: Resource) -> None:
    """Delete the captured copy of an image (versions created from it keep their own)."""
    blob = res.internal.get("blob")
    if blob:
        em.backend.remove_image(em.blob_dir(res.body["location"], blob))
