"""Microsoft.Network: virtual networks and subnets, network security groups, public IP
addresses and network interfaces — what a test VM needs, with ARM's reference checks.

Writes are long-running operations (201/200 + Azure-AsyncOperation), deletes answer 202 (or
204 when there is nothing to delete). A public IP attached to a booted VM's NIC shows the VM's
loopback address as ``ipAddress`` and its sshd port in the tag ``imageforge.sandbox-ssh-port``.
"""

from __future__ import annotations

import copy
import ipaddress
import uuid
from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

PROVIDER = "Microsoft.Network"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
NSG_TYPE = "Microsoft.Network/networkSecurityGroups"
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
IPCONFIG_TYPE = "Microsoft.Network/networkInterfaces/ipConfigurations"
SSH_PORT_TAG = "imageforge.sandbox-ssh-port"

_READONLY = ("provisioningState", "resourceGuid", "etag")
_PARAM_BY_TYPE = {
    VNET_TYPE: ("virtualNetworks", "virtualNetworkName"),
    NSG_TYPE: ("networkSecurityGroups", "networkSecurityGroupName"),
    PIP_TYPE: ("publicIPAddresses", "publicIpAddressName"),
    NIC_TYPE: ("networkInterfaces", "networkInterfaceName"),
}
_DEFAULT_RULES = (
    ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*"),
    ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*"),
    ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet"),
    ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*"),
)


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def resource_id(req: ArmRequest, type_name: str) -> str:
    segment, param = _PARAM_BY_TYPE[type_name]
    return common.provider_id(
        req.subscription, req.param("resourceGroupName"), PROVIDER, segment, req.param(param)
    )


def _reference(em: Emulator, ref: Any, type_name: str, owner: str) -> Resource:
    """The resource a ``{"id": ...}`` reference names, or ARM's InvalidResourceReference."""
    ref_id = ref.get("id") if isinstance(ref, dict) else None
    found = em.store.get(str(ref_id)) if ref_id else None
    if found is None or found.type.lower() != type_name.lower():
        raise ArmError(
            400,
            "InvalidResourceReference",
            f"Resource {ref_id} referenced by resource {owner} was not found. Please make sure "
            "that the referenced resource exists, and that both resources are in the same region.",
        )
    return found


def _subnet(em: Emulator, ref: Any, owner: str) -> tuple[Resource, dict[str, Any]]:
    ref_id = str(ref.get("id", "")) if isinstance(ref, dict) else ""
    vnet_id, _, name = ref_id.partition("/subnets/")
    vnet = em.store.get(vnet_id) if vnet_id else None
    subnet = _find_subnet(vnet, name) if vnet is not None else None
    if vnet is None or subnet is None:
        raise ArmError(
            400,
            "InvalidResourceReference",
            f"Resource {ref_id} referenced by resource {owner} was not found. Please make sure "
            "that the referenced resource exists, and that both resources are in the same region.",
        )
    return vnet, subnet


def _find_subnet(vnet: Resource, name: str) -> dict[str, Any] | None:
    for subnet in vnet.properties.get("subnets", []):
        if subnet["name"].lower() == name.lower():
            return subnet  # type: ignore[no-any-return]
    return None


# generic write ----------------------------------------------------------------------------


def _put(em: Emulator, req: ArmRequest, type_name: str, build: Any) -> ArmResponse:
    """Shared PUT: group and location checks, then ``build(res, props)`` fills properties."""
    body = common.body_object(req)
    with em.store.lock:
        group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
        location = common.location_of(body, type_name)
        rid = resource_id(req, type_name)
        existing = em.store.get(rid)
        props = common.drop(common.properties_of(body), *_READONLY)
        if existing is not None:
            common.same_location(existing, location, type_name)
            common.reject_if_busy(existing, f"{type_name} '{existing.body['name']}'")
            res = existing
            res.body["tags"] = common.tags_of(body)
        else:
            segment, _ = _PARAM_BY_TYPE[type_name]
            rid = common.provider_id(
                req.subscription, group.body["name"], PROVIDER, segment, id_tail(rid)
            )
            res = Resource(
                rid, type_name, common.base_body(rid, type_name, location, common.tags_of(body))
            )
            res.properties["resourceGuid"] = str(uuid.uuid4())
        build(res, props)
        res.body["etag"] = _etag()
        return common.put_with_operation(
            em, req, res, created=existing is None, provider=PROVIDER, style="network",
            render=lambda r: render(em, r),
        )  # fmt: skip


