"""A virtual machine's PUT: create (boot, as a long-running operation) or update.

A new VM is checked and resolved by ``vmspec`` (image, OS profile, NICs, size against the
image's Hyper-V generation; a VM from a specialized image has no OS profile and the backend
boots it with none), gets its own loopback address (``Emulator.allocate_address``) and
is answered 201 at once, Creating; the operation boots the machine through the backend, then
the VM is Succeeded and running and its sshd endpoint is published on the public IP of its NIC
(``ipAddress`` and the tag ``imageforge.sandbox-ssh-port``). A PUT of an existing VM may change
its tags and size only (PropertyChangeNotAllowed for its image).
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from imageforge.sandbox.emulator import vmsizes
from imageforge.sandbox.emulator.armerrors import invalid_parameter, property_change_not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, vms, vmspec
from imageforge.sandbox.emulator.handlers.network import nics
from imageforge.sandbox.emulator.lro import utc_now
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$|^[A-Za-z0-9]$")


def put_vm(em: Emulator, req: ArmRequest) -> ArmResponse:
    name = req.param("vmName")
    if not _NAME.match(name):
        raise invalid_parameter(f"The virtual machine name '{name}' is invalid.", target="vmName")
    body = common.body_object(req)
    props = common.drop(common.properties_of(body), "provisioningState", "instanceView", "vmId")
    with em.store.lock:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        location = common.location_of(body, vms.TYPE)
        existing = em.store.get(vms.vm_id(req))
        if existing is not None:
            return _update(em, req, existing, body, props, location)
        storage = props.get("storageProfile") or {}
        os_disk = storage.get("osDisk") or {}
        if str(os_disk.get("osType", "")).lower() == "windows":
            raise invalid_parameter(
                vmspec.WINDOWS_REFUSED, target="properties.storageProfile.osDisk"
            )
        source, reference, facts = vmspec.resolve_image(em, storage.get("imageReference"), location)
        hardware = vmspec.hardware_profile(
            props.get("hardwareProfile") or {"vmSize": "Standard_B2s"}
        )
        vmsizes.check_generation(str(hardware.get("vmSize") or ""), facts["hyperVGeneration"])
        os_profile, profile = vmspec.os_profile(props, name, facts)
        rid = common.provider_id(
            req.subscription, group.body["name"], vms.PROVIDER, "virtualMachines", name
        )
        nic_ids = vmspec.nic_ids(em, props, location, rid)
        res = Resource(
            rid, vms.TYPE, common.base_body(rid, vms.TYPE, location, common.tags_of(body))
        )
        disk_name = f"{name}_OsDisk_1_{uuid.uuid4().hex}"
        managed = {
            "storageAccountType": (os_disk.get("managedDisk") or {}).get(
                "storageAccountType", "Premium_LRS"
            ),
            "id": common.provider_id(
                req.subscription, group.body["name"], vms.PROVIDER, "disks", disk_name
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
            # a VM from a specialized image has no osProfile at all
            **({"osProfile": os_profile} if os_profile is not None else {}),
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
            "vmKey": vms.vm_key(rid),
            "address": address,
            "osType": facts["osType"],
            "hyperVGeneration": facts["hyperVGeneration"],
            "generalized": False,
            "power": "starting",
            "nics": nic_ids,
            "stateTime": utc_now(),
        }
        em.store.put(res)
        nics.attach_nics(em, nic_ids, rid)

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
            nics.publish_endpoint(em, nic_ids, current.internal["endpoint"])

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
        provider=vms.PROVIDER,
        location=location,
        resource_id=rid,
        work=boot,
        on_failure=on_failure,
        status=201,
        body=vms.render(res),
    )


def _update(
    em: Emulator,
    req: ArmRequest,
    res: Resource,
    body: dict[str, Any],
    props: dict[str, Any],
    location: str,
) -> ArmResponse:
    common.same_location(res, location, vms.TYPE)
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
            raise property_change_not_allowed("imageReference")
    hardware = props.get("hardwareProfile")
    if hardware is not None:
        hardware = vmspec.hardware_profile(hardware)
        size = str(hardware.get("vmSize") or res.properties["hardwareProfile"].get("vmSize"))
        vmsizes.check_generation(size, res.internal.get("hyperVGeneration") or "V1")
    if "tags" in body:
        res.body["tags"] = common.tags_of(body)
    if hardware is not None:
        res.properties["hardwareProfile"] = hardware
    return common.put_with_operation(em, req, res, common.COMPUTE, created=False, render=vms.render)
