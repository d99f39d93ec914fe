"""Where a gallery image version comes from: its ``storageProfile.source``, checked as Azure does.

- ``virtualMachineId`` (or an ``id`` that names a VM): a Succeeded VM of the gallery's region,
  captured through the backend; generalized for a Generalized image definition;
- ``id`` of another gallery image version replicated (Completed) to that region;
- ``id`` of a managed image of that region (Succeeded): one captured from a sandbox VM is
  copied, so the version boots, one recorded from a disk is recorded only.

The source's OS type, OS state and Hyper-V generation must match the image definition's.
``resolve_source`` answers what ``storageProfile.source`` echoes and what the replication
worker needs to make the version's first copy.
"""

from __future__ import annotations

import copy
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import galleries, images
from imageforge.sandbox.emulator.store import Resource

VM_TYPE = "Microsoft.Compute/virtualMachines"
_SOURCE = "galleryImageVersion.properties.storageProfile.source"


def resolve_source(
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


def _stored(em: Emulator, source_id: str, type_name: str, noun: str, target: str) -> Resource:
    """The source resource, or 404 NotFound for ``the source <noun> '<id>'``."""
    found = em.store.get(source_id)
    if found is None or found.type.lower() != type_name.lower():
        raise ArmError(
            404, "NotFound", f"The source {noun} '{source_id}' was not found.", target=target
        )
    return found


def _usable(res: Resource, noun: str, location: str, target: str) -> None:
    """A VM or managed image source must be Succeeded and in the version's region."""
    name = res.body["name"]
    if res.properties.get("provisioningState") != "Succeeded":
        raise invalid_parameter(
            f"The source {noun} '{name}' is "
            f"{res.properties.get('provisioningState')}; it must be Succeeded.",
            target=target,
        )
    if res.body["location"] != location:
        raise invalid_parameter(
            f"The source {noun} '{name}' is in '{res.body['location']}'; it must be in the "
            f"image version's region '{location}'.",
            target=target,
        )


def _vm_source(em: Emulator, vm_id: str, image: Resource, location: str) -> dict[str, Any]:
    target = f"{_SOURCE}.virtualMachineId"
    vm = _stored(em, vm_id, VM_TYPE, "virtual machine", target)
    _usable(vm, "virtual machine", location, target)
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
    target = f"{_SOURCE}.id"
    other = _stored(em, source_id, galleries.VERSION_TYPE, "image version", target)
    state = other.internal.get("regions", {}).get(location, {}).get("state")
    if state != "Completed":
        raise invalid_parameter(
            f"The source image version '{source_id}' is not replicated to '{location}'.",
            target=target,
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
    managed = _stored(em, source_id, images.TYPE, "managed image", target)
    _usable(managed, "managed image", location, target)
    facts = managed.internal
    _match_definition(
        image,
        os_type=facts["osType"],
        os_state=facts["osState"],
        generation=facts["hyperVGeneration"],
        what=f"source managed image '{managed.body['name']}'",
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