def id_tail(resource_id: str) -> str:
    return common.id_name(resource_id)


def render(em: Emulator, res: Resource) -> dict[str, Any]:
    """The ARM body plus what other resources contribute (attachments, VM endpoints)."""
    body = copy.deepcopy(res.body)
    props = body.setdefault("properties", {})
    kind = res.type.lower()
    if kind == PIP_TYPE.lower():
        endpoint = res.internal.get("endpoint")
        if endpoint:
            props["ipAddress"] = endpoint["address"]
            body["tags"] = {**body.get("tags", {}), SSH_PORT_TAG: str(endpoint["port"])}
        if res.internal.get("ipConfiguration"):
            props["ipConfiguration"] = {"id": res.internal["ipConfiguration"]}
    elif kind == NIC_TYPE.lower():
        if res.internal.get("vm"):
            props["virtualMachine"] = {"id": res.internal["vm"]}
            props["macAddress"] = res.internal.get("mac")
    elif kind == VNET_TYPE.lower():
        for subnet in props.get("subnets", []):
            _add_ip_configurations(em, subnet)
    return body


def _add_ip_configurations(em: Emulator, subnet: dict[str, Any]) -> None:
    users = []
    for nic in em.store.resources(NIC_TYPE):
        for config in nic.properties.get("ipConfigurations", []):
            ref = config.get("properties", {}).get("subnet", {}).get("id", "")
            if ref.lower() == subnet["id"].lower():
                users.append({"id": config["id"]})
    if users:
        subnet["properties"]["ipConfigurations"] = users


def _list(em: Emulator, req: ArmRequest, type_name: str) -> ArmResponse:
    group = common.require_group(em, req.subscription, req.param("resourceGroupName"))
    return common.paginate(
        em, req, [render(em, r) for r in em.store.resources(type_name, group.id)]
    )


def _get(em: Emulator, req: ArmRequest, type_name: str) -> ArmResponse:
    res = common.require(em, resource_id(req, type_name), type_name, req.param("resourceGroupName"))
    return ArmResponse(200, render(em, res))


def _delete(em: Emulator, req: ArmRequest, type_name: str, in_use: Any) -> ArmResponse:
    with em.store.lock:
        res = em.store.get(resource_id(req, type_name))
        if res is None:
            common.require_group(em, req.subscription, req.param("resourceGroupName"))
            return ArmResponse(204)
        common.reject_if_busy(res, f"{type_name} '{res.body['name']}'")
        in_use(em, res)

        def cleanup(_op_id: str) -> None:
            forget(em, res)

        return common.delete_with_operation(
            em, req, res, provider=PROVIDER, style="network", work=cleanup
        )


def forget(em: Emulator, res: Resource) -> None:
    """Drop the back-references other resources hold to ``res`` (it is being deleted)."""
    if res.type.lower() == NIC_TYPE.lower():
        for config in res.properties.get("ipConfigurations", []):
            pip_ref = config.get("properties", {}).get("publicIPAddress")
            if pip_ref:
                _set_internal(em, pip_ref["id"], ipConfiguration=None, endpoint=None)


def _set_internal(em: Emulator, rid: str, **values: Any) -> None:
    with em.store.lock:
        found = em.store.get(rid)
        if found is None:
            return
        for key, value in values.items():
            if value is None:
                found.internal.pop(key, None)
            else:
                found.internal[key] = value
        em.store.put(found)


# virtual networks and subnets ---------------------------------------------------------------


