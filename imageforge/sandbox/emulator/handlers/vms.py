"""Microsoft.Compute virtual machines: PUT (boot, as an LRO), GET ($expand=instanceView),
instanceView, DELETE, POST deallocate and POST generalize.

A VM boots through the machine backend from a sandbox marketplace image
(publisher/offer/sku/version, resolved by ``find_base_image``) or from a gallery image version
replicated (Completed) to the VM's region — an image definition id or ``versions/latest``
picks Azure's "latest" there. Windows cannot run in the sandbox and is refused up front.
Each VM gets its own loopback address; its sshd endpoint is published on the public IP of its
NIC (``ipAddress`` and the tag ``imageforge.sandbox-ssh-port``).
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from pathlib import Path
from typing import Any

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import BaseImage, OsProfile, find_base_image
from imageforge.sandbox.emulator import regions, vmsizes
from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter, not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, marketplace, network, versions
from imageforge.sandbox.emulator.lro import utc_now
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Compute"
TYPE = "Microsoft.Compute/virtualMachines"
WINDOWS_REFUSED = (
    "Windows cannot run in the sandbox: only Linux images boot there. Test Windows images "
    "against Azure (the Windows path is covered by rendering, packer validate and unit tests)."
)
_WINDOWS_PUBLISHERS = ("microsoftwindowsserver", "microsoftwindowsdesktop", "microsoftsqlserver")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$|^[A-Za-z0-9]$")
_VERSION_REF = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+"
    r"/images/[^/]+(/versions/[^/]+)?$",
    re.IGNORECASE,
)
_IMAGE_REF = "properties.storageProfile.imageReference"


def vm_id(req: ArmRequest) -> str:
    return common.provider_id(
        req.subscription, req.param("resourceGroupName"), PROVIDER, "virtualMachines",
        req.param("vmName"),
    )  # fmt: skip


def vm_key(resource_id: str) -> str:
    """A stable, filesystem-safe key for the backend, derived from the resource id."""
    parts = resource_id.split("/")
    group, name = parts[4], parts[-1]
    safe = re.sub(r"[^a-z0-9]+", "-", f"{group}-{name}".lower()).strip("-")[:40]
    digest = hashlib.sha256(resource_id.lower().encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


def require_vm(em: Emulator, req: ArmRequest) -> Resource:
    return common.require(em, vm_id(req), TYPE, req.param("resourceGroupName"))


# rendering --------------------------------------------------------------------------------


def instance_view(res: Resource) -> dict[str, Any]:
    internal = res.internal
    state = res.properties.get("provisioningState", "Succeeded")
    statuses = [
        {
            "code": f"ProvisioningState/{state.lower()}",
            "level": "Error" if state == "Failed" else "Info",
            "displayStatus": f"Provisioning {state.lower()}",
            "time": internal.get("stateTime", res.properties.get("timeCreated")),
        }
    ]
    if internal.get("generalized"):
        statuses.append(
            {"code": "OSState/generalized", "level": "Info", "displayStatus": "VM generalized"}
        )
    power = internal.get("power", "starting")
    statuses.append(
        {"code": f"PowerState/{power}", "level": "Info", "displayStatus": f"VM {power}"}
    )
    view: dict[str, Any] = {
        "computerName": res.properties.get("osProfile", {}).get("computerName"),
        "osName": "debian",
        "hyperVGeneration": internal.get("hyperVGeneration"),
        "statuses": statuses,
    }
    if internal.get("error"):
        view["statuses"][0]["message"] = internal["error"]
    return view


def render(res: Resource, *, expand: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(res.body)
    if expand and "instanceview" in expand.lower():
        body["properties"]["instanceView"] = instance_view(res)
    return body


# image sources ----------------------------------------------------------------------------


def _resolve_image(
    em: Emulator, reference: Any, location: str
) -> tuple[BaseImage | Path, dict[str, Any], dict[str, Any]]:
    """(what the backend boots, the reference to echo, facts about the OS)."""
    if not isinstance(reference, dict):
        raise invalid_parameter("storageProfile.imageReference is required.", target=_IMAGE_REF)
    ref = copy.deepcopy(reference)
    ref.pop("exactVersion", None)
    image_id = ref.get("id")
    if image_id:
        return _gallery_image(em, str(image_id), location, ref)
    publisher, offer, sku = (str(ref.get(k) or "") for k in ("publisher", "offer", "sku"))
    if not (publisher and offer and sku):
        raise invalid_parameter(
            "imageReference needs an id or publisher, offer, sku and version.", target=_IMAGE_REF
        )
    if publisher.lower() in _WINDOWS_PUBLISHERS:
        raise invalid_parameter(WINDOWS_REFUSED, target=_IMAGE_REF)
    version = str(ref.get("version") or "latest")
    urn = f"{publisher}:{offer}:{sku}:{version}"
    try:
        base = find_base_image(publisher, offer, sku)
    except SandboxError as err:
        raise _platform_image_not_found(urn, str(err)) from None
    exact = marketplace.resolve(em, base, version)
    if exact is None:
        raise _platform_image_not_found(
            urn, "Verify that all fields in the storage profile are correct."
        )
    ref["version"] = version
    ref["exactVersion"] = exact
    facts = {"osType": base.os_type, "hyperVGeneration": base.hyper_v_generation}
    return base, ref, facts


def _platform_image_not_found(urn: str, detail: str) -> ArmError:
    return ArmError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{urn}' is not available. {detail}",
        target=_IMAGE_REF,
    )


def _gallery_image(
    em: Emulator, image_id: str, location: str, ref: dict[str, Any]
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    if "/providers/microsoft.compute/images/" in image_id.lower():
        raise invalid_parameter(
            "The sandbox cannot boot managed images; use a gallery image version.",
            target=f"{_IMAGE_REF}.id",
        )
    if not _VERSION_REF.match(image_id):
        raise invalid_parameter(
            f"The image reference id '{image_id}' is not a gallery image or image version id.",
            target=f"{_IMAGE_REF}.id",
        )
    definition_id, _, version_name = image_id.partition("/versions/")
    definition = em.store.get(definition_id)
    if definition is None:
        raise ArmError(
            404, "GalleryImageNotFound", f"The gallery image '{definition_id}' was not found."
        )
    if definition.properties.get("osType", "").lower() == "windows":
        raise invalid_parameter(WINDOWS_REFUSED, target=f"{_IMAGE_REF}.id")
    if not version_name or version_name.lower() == "latest":
        version = versions.latest_in_region(em, definition, location)
        if version is None:
            raise ArmError(
                404,
                "GalleryImageNotFound",
                f"No version of gallery image '{definition.body['name']}' is available as "
                f"latest in region '{location}'.",
            )
    else:
        found = em.store.get(f"{definition_id}/versions/{version_name}")
        if found is None:
            raise ArmError(
                404,
                "GalleryImageNotFound",
                f"The gallery image version '{image_id}' was not found.",
            )
        version = found
    state = version.internal.get("regions", {}).get(location, {}).get("state")
    if state != "Completed":
        raise ArmError(
            404,
            "GalleryImageNotFound",
            f"The gallery image version '{version.id}' is not available in "
            f"{regions.display_name(location)} region (replication state: {state or 'none'}). "
            "Replicate it to this region, or change the requested region.",
        )
    if not version.internal.get("captured", True):
        raise invalid_parameter(
            f"The gallery image version '{version.id}' was created from a managed image of a "
            "disk, which the sandbox does not hold; it cannot boot.",
            target=f"{_IMAGE_REF}.id",
        )
    ref["exactVersion"] = version.body["name"]
    facts = {
        "osType": definition.properties["osType"],
        "hyperVGeneration": definition.properties.get("hyperVGeneration", "V1"),
        "galleryImageVersionId": version.id,
    }
    return em.blob_dir(location, version.internal["blob"]), ref, facts


def _os_profile(props: dict[str, Any], vm_name: str) -> tuple[dict[str, Any], OsProfile]:
    given = props.get("osProfile")
    if not isinstance(given, dict):
        raise invalid_parameter("Required parameter 'osProfile' is missing (null).", "osProfile")
    if given.get("windowsConfiguration"):
        raise invalid_parameter(WINDOWS_REFUSED, target="osProfile.windowsConfiguration")
    admin = given.get("adminUsername")
    if not isinstance(admin, str) or not admin:
        raise invalid_parameter(
            "Required parameter 'adminUsername' is missing (null).", "osProfile.adminUsername"
        )
    stored = {
        k: copy.deepcopy(v) for k, v in given.items() if k not in ("adminPassword", "customData")
    }
    stored.setdefault("computerName", vm_name)
    stored.setdefault("secrets", [])
    stored.setdefault("allowExtensionOperations", True)
    linux = stored.setdefault("linuxConfiguration", {})
    keys = (linux.get("ssh") or {}).get("publicKeys") or []
    if not isinstance(keys, list):
        raise invalid_parameter("ssh.publicKeys must be a list.", "osProfile.linuxConfiguration")
    key_data = tuple(
        str(k.get("keyData", "")) for k in keys if isinstance(k, dict) and k.get("keyData")
    )
    linux.setdefault("disablePasswordAuthentication", bool(key_data))
    linux.setdefault("provisionVMAgent", True)
    return stored, OsProfile(stored["computerName"], admin, key_data)


def _nic_ids(em: Emulator, props: dict[str, Any], location: str, this_vm: str) -> list[str]:
    nics = ((props.get("networkProfile") or {}).get("networkInterfaces")) or []
    if not isinstance(nics, list) or not nics:
        raise invalid_parameter(
            "networkProfile.networkInterfaces must name at least one network interface.",
            target="properties.networkProfile",
        )
    ids = []
    for item in nics:
        nic_id = item.get("id") if isinstance(item, dict) else None
        nic = em.store.get(str(nic_id)) if nic_id else None
        if nic is None or nic.type.lower() != network.NIC_TYPE.lower():
            raise ArmError(
                404, "NotFound", f"Resource {nic_id} not found.", target="properties.networkProfile"
            )
        if nic.body["location"] != location:
            raise invalid_parameter(
                f"Network interface '{nic.body['name']}' is in '{nic.body['location']}', not in "
                f"the VM's region '{location}'.",
                target="properties.networkProfile",
            )
        attached = nic.internal.get("vm")
        if attached and attached.lower() != this_vm.lower():
            raise ArmError(
                400,
                "NicInUse",
                f"Network interface {nic.id} is in use by virtual machine {attached}.",
            )
        ids.append(nic.id)
    return ids


# handlers ---------------------------------------------------------------------------------


def put_vm(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("vmName")
    if not _NAME.match(name):
        raise invalid_parameter(f"The virtual machine name '{name}' is invalid.", target="vmName")
    body = common.body_object(req)
    props = common.drop(common.properties_of(body), "provisioningState", "instanceView", "vmId")
    with em.store.lock:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        location = common.location_of(body, TYPE)
        existing = em.store.get(vm_id(req))
        if existing is not None:
            return _update(em, req, existing, body, props, location)
        storage = props.get("storageProfile") or {}
        os_disk = storage.get("osDisk") or {}
        if str(os_disk.get("osType", "")).lower() == "windows":
            raise invalid_parameter(WINDOWS_REFUSED, target="properties.storageProfile.osDisk")
        source, reference, facts = _resolve_image(em, storage.get("imageReference"), location)
        hardware = props.get("hardwareProfile") or {"vmSize": "Standard_B2s"}
        if not isinstance(hardware, dict):
            raise invalid_parameter(
                "hardwareProfile must be an object.", target="properties.hardwareProfile"
            )
        vmsizes.check_generation(str(hardware.get("vmSize") or ""), facts["hyperVGeneration"])
        os_profile, profile = _os_profile(props, name)
        rid = common.provider_id(
            req.subscription, group.body["name"], PROVIDER, "virtualMachines", name
        )
        nic_ids = _nic_ids(em, props, location, rid)
        res = Resource(rid, TYPE, common.base_body(rid, TYPE, location, common.tags_of(body)))
        disk_name = f"{name}_OsDisk_1_{uuid.uuid4().hex}"
        managed = {
            "storageAccountType": (os_disk.get("managedDisk") or {}).get(
                "storageAccountType", "Premium_LRS"
            ),
            "id": common.provider_id(
                req.subscription, group.body["name"], PROVIDER, "disks", disk_name
            ),
        }
        res.body["properties"] = {
            "vmId": str(uuid.uuid4()),
            "hardwareProfile": hardware,
            "storageProfile": {
                "imageReference": reference,
                "osDisk": {
                    "osType": facts["osType"],
                    "name": os_disk.get("name", disk_name),
                    "createOption": "FromImage",
                    "caching": os_disk.get("caching", "ReadWrite"),
                    "managedDisk": managed,
                    "deleteOption": os_disk.get("deleteOption", "Detach"),
                    "diskSizeGB": os_disk.get("diskSizeGB", 30),
                },
                "dataDisks": [],
            },
            "osProfile": os_profile,
            "networkProfile": {
                "networkInterfaces": copy.deepcopy(props["networkProfile"]["networkInterfaces"])
            },
            "provisioningState": "Creating",
            "timeCreated": utc_now(),
        }
        for key in ("securityProfile", "diagnosticsProfile", "priority"):
            if key in props:
                res.body["properties"][key] = copy.deepcopy(props[key])
        address = em.allocate_address()
        res.internal = {
            "vmKey": vm_key(rid),
            "address": address,
            "osType": facts["osType"],
            "hyperVGeneration": facts["hyperVGeneration"],
            "generalized": False,
            "power": "starting",
            "nics": nic_ids,
            "stateTime": utc_now(),
        }
        em.store.put(res)
        network.attach_nics(em, nic_ids, rid)

    def boot(_op_id: str) -> None:
        endpoint = em.backend.boot(
            res.internal["vmKey"], source=source, profile=profile, address=address
        )
        with em.store.lock:
            current = em.store.get(rid)
            if current is None:
                em.backend.delete(res.internal["vmKey"])
                return
            current.internal.update(
                power="running",
                endpoint={"address": endpoint.address, "port": endpoint.port},
                stateTime=utc_now(),
            )
            current.properties["provisioningState"] = "Succeeded"
            em.store.put(current)
            network.publish_endpoint(em, nic_ids, current.internal["endpoint"])

    def on_failure(error: dict[str, Any]) -> None:
        with em.store.lock:
            current = em.store.get(rid)
            if current is not None:
                current.properties["provisioningState"] = "Failed"
                current.internal.update(
                    power="stopped", error=error.get("message"), stateTime=utc_now()
                )
                em.store.put(current)

    return em.ops.start(
        req,
        provider=PROVIDER,
        location=location,
        resource_id=rid,
        work=boot,
        on_failure=on_failure,
        status=201,
        body=render(res),
    )


def _update(
    em: Emulator,
    req: ArmRequest,
    res: Resource,
    body: dict[str, Any],
    props: dict[str, Any],
    location: str,
) -> ArmResponse:
    common.same_location(res, location, TYPE)
    common.reject_if_busy(res, f"virtual machine '{res.body['name']}'")
    given_ref = (props.get("storageProfile") or {}).get("imageReference")
    if given_ref is not None:
        current = {
            k: v
            for k, v in res.properties["storageProfile"]["imageReference"].items()
            if k != "exactVersion"
        }
        wanted = {k: v for k, v in given_ref.items() if k != "exactVersion"}
        if {k: str(v).lower() for k, v in wanted.items()} != {
            k: str(v).lower() for k, v in current.items()
        }:
            raise ArmError(
                409,
                "PropertyChangeNotAllowed",
                "Changing property 'imageReference' is not allowed.",
                target="imageReference",
            )
    hardware = props.get("hardwareProfile")
    if hardware is not None:
        if not isinstance(hardware, dict):
            raise invalid_parameter(
                "hardwareProfile must be an object.", target="properties.hardwareProfile"
            )
        size = str(hardware.get("vmSize") or res.properties["hardwareProfile"].get("vmSize"))
        vmsizes.check_generation(size, res.internal.get("hyperVGeneration") or "V1")
    if "tags" in body:
        res.body["tags"] = common.tags_of(body)
    if hardware is not None:
        res.properties["hardwareProfile"] = hardware
    return common.put_with_operation(
        em, req, res, created=False, provider=PROVIDER, style="compute", render=render
    )


def get_vm(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, render(require_vm(em, req), expand=req.query.get("$expand")))


def get_instance_view(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, instance_view(require_vm(em, req)))


def list_vms(em: Emulator, req: ArmRequest) -> ArmResponse:
    group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
    return common.paginate(em, req, [render(r) for r in em.store.resources(TYPE, group.id)])


def delete_vm(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = em.store.get(vm_id(req))
        if res is None:
            common.require_group(em, req.subscription, req.param("resourceGroupName"))
            return ArmResponse(204)
        common.reject_if_busy(res, f"virtual machine '{res.body['name']}'")

        def stop(_op_id: str) -> None:
            destroy(em, res)

        return common.delete_with_operation(
            em, req, res, provider=PROVIDER, style="compute", work=stop
        )


def destroy(em: Emulator, res: Resource) -> None:
    """Delete the machine behind a VM and detach its NICs (the record is removed by caller)."""
    em.backend.delete(res.internal["vmKey"])
    network.detach_nics(em, res.internal.get("nics", []), res.id)


def deallocate(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = require_vm(em, req)
        common.reject_if_busy(res, f"virtual machine '{res.body['name']}'")
        res.internal["power"] = "deallocating"
        em.store.put(res)

    def work(_op_id: str) -> None:
        with em.store.lock:
            current = em.store.get(res.id)
            if current is not None:
                current.internal.update(power="deallocated", stateTime=utc_now())
                em.store.put(current)

    def on_failure(_error: dict[str, Any]) -> None:
        with em.store.lock:
            current = em.store.get(res.id)
            if current is not None:
                current.internal["power"] = "running"
                em.store.put(current)

    return em.ops.start(
        req, provider=PROVIDER, location=res.body["location"], resource_id=res.id,
        work=work, on_failure=on_failure, status=202,
    )  # fmt: skip


def generalize(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = require_vm(em, req)
        common.reject_if_busy(res, f"virtual machine '{res.body['name']}'")
        if res.internal.get("power") not in ("deallocated", "stopped"):
            raise not_allowed(
                f"Operation 'generalize' is not allowed on VM '{res.body['name']}' since the VM "
                f"is {res.internal.get('power')}. Deallocate the VM first."
            )
    em.backend.generalize(res.internal["vmKey"])
    with em.store.lock:
        current = em.store.get(res.id)
        if current is not None:
            current.internal.update(generalized=True, stateTime=utc_now())
            em.store.put(current)
    return ArmResponse(200)
