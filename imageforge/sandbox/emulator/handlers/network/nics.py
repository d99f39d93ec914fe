"""Network interfaces (``networkInterfaces/{n}``) and their attachment to virtual machines.

A PUT needs at least one ipConfiguration, each in an existing subnet of a virtual network in
the NIC's region, optionally with a public IP no other NIC holds; dynamic private addresses
are handed out from the subnet's prefix. The public IPs learn which ipConfiguration holds them.
A VM's PUT attaches its NICs (``attach_nics``: GET then shows ``virtualMachine`` and a MAC
address), its boot publishes its endpoint on them and their public IPs, its deletion detaches
them. A NIC still attached to a VM cannot be deleted (NicInUse).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.handlers.network import base, vnets
from imageforge.sandbox.emulator.messages import ArmRequest
from imageforge.sandbox.emulator.store import Resource

IPCONFIG_TYPE = "Microsoft.Network/networkInterfaces/ipConfigurations"


def _subnet(em: Emulator, ref: Any, owner: str) -> tuple[Resource, dict[str, Any]]:
    """The virtual network and subnet a ``{"id": ".../subnets/s"}`` reference names."""
    ref_id = str(ref.get("id", "")) if isinstance(ref, dict) else ""
    vnet_id, _, name = ref_id.partition("/subnets/")
    vnet = em.store.get(vnet_id) if vnet_id else None
    subnet = vnets.find_subnet(vnet, name) if vnet is not None else None
    if vnet is None or subnet is None:
        raise base.invalid_reference(ref_id, owner)
    return vnet, subnet


def _private_address(em: Emulator, subnet: dict[str, Any]) -> str:
    prefix = subnet["properties"].get("addressPrefix") or subnet["properties"]["addressPrefixes"][0]
    net = ipaddress.ip_network(prefix, strict=False)
    used = em.store.next_value(f"private-ip:{subnet['id'].lower()}")
    return str(net.network_address + 3 + used)


def _public_ip_refs(configs: list[dict[str, Any]]) -> list[str]:
    """The public IP ids named by ipConfigurations, in order."""
    ids = []
    for config in configs:
        ref = config.get("properties", {}).get("publicIPAddress")
        if ref:
            ids.append(ref["id"])
    return ids


def _ip_configuration(
    em: Emulator, nic: Resource, index: int, item: Any
) -> tuple[dict[str, Any], Resource | None]:
    """One ipConfiguration of a NIC's PUT, and the public IP it holds (if any)."""
    if not isinstance(item, dict) or not item.get("name"):
        raise invalid_parameter(
            "Each IP configuration needs a name.", "properties.ipConfigurations"
        )
    config_id = f"{nic.id}/ipConfigurations/{item['name']}"
    cprops = common.drop(item.get("properties") or {}, *base.READONLY)
    vnet, subnet = _subnet(em, cprops.get("subnet"), config_id)
    if vnet.body["location"] != nic.body["location"]:
        raise invalid_parameter(
            f"Subnet {subnet['id']} is in '{vnet.body['location']}', not in the network "
            f"interface's region '{nic.body['location']}'.",
            target="properties.ipConfigurations",
        )
    cprops["subnet"] = {"id": subnet["id"]}
    pip = None
    if cprops.get("publicIPAddress"):
        pip = base.reference(em, cprops["publicIPAddress"], base.PIP_TYPE, config_id)
        holder = pip.internal.get("ipConfiguration")
        if holder and not holder.lower().startswith(nic.key + "/"):
            raise ArmError(
                400,
                "PublicIPAddressInUse",
                f"Resource {pip.id} is already in use by {holder}; it cannot be used by "
                f"{config_id}.",
            )
        cprops["publicIPAddress"] = {"id": pip.id}
    cprops.setdefault("privateIPAllocationMethod", "Dynamic")
    if cprops["privateIPAllocationMethod"] == "Dynamic" or not cprops.get("privateIPAddress"):
        cprops["privateIPAddress"] = _private_address(em, subnet)
    cprops.setdefault("privateIPAddressVersion", "IPv4")
    cprops["primary"] = index == 0
    cprops["provisioningState"] = "Succeeded"
    config = {
        "id": config_id,
        "name": item["name"],
        "etag": base.etag(),
        "type": IPCONFIG_TYPE,
        "properties": cprops,
    }
    return config, pip


