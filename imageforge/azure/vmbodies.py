"""The ARM request bodies of a throw-away VM: NSG, VNet, public IP, NIC and the VM itself.

Pure functions of a ``VmPlan`` (what to create) and the shared ``base`` (location and tags):
no ARM call is made here. The Windows password, when there is one, goes into ``vm_body`` and
no other body.

On the sandbox the public IP's ``ipAddress`` is the VM's loopback address and its tag
``SANDBOX_SSH_PORT_TAG`` the port its sshd listens on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imageforge import tags
from imageforge.config import ImageDefinition

SANDBOX_SSH_PORT_TAG = tags.SANDBOX_SSH_PORT
SSH_PORT = 22
WINRM_HTTPS_PORT = 5986
VNET_PREFIX = "10.42.0.0/16"
SUBNET_PREFIX = "10.42.0.0/24"
_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclass
class VmPlan:
    """What one throw-away VM is: its purpose, image, place, size and user."""

    purpose: str
    run_id: str
    image: ImageDefinition
    region: str
    vm_size: str
    username: str
    image_reference: dict[str, Any]
    allowed_source: str | None
    subnet_id: str | None
    reach_timeout: float | None
    wait: bool
    #: False for a VM from a Specialized image: Azure refuses an osProfile for it ("Parameter
    #: 'osProfile' is not allowed."), so the run's key is added by Run Command (``runcommand``).
    os_profile: bool = True

    @property
    def vm_name(self) -> str:
        return f"{self.purpose}vm"

    @property
    def port(self) -> int:
        """The port the VM is reached on: SSH on Linux, WinRM over HTTPS on Windows."""
        return SSH_PORT if self.image.os == "linux" else WINRM_HTTPS_PORT


def safe_name(text: str, limit: int) -> str:
    """``text`` as a name part: lower case, ``[a-z0-9-]``, at most ``limit`` characters."""
    return _UNSAFE.sub("-", text.lower()).strip("-")[:limit].strip("-") or "x"


def nsg_body(base: Mapping[str, Any], *, port: int, source: str) -> dict[str, Any]:
    """One inbound rule: TCP ``port`` from ``source`` only."""
    rule = {
        "name": "ssh" if port == SSH_PORT else "winrm-https",
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": str(port),
            "sourceAddressPrefix": source,
            "destinationAddressPrefix": "*",
            "access": "Allow",
            "priority": 1000,
            "direction": "Inbound",
        },
    }
    return {**base, "properties": {"securityRules": [rule]}}


def vnet_body(base: Mapping[str, Any]) -> dict[str, Any]:
    """A private network of the VM's own, with one subnet ``default``."""
    return {
        **base,
        "properties": {
            "addressSpace": {"addressPrefixes": [VNET_PREFIX]},
            "subnets": [{"name": "default", "properties": {"addressPrefix": SUBNET_PREFIX}}],
        },
    }


def public_ip_body(base: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **base,
        "sku": {"name": "Standard"},
        "properties": {"publicIPAllocationMethod": "Static"},
    }


def nic_body(
    base: Mapping[str, Any], *, nsg_id: str, subnet_id: str | None, public_ip_id: str | None
) -> dict[str, Any]:
    ip_config: dict[str, Any] = {"subnet": {"id": subnet_id}}
    if public_ip_id is not None:
        ip_config["publicIPAddress"] = {"id": public_ip_id}
    return {
        **base,
        "properties": {
            "networkSecurityGroup": {"id": nsg_id},
            "ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}],
        },
    }


def vm_body(
    plan: VmPlan,
    nic_id: str,
    base: Mapping[str, Any],
    public_key: str | None,
    password: str | None,
) -> dict[str, Any]:
    """The VM's PUT body (the password, on Windows, goes only here); no osProfile when
    ``plan.os_profile`` is False."""
    image = plan.image
    computer = safe_name(f"{plan.purpose}-{plan.run_id}", 15)
    if image.os == "linux":
        os_profile: dict[str, Any] = {
            "computerName": computer,
            "adminUsername": plan.username,
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {
                    "publicKeys": [
                        {
                            "path": f"/home/{plan.username}/.ssh/authorized_keys",
                            "keyData": public_key,
                        }
                    ]
                },
            },
        }
    else:
        os_profile = {
            "computerName": computer,
            "adminUsername": plan.username,
            "adminPassword": password,
            "windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": False},
        }
    props: dict[str, Any] = {
        "hardwareProfile": {"vmSize": plan.vm_size},
        "storageProfile": {
            "imageReference": plan.image_reference,
            "osDisk": {
                "createOption": "FromImage",
                "deleteOption": "Delete",
                "managedDisk": {"storageAccountType": "Standard_LRS"},
            },
        },
        "networkProfile": {
            "networkInterfaces": [
                {"id": nic_id, "properties": {"primary": True, "deleteOption": "Delete"}}
            ]
        },
    }
    if plan.os_profile:
        props["osProfile"] = os_profile
    spec = image.gallery_image
    if spec.hyper_v_generation == "V2" and spec.security_type.startswith("TrustedLaunch"):
        props["securityProfile"] = {
            "securityType": "TrustedLaunch",
            "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
        }
    return {**base, "properties": props}
