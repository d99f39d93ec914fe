"""Network security groups (``networkSecurityGroups/{n}``) and their security rules.

A PUT gives the whole rule list: every rule needs a name, a priority in 100..4096, a direction,
access and protocol from Azure's sets, and no two rules may share priority and direction
(SecurityRuleConflict). Azure's six default rules are always added as
``defaultSecurityRules``. An NSG still referenced by a NIC or a subnet cannot be deleted.
"""

from __future__ import annotations

from typing import Any

from imageforge.sandbox.emulator.armerrors import ArmError, invalid_parameter
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.handlers.network import base
from imageforge.sandbox.emulator.messages import ArmRequest
from imageforge.sandbox.emulator.store import Resource

RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"
DEFAULT_RULE_TYPE = "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"
_DEFAULT_RULES = (
    ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*"),
    ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*"),
    ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet"),
    ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*"),
)
_CHOICES = (
    ("direction", ("Inbound", "Outbound")),
    ("access", ("Allow", "Deny")),
    ("protocol", ("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")),
)


def _rule(nsg_id: str, item: Any, *, default: bool = False) -> dict[str, Any]:
    if not isinstance(item, dict) or not item.get("name"):
        raise invalid_parameter(
            "Each security rule needs a name.", target="properties.securityRules"
        )
    props = common.drop(item.get("properties") or {}, *base.READONLY)
    priority = props.get("priority")
    if not default and (not isinstance(priority, int) or not 100 <= priority <= 4096):
        raise ArmError(
            400,
            "SecurityRuleInvalidPriority",
            f"Security rule {item['name']} has invalid priority {priority}. Value provided: "
            f"{priority} Allowed range 100-4096.",
        )
    for key, allowed in _CHOICES:
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
        "etag": base.etag(),
        "type": DEFAULT_RULE_TYPE if default else RULE_TYPE,
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


def _build(_em: Emulator, _req: ArmRequest, res: Resource, props: dict[str, Any]) -> None:
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


def _in_use(em: Emulator, res: Resource) -> None:
    for holder in em.store.resources(base.NIC_TYPE) + em.store.resources(base.VNET_TYPE):
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


NSGS = base.NetworkType(
    base.NSG_TYPE,
    "networkSecurityGroups",
    "networkSecurityGroupName",
    build=_build,
    in_use=_in_use,
)
