"""Public IP addresses (``publicIPAddresses/{p}``).

A PUT fills in Azure's defaults (sku Standard/Regional, Static allocation for Standard,
IPv4, a 4-minute idle timeout); ``ipAddress`` and ``ipConfiguration`` are not the client's to
set. GET shows the NIC ipConfiguration it is attached to and, once that NIC's VM booted, the
VM's loopback address as ``ipAddress`` and its sshd port in the tag ``SSH_PORT_TAG``. One still
attached to a NIC cannot be deleted (PublicIPAddressCannotBeDeleted).
"""

from __future__ import annotations

from typing import Any

from imageforge import tags
from imageforge.sandbox.emulator.armerrors import ArmError
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.handlers.network import base
from imageforge.sandbox.emulator.messages import ArmRequest
from imageforge.sandbox.emulator.store import Resource

SSH_PORT_TAG = tags.SANDBOX_SSH_PORT


def _build(_em: Emulator, req: ArmRequest, res: Resource, props: dict[str, Any]) -> None:
    body = common.body_object(req)
    sku = body.get("sku") or res.body.get("sku") or {"name": "Standard", "tier": "Regional"}
    res.body["sku"] = sku
    props = common.drop(props, "ipAddress", "ipConfiguration")
    props.setdefault(
        "publicIPAllocationMethod", "Static" if sku.get("name") == "Standard" else "Dynamic"
    )
    props.setdefault("publicIPAddressVersion", "IPv4")
    props.setdefault("idleTimeoutInMinutes", 4)
    props["resourceGuid"] = res.properties.get("resourceGuid")
    res.body["properties"] = props


def _in_use(_em: Emulator, res: Resource) -> None:
    if res.internal.get("ipConfiguration"):
        raise ArmError(
            400,
            "PublicIPAddressCannotBeDeleted",
            f"Public IP address {res.id} can not be deleted since it is still allocated to "
            f"resource {res.internal['ipConfiguration']}. In order to delete the public IP, "
            "disassociate/detach the Public IP address from the resource.",
        )


def _render(em: Emulator, res: Resource) -> dict[str, Any]:
    body = base.as_stored(em, res)
    props = body["properties"]
    endpoint = res.internal.get("endpoint")
    if endpoint:
        props["ipAddress"] = endpoint["address"]
        body["tags"] = {**body.get("tags", {}), SSH_PORT_TAG: str(endpoint["port"])}
    if res.internal.get("ipConfiguration"):
        props["ipConfiguration"] = {"id": res.internal["ipConfiguration"]}
    return body


PUBLIC_IPS = base.NetworkType(
    base.PIP_TYPE,
    "publicIPAddresses",
    "publicIpAddressName",
    build=_build,
    in_use=_in_use,
    render=_render,
)