def _build_subnet(em: Emulator, vnet_id: str, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or not item.get("name"):
        raise invalid_parameter("Each subnet needs a name.", target="properties.subnets")
    props = common.drop(item.get("properties") or {}, *_READONLY, "ipConfigurations")
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
        _reference(em, nsg, NSG_TYPE, f"{vnet_id}/subnets/{item['name']}")
        props["networkSecurityGroup"] = {"id": nsg["id"]}
    props["provisioningState"] = "Succeeded"
    return {
        "id": f"{vnet_id}/subnets/{item['name']}",
        "name": item["name"],
        "etag": _etag(),
        "type": SUBNET_TYPE,
        "properties": props,
    }


def _subnet_in_use(em: Emulator, subnet_id: str) -> str | None:
    for nic in em.store.resources(NIC_TYPE):
        for config in nic.properties.get("ipConfigurations", []):
            ref = config.get("properties", {}).get("subnet", {}).get("id", "")
            if ref.lower() == subnet_id.lower():
                return str(config["id"])
    return None


def _refuse_subnet_in_use(em: Emulator, subnet_id: str) -> None:
    user = _subnet_in_use(em, subnet_id)
    if user:
        raise ArmError(
            400,
            "InUseSubnetCannotBeDeleted",
            f"Subnet {common.id_name(subnet_id)} is in use by {user} and cannot be deleted. In "
            "order to delete the subnet, delete all the resources within the subnet.",
        )


def put_vnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    def build(res: Resource, props: dict[str, Any]) -> None:
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

    return _put(em, req, VNET_TYPE, build)


def get_vnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _get(em, req, VNET_TYPE)


def list_vnets(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _list(em, req, VNET_TYPE)


def delete_vnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    def in_use(em: Emulator, res: Resource) -> None:
        for subnet in res.properties.get("subnets", []):
            _refuse_subnet_in_use(em, subnet["id"])

    return _delete(em, req, VNET_TYPE, in_use)


def _require_vnet(em: Emulator, req: ArmRequest) -> Resource:
    return common.require_parent(em, resource_id(req, VNET_TYPE), req.param("resourceGroupName"))


def get_subnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    vnet = _require_vnet(em, req)
    subnet = _find_subnet(vnet, req.param("subnetName"))
    if subnet is None:
        raise common.resource_not_found(
            SUBNET_TYPE,
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

    def work(_op_id: str) -> None:
        return None

    return em.ops.start(
        req, provider=PROVIDER, location=vnet.body["location"], resource_id=subnet["id"],
        work=work, status=201 if index is None else 200, body=subnet, style="network",
    )  # fmt: skip


def delete_subnet(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        vnet = _require_vnet(em, req)
        subnet = _find_subnet(vnet, req.param("subnetName"))
        if subnet is None:
            return ArmResponse(204)
        _refuse_subnet_in_use(em, subnet["id"])
        vnet.properties["subnets"] = [s for s in vnet.properties["subnets"] if s is not subnet]
        em.store.put(vnet)
    return em.ops.start(
        req, provider=PROVIDER, location=vnet.body["location"], resource_id=subnet["id"],
        work=lambda _op_id: None, status=202, style="network",
    )  # fmt: skip


# network security groups ------------------------------------------------------------------


def _rule(nsg_id: str, item: Any, *, default: bool = False) -> dict[str, Any]:
    if not isinstance(item, dict) or not item.get("name"):
        raise invalid_parameter(
            "Each security rule needs a name.", target="properties.securityRules"
        )
    props = common.drop(item.get("properties") or {}, *_READONLY)
    priority = props.get("priority")
    if not default and (not isinstance(priority, int) or not 100 <= priority <= 4096):
        raise ArmError(
            400,
            "SecurityRuleInvalidPriority",
            f"Security rule {item['name']} has invalid priority {priority}. Value provided: "
            f"{priority} Allowed range 100-4096.",
        )
    for key, allowed in (
        ("direction", ("Inbound", "Outbound")),
        ("access", ("Allow", "Deny")),
        ("protocol", ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")),
    ):
        if props.get(key) not in allowed:
            raise ArmError(
                400,
                "SecurityRuleParameterContainsUnsupportedValue",
                f"Security rule parameter {key} for rule with Id {nsg_id}/securityRules/"
                f"{item['name']} cannot be '{props.get(key)}'; use one of {', '.join(allowed)}.",
            )
    props["provisioningState"] = "Succeeded"
    kind = "defaultSecurityRules" if default else "securityRules"
    return {
        "id": f"{nsg_id}/{kind}/{item['name']}",
        "name": item["name"],
        "etag": _etag(),
        "type": RULE_TYPE
        if not default
        else "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
        "properties": props,
    }


def _default_rules(nsg_id: str) -> list[dict[str, Any]]:
    rules = []
    for name, direction, access, priority, source, dest in _DEFAULT_RULES:
        rules.append(
            _rule(
                nsg_id,
                {
                    "name": name,
                    "properties": {
                        "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                        "sourceAddressPrefix": source, "destinationAddressPrefix": dest,
                        "access": access, "priority": priority, "direction": direction,
                        "description": f"Default rule {name}",
                    },
                },
                default=True,
            )
        )  # fmt: skip
    return rules


def put_nsg(em: Emulator, req: ArmRequest) -> ArmResponse:
    def build(res: Resource, props: dict[str, Any]) -> None:
        rules = [_rule(res.id, item) for item in props.get("securityRules") or []]
        seen: dict[tuple[str, int], str] = {}
        for rule in rules:
            key = (rule["properties"]["direction"], rule["properties"]["priority"])
            if key in seen:
                raise ArmError(
                    400,
                    "SecurityRuleConflict",
                    f"Security rule {rule['name']} conflicts with rule {seen[key]}. Rules cannot "
                    "have the same Priority and Direction.",
                )
            seen[key] = rule["name"]
        guid = res.properties.get("resourceGuid")
        res.body["properties"] = {
            **common.drop(props, "defaultSecurityRules"),
            "resourceGuid": guid,
            "securityRules": rules,
            "defaultSecurityRules": _default_rules(res.id),
        }

    return _put(em, req, NSG_TYPE, build)


def get_nsg(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _get(em, req, NSG_TYPE)


def list_nsgs(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _list(em, req, NSG_TYPE)


def delete_nsg(em: Emulator, req: ArmRequest) -> ArmResponse:
    def in_use(em: Emulator, res: Resource) -> None:
        for holder in em.store.resources(NIC_TYPE) + em.store.resources(VNET_TYPE):
            refs = [holder.properties.get("networkSecurityGroup")] + [
                s.get("properties", {}).get("networkSecurityGroup")
                for s in holder.properties.get("subnets", [])
            ]
            if any(r and r.get("id", "").lower() == res.key for r in refs):
                raise ArmError(
                    400,
                    "InUseNetworkSecurityGroupCannotBeDeleted",
                    f"Network security group {res.id} cannot be deleted because it is in use by "
                    f"{holder.id}.",
                )

    return _delete(em, req, NSG_TYPE, in_use)


# public IP addresses ----------------------------------------------------------------------


def put_public_ip(em: Emulator, req: ArmRequest) -> ArmResponse:
    def build(res: Resource, props: dict[str, Any]) -> None:
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

    return _put(em, req, PIP_TYPE, build)


def get_public_ip(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _get(em, req, PIP_TYPE)


def list_public_ips(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _list(em, req, PIP_TYPE)


def delete_public_ip(em: Emulator, req: ArmRequest) -> ArmResponse:
    def in_use(_em: Emulator, res: Resource) -> None:
        if res.internal.get("ipConfiguration"):
            raise ArmError(
                400,
                "PublicIPAddressCannotBeDeleted",
                f"Public IP address {res.id} can not be deleted since it is still allocated to "
                f"resource {res.internal['ipConfiguration']}. In order to delete the public IP, "
                "disassociate/detach the Public IP address from the resource.",
            )

    return _delete(em, req, PIP_TYPE, in_use)


# network interfaces -----------------------------------------------------------------------


def put_nic(em: Emulator, req: ArmRequest) -> ArmResponse:
    def build(res: Resource, props: dict[str, Any]) -> None:
        configs = props.get("ipConfigurations")
        if not isinstance(configs, list) or not configs:
            raise invalid_parameter(
                "A network interface needs at least one IP configuration.",
                target="properties.ipConfigurations",
            )
        old_pips = {
            c.get("properties", {}).get("publicIPAddress", {}).get("id", "").lower()
            for c in res.properties.get("ipConfigurations", [])
        } - {""}
        built = []
        new_pips: dict[str, str] = {}
        for index, item in enumerate(configs):
            if not isinstance(item, dict) or not item.get("name"):
                raise invalid_parameter(
                    "Each IP configuration needs a name.", "properties.ipConfigurations"
                )
            config_id = f"{res.id}/ipConfigurations/{item['name']}"
            cprops = common.drop(item.get("properties") or {}, *_READONLY)
            vnet, subnet = _subnet(em, cprops.get("subnet"), config_id)
            if vnet.body["location"] != res.body["location"]:
                raise invalid_parameter(
                    f"Subnet {subnet['id']} is in '{vnet.body['location']}', not in the network "
                    f"interface's region '{res.body['location']}'.",
                    target="properties.ipConfigurations",
                )
            cprops["subnet"] = {"id": subnet["id"]}
            if cprops.get("publicIPAddress"):
                pip = _reference(em, cprops["publicIPAddress"], PIP_TYPE, config_id)
                holder = pip.internal.get("ipConfiguration")
                if holder and not holder.lower().startswith(res.key + "/"):
                    raise ArmError(
                        400,
                        "PublicIPAddressInUse",
                        f"Resource {pip.id} is already in use by {holder}; it cannot be used by "
                        f"{config_id}.",
                    )
                cprops["publicIPAddress"] = {"id": pip.id}
                new_pips[pip.key] = config_id
            cprops.setdefault("privateIPAllocationMethod", "Dynamic")
            if cprops["privateIPAllocationMethod"] == "Dynamic" or not cprops.get(
                "privateIPAddress"
            ):
                cprops["privateIPAddress"] = _private_address(em, subnet)
            cprops.setdefault("privateIPAddressVersion", "IPv4")
            cprops["primary"] = index == 0
            cprops["provisioningState"] = "Succeeded"
            built.append(
                {"id": config_id, "name": item["name"], "etag": _etag(), "type": IPCONFIG_TYPE,
                 "properties": cprops}
            )  # fmt: skip
        nsg = props.get("networkSecurityGroup")
        if nsg:
            _reference(em, nsg, NSG_TYPE, res.id)
            props["networkSecurityGroup"] = {"id": nsg["id"]}
        for pip_key in old_pips - set(new_pips):
            _set_internal(em, pip_key, ipConfiguration=None, endpoint=None)
        for pip_key, config_id in new_pips.items():
            values: dict[str, Any] = {"ipConfiguration": config_id}
            if res.internal.get("endpoint"):
                values["endpoint"] = res.internal["endpoint"]
            _set_internal(em, pip_key, **values)
        res.body["properties"] = {
            **common.drop(props, "virtualMachine", "macAddress"),
            "resourceGuid": res.properties.get("resourceGuid"),
            "ipConfigurations": built,
        }

    return _put(em, req, NIC_TYPE, build)


def _private_address(em: Emulator, subnet: dict[str, Any]) -> str:
    prefix = subnet["properties"].get("addressPrefix") or subnet["properties"]["addressPrefixes"][0]
    net = ipaddress.ip_network(prefix, strict=False)
    used = em.store.next_value(f"private-ip:{subnet['id'].lower()}")
    return str(net.network_address + 3 + used)


def get_nic(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _get(em, req, NIC_TYPE)


def list_nics(em: Emulator, req: ArmRequest) -> ArmResponse:
    return _list(em, req, NIC_TYPE)


def delete_nic(em: Emulator, req: ArmRequest) -> ArmResponse:
    def in_use(_em: Emulator, res: Resource) -> None:
        if res.internal.get("vm"):
            raise ArmError(
                400,
                "NicInUse",
                f"Network Interface {res.id} is used by existing resource {res.internal['vm']}. "
                "In order to delete the network interface, it must be dissociated from the "
                "resource.",
            )

    return _delete(em, req, NIC_TYPE, in_use)


# VM attachments ---------------------------------------------------------------------------


def _nic_public_ips(nic: Resource) -> list[str]:
    ids = []
    for config in nic.properties.get("ipConfigurations", []):
        ref = config.get("properties", {}).get("publicIPAddress")
        if ref:
            ids.append(ref["id"])
    return ids


def attach_nics(em: Emulator, nic_ids: list[str], vm_id: str) -> None:
    for nic_id in nic_ids:
        mac = "-".join(f"{b:02X}" for b in uuid.uuid4().bytes[:6])
        _set_internal(em, nic_id, vm=vm_id, mac=mac)


def publish_endpoint(em: Emulator, nic_ids: list[str], endpoint: dict[str, Any]) -> None:
    """A VM booted: its NICs' public IPs now answer with the VM's address and ssh port."""
    for nic_id in nic_ids:
        _set_internal(em, nic_id, endpoint=endpoint)
        nic = em.store.get(nic_id)
        for pip_id in _nic_public_ips(nic) if nic else []:
            _set_internal(em, pip_id, endpoint=endpoint)


def detach_nics(em: Emulator, nic_ids: list[str], vm_id: str) -> None:
    for nic_id in nic_ids:
        nic = em.store.get(nic_id)
        if nic is None or (nic.internal.get("vm") or "").lower() != vm_id.lower():
            continue
        _set_internal(em, nic_id, vm=None, mac=None, endpoint=None)
        for pip_id in _nic_public_ips(nic):
            _set_internal(em, pip_id, endpoint=None)
