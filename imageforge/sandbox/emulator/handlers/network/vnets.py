"""Virtual networks and their subnets (``virtualNetworks/{v}[/subnets/{s}]``).

A virtual network's PUT gives its whole subnet list; a subnet also has its own PUT, GET, list
and DELETE, which change that list in place. A subnet answers with the ipConfigurations of the
network interfaces in it, and one still in use cannot be deleted (InUseSubnetCannotBeDeleted),
nor can its virtual network, nor can a virtual network's PUT drop it.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from imageforge.sandbox.emulator.armerrors import (
    ArmError,
    invalid_parameter,
    resource_not_found,
)
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.handlers.network import base
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource


def find_subnet(vnet: Resource, name: str) -> dict[str, Any] | None:
    for subnet in vnet.properties.get("subnets", []):
        if subnet["name"].lower() == name.lower():
            return subnet
    return None


def subnet_users(em: Emulator, subnet_id: str) -> list[str]:
    """The ids of the NIC ipConfigurations in a subnet."""
    users = []
    for nic in em.store.resources(base.NIC_TYPE):
        for config in nic.properties.get("ipConfigurations", []):
            ref = config.get("properties", {}).get("subnet", {}).get("id", "")
            if ref.lower() == subnet_id.lower():
                users.append(str(config["id"]))
    return users


def _add_ip_configurations(em: Emulator, subnet: dict[str, Any]) -> None:
    users = subnet_users(em, subnet["id"])
    if users:
        subnet["properties"]["ipConfigurations"] = [{"id": user} for user in users]


def _refuse_subnet_in_use(em: Emulator, subnet_id: str) -> None:
    users = subnet_users(em, subnet_id)
    if users:
        raise ArmError(
            400,
            "InUseSubnetCannotBeDeleted",
            f"Subnet {common.id_name(subnet_id)} is in use by {users[0]} and cannot be deleted. "
            "In order to delete the subnet, delete all the resources within the subnet.",
        )


def _build_subnet(em: Emulator, vnet_id: str, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not item.get("name"):
        raise invalid_parameter("Each subnet needs a name.", target="properties.subnets")
    props = common.drop(item.get("properties") or {}, *base.READONLY, "ipConfigurations")
    prefix = props.get("addressPrefix") or (props.get("addressPrefixes") or [None])[0]
    try:
        ipaddress.ip_network(str(prefix))
    except ValueError:
        raise ArmError(
            400,
            "InvalidAddressPrefixFormat",
            f"Address prefix {prefix} of subnet {item['name']} is not formatted correctly.",
        ) from None
    nsg = props.get("networkSecurityGroup")
    if nsg:
        base.reference(em, nsg, base.NSG_TYPE, f"{vnet_id}/subnets/{item['name']}")
        props["networkSecurityGroup"] = {"id": nsg["id"]}
    props["provisioningState"] = "Succeeded"
    return {
        "id": f"{vnet_id}/subnets/{item['name']}",
        "name": item["name"],
        "etag": base.etag(),
        "type": base.SUBNET_TYPE,
        "properties": props,
    }


# virtual networks -------------------------------------------------------------------------


def _build(em: Emulator, _req: ArmRequest, res: Resource, props: dict[str, Any]) -> None:
    prefixes = (props.get("addressSpace") or {}).get("addressPrefixes")
    if not isinstance(prefixes, list) or not prefixes:
        raise invalid_parameter(
            "addressSpace.addressPrefixes is required.", target="properties.addressSpace"
        )
    subnets = [_build_subnet(em, res.id, item) for item in props.get("subnets") or []]
    names = [s["name"].lower() for s in subnets]
    for old in res.properties.get("subnets", []):
        if old["name"].lower() not in names:
            _refuse_subnet_in_use(em, old["id"])
    state = {k: v for k, v in res.properties.items() if k == "resourceGuid"}
    res.body["properties"] = {**props, **state, "subnets": subnets}


def _in_use(em: Emulator, res: Resource) -> None:
    for subnet in res.properties.get("subnets", []):
        _refuse_subnet_in_use(em, subnet["id"])


def _render(em: Emulator, res: Resource) -> dict[str, Any]:
    body = base.as_stored(em, res)
    for subnet in body["properties"].get("subnets", []):
        _add_ip_configurations(em, subnet)
    return body


VNETS = base.NetworkType(
    base.VNET_TYPE,
    "virtualNetworks",
    "virtualNetworkName",
    build=_build,
    in_use=_in_use,
    render=_render,
)


# subnets ----------------------------------------------------------------------------------


def _require_vnet(em: Emulator, req: ArmRequest) -> Resource:
    return common.require_parent(em, VNETS.resource_id(req), req.param("resourceGroupName"))


def get_subnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    vnet = _require_vnet(em, req)
    subnet = find_subnet(vnet, req.param("subnetName"))
    if subnet is None:
        raise resource_not_found(
            base.SUBNET_TYPE,
            f"{vnet.body['name']}/{req.param('subnetName')}",
            req.param("resourceGroupName"),
        )
    rendered = copy.deepcopy(subnet)
    _add_ip_configurations(em, rendered)
    return ArmResponse(200, rendered)


def list_subnets(em: Emulator, req: ArmRequest) -> ArmResponse:
    vnet = _require_vnet(em, req)
    items = copy.deepcopy(vnet.properties.get("subnets", []))
    for item in items:
        _add_ip_configurations(em, item)
    return common.paginate(em, req, items)


def put_subnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    body = common.body_object(req)
    with em.store.lock:
        vnet = _require_vnet(em, req)
        common.reject_if_busy(vnet, f"virtual network '{vnet.body['name']}'")
        name = req.param("subnetName")
        subnet = _build_subnet(em, vnet.id, {"name": name, "properties": body.get("properties")})
        subnets = vnet.properties.setdefault("subnets", [])
        index = next((i for i, s in enumerate(subnets) if s["name"].lower() == name.lower()), None)
        if index is None:
            subnets.append(subnet)
        else:
            subnets[index] = subnet
        em.store.put(vnet)
    status = 201 if index is None else 200
    return _subnet_operation(em, req, vnet, subnet["id"], status=status, body=subnet)


def delete_subnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        vnet = _require_vnet(em, req)
        subnet = find_subnet(vnet, req.param("subnetName"))
        if subnet is None:
            return ArmResponse(204)
        _refuse_subnet_in_use(em, subnet["id"])
        vnet.properties["subnets"] = [s for s in vnet.properties["subnets"] if s is not subnet]
        em.store.put(vnet)
    return _subnet_operation(em, req, vnet, subnet["id"], status=202)


def _subnet_operation(
    em: Emulator,
    req: ArmRequest,
    vnet: Resource,
    subnet_id: str,
    *,
    status: int,
    body: dict[str, Any] | None = None,
) -> ArmResponse:
    """The LRO answer of a subnet change already made to its stored virtual network."""
    return em.ops.start(
        req,
        provider=base.PROVIDER,
        location=vnet.body["location"],
        resource_id=subnet_id,
        work=lambda _op_id: None,
        status=status,
        body=body,
        style="network",
    )