def _build(em: Emulator, _req: ArmRequest, res: Resource, props: dict[str, Any]) -> None:
    configs = props.get("ipConfigurations")
    if not isinstance(configs, list) or not configs:
        raise invalid_parameter(
            "A network interface needs at least one IP configuration.",
            target="properties.ipConfigurations",
        )
    old_pips = {p.lower() for p in _public_ip_refs(res.properties.get("ipConfigurations", []))}
    built = []
    new_pips: dict[str, str] = {}
    for index, item in enumerate(configs):
        config, pip = _ip_configuration(em, res, index, item)
        built.append(config)
        if pip is not None:
            new_pips[pip.key] = config["id"]
    nsg = props.get("networkSecurityGroup")
    if nsg:
        base.reference(em, nsg, base.NSG_TYPE, res.id)
        props["networkSecurityGroup"] = {"id": nsg["id"]}
    for pip_key in old_pips - set(new_pips):
        base.set_internal(em, pip_key, ipConfiguration=None, endpoint=None)
    for pip_key, config_id in new_pips.items():
        values: dict[str, Any] = {"ipConfiguration": config_id}
        if res.internal.get("endpoint"):
            values["endpoint"] = res.internal["endpoint"]
        base.set_internal(em, pip_key, **values)
    res.body["properties"] = {
        **common.drop(props, "virtualMachine", "macAddress"),
        "resourceGuid": res.properties.get("resourceGuid"),
        "ipConfigurations": built,
    }


def _in_use(_em: Emulator, res: Resource) -> None:
    if res.internal.get("vm"):
        raise ArmError(
            400,
            "NicInUse",
            f"Network Interface {res.id} is used by existing resource {res.internal['vm']}. "
            "In order to delete the network interface, it must be dissociated from the "
            "resource.",
        )


def _render(em: Emulator, res: Resource) -> dict[str, Any]:
    body = base.as_stored(em, res)
    if res.internal.get("vm"):
        body["properties"]["virtualMachine"] = {"id": res.internal["vm"]}
        body["properties"]["macAddress"] = res.internal.get("mac")
    return body


def forget(em: Emulator, res: Resource) -> None:
    """A NIC is being deleted: its public IPs are no longer held by it."""
    for pip_id in _public_ip_refs(res.properties.get("ipConfigurations", [])):
        base.set_internal(em, pip_id, ipConfiguration=None, endpoint=None)


NICS = base.NetworkType(
    base.NIC_TYPE,
    "networkInterfaces",
    "networkInterfaceName",
    build=_build,
    in_use=_in_use,
    render=_render,
    cleanup=forget,
)


# VM attachments ---------------------------------------------------------------------------


def attach_nics(em: Emulator, nic_ids: list[str], vm_id: str) -> None:
    for nic_id in nic_ids:
        mac = "-".join(f"{b:02X}" for b in uuid.uuid4().bytes[:6])
        base.set_internal(em, nic_id, vm=vm_id, mac=mac)


def publish_endpoint(em: Emulator, nic_ids: list[str], endpoint: dict[str, Any]) -> None:
    """A VM booted: its NICs' public IPs now answer with the VM's address and ssh port."""
    for nic_id in nic_ids:
        base.set_internal(em, nic_id, endpoint=endpoint)
        nic = em.store.get(nic_id)
        for pip_id in _public_ip_refs(nic.properties.get("ipConfigurations", [])) if nic else []:
            base.set_internal(em, pip_id, endpoint=endpoint)


def detach_nics(em: Emulator, nic_ids: list[str], vm_id: str) -> None:
    for nic_id in nic_ids:
        nic = em.store.get(nic_id)
        if nic is None or (nic.internal.get("vm") or "").lower() != vm_id.lower():
            continue
        base.set_internal(em, nic_id, vm=None, mac=None, endpoint=None)
        for pip_id in _public_ip_refs(nic.properties.get("ipConfigurations", [])):
            base.set_internal(em, pip_id, endpoint=None)
