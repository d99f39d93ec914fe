"""Microsoft.Compute virtual machines: the record, GET ($expand=instanceView), instanceView,
list and DELETE.

A VM is created by ``vmcreate`` (PUT) and powered by ``vmpower`` (POST deallocate and
generalize); the machine behind it is run by the emulator's backend under ``vm_key``. The
instance view says its provisioning state, power state and whether it was generalized.
DELETE answers 202 (204 when it does not exist), deletes the machine and detaches its NICs.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.handlers.network import nics
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Compute"
TYPE = "Microsoft.Compute/virtualMachines"


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


# handlers ---------------------------------------------------------------------------------


def get_vm(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, render(require_vm(em, req), expand=req.query.get("$expand")))


def get_instance_view(em: Emulator, req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, instance_view(require_vm(em, req)))


def list_vms(em: Emulator, req: ArmRequest) -> ArmResponse:
    group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
    return common.paginate(em, req, [render(r) for r in em.store.resources(TYPE, group.id)])


def delete_vm(em: Emulator, req: ArmRequest) -> ArmResponse:
    return common.delete_resource(
        em, req, vm_id(req), "virtual machine", common.COMPUTE, cleanup=destroy
    )


def destroy(em: Emulator, res: Resource) -> None:
    """Delete the machine behind a VM and detach its NICs (the record is removed by caller)."""
    em.backend.delete(res.internal["vmKey"])
    nics.detach_nics(em, res.internal.get("nics", []), res.id)
