"""Helpers for the emulator tests: real SDK clients against a sandbox emulator, and builders.

Imported by the test modules as ``emulator_helpers`` (a unique name, so it cannot collide with
another directory's conftest). Nothing of azure-core, the SDKs or the emulator is mocked.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from azure.core.rest import HttpRequest, HttpResponse

from imageforge.sandbox.harness import EmulatorHandle

LOCATION = "westus"
MARKETPLACE_GEN2 = {
    "publisher": "Debian",
    "offer": "debian-12",
    "sku": "12-gen2",
    "version": "latest",
}
MARKETPLACE_GEN1 = {"publisher": "Debian", "offer": "debian-12", "sku": "12", "version": "latest"}
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0sandboxtestkey sandbox@test"


class SandboxCredential:
    """A token credential for the sandbox: any bearer token is accepted there."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("sandbox", int(time.time()) + 24 * 3600)


@dataclass
class Clients:
    arm: EmulatorHandle
    compute: Any
    network: Any
    resource: Any

    def send(self, method: str, path: str, body: Any = None, **params: str) -> HttpResponse:
        """A raw ARM request through the SDK pipeline (auth, TLS, retries), to see statuses."""
        url = path if path.startswith("https://") else self.arm.base_url + path
        request = HttpRequest(method, url, params=params or None, json=body)
        response = self.compute._client.send_request(request)
        response.read()
        return response


def make_clients(arm: EmulatorHandle, **kwargs: Any) -> Clients:
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    options = {"base_url": arm.base_url, "connection_verify": str(arm.ca_path), **kwargs}
    credential = SandboxCredential()
    return Clients(
        arm,
        ComputeManagementClient(credential, arm.subscription_id, **options),
        NetworkManagementClient(credential, arm.subscription_id, **options),
        ResourceManagementClient(credential, arm.subscription_id, **options),
    )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def rg_path(clients: Clients, group: str) -> str:
    return f"/subscriptions/{clients.arm.subscription_id}/resourceGroups/{group}"


def gallery_path(clients: Clients, group: str, gallery: str = "gallery") -> str:
    return f"{rg_path(clients, group)}/providers/Microsoft.Compute/galleries/{gallery}"


def make_image(
    clients: Clients,
    group: str,
    *,
    gallery: str = "gallery",
    image: str = "debian-12",
    generation: str = "V2",
    os_type: str = "Linux",
    os_state: str = "Generalized",
) -> Any:
    clients.compute.galleries.begin_create_or_update(
        group, gallery, {"location": LOCATION, "properties": {"description": "test gallery"}}
    ).result()
    return clients.compute.gallery_images.begin_create_or_update(
        group,
        gallery,
        image,
        {
            "location": LOCATION,
            "properties": {
                "osType": os_type,
                "osState": os_state,
                "hyperVGeneration": generation,
                "identifier": {"publisher": "imageforge", "offer": image, "sku": generation},
            },
        },
    ).result()


def make_network(clients: Clients, group: str, name: str, location: str = LOCATION) -> Any:
    """A vnet/subnet, public IP and NIC for one VM; returns the NIC."""
    net = clients.network
    vnet = net.virtual_networks.begin_create_or_update(
        group,
        f"{name}-vnet",
        {
            "location": location,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}],
            },
        },
    ).result()
    pip = net.public_ip_addresses.begin_create_or_update(
        group, f"{name}-ip", {"location": location, "sku": {"name": "Standard"}}
    ).result()
    return net.network_interfaces.begin_create_or_update(
        group,
        f"{name}-nic",
        {
            "location": location,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {
                            "subnet": {"id": vnet.subnets[0].id},
                            "publicIPAddress": {"id": pip.id},
                        },
                    }
                ]
            },
        },
    ).result()


def vm_body(
    nic_id: str, image_reference: dict[str, Any], location: str = LOCATION
) -> dict[str, Any]:
    return {
        "location": location,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {"imageReference": image_reference},
            "osProfile": {
                "computerName": "sandboxvm",
                "adminUsername": "azureuser",
                "linuxConfiguration": {
                    "disablePasswordAuthentication": True,
                    "ssh": {
                        "publicKeys": [
                            {"path": "/home/azureuser/.ssh/authorized_keys", "keyData": SSH_KEY}
                        ]
                    },
                },
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
        },
    }


def make_vm(
    clients: Clients,
    group: str,
    name: str = "vm",
    *,
    image_reference: dict[str, Any] | None = None,
    location: str = LOCATION,
) -> Any:
    nic = make_network(clients, group, name, location)
    return clients.compute.virtual_machines.begin_create_or_update(
        group, name, vm_body(nic.id, image_reference or MARKETPLACE_GEN2, location)
    ).result()


def make_generalized_vm(clients: Clients, group: str, name: str = "buildvm", **kwargs: Any) -> Any:
    vm = make_vm(clients, group, name, **kwargs)
    clients.compute.virtual_machines.begin_deallocate(group, name).result()
    clients.compute.virtual_machines.generalize(group, name)
    return vm


def make_version(
    clients: Clients,
    group: str,
    version: str,
    source_vm_id: str,
    *,
    gallery: str = "gallery",
    image: str = "debian-12",
    publishing: dict[str, Any] | None = None,
) -> Any:
    return clients.compute.gallery_image_versions.begin_create_or_update(
        group,
        gallery,
        image,
        version,
        {
            "location": LOCATION,
            "properties": {
                "publishingProfile": publishing or {"excludeFromLatest": True},
                "storageProfile": {"source": {"virtualMachineId": source_vm_id}},
            },
        },
    ).result()


def begin_version_from_image(
    clients: Clients,
    group: str,
    version: str,
    source_id: str,
    *,
    publishing: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> Any:
    """Start creating ``version`` of gallery/debian-12 from the managed image ``source_id`` with
    exactly ``publishing`` as its publishing profile (and ``tags`` when given); the poller."""
    body: dict[str, Any] = {"location": LOCATION}
    if tags is not None:
        body["tags"] = tags
    body["properties"] = {
        "publishingProfile": publishing,
        "storageProfile": {"source": {"id": source_id}},
    }
    return clients.compute.gallery_image_versions.begin_create_or_update(
        group, "gallery", "debian-12", version, body
    )


def managed_image_id(
    clients: Clients,
    group: str,
    *,
    os_type: str = "Linux",
    generation: str = "V2",
    location: str = LOCATION,
) -> str:
    """The id of a managed image recorded from a (blob) OS disk, created when missing: a cheap
    source for gallery image versions that are bookkeeping only (they cannot boot)."""
    name = f"base-image-{os_type.lower()}-{generation.lower()}-{location}"
    images = clients.compute.images
    try:
        return str(images.get(group, name).id)
    except ResourceNotFoundError:
        pass
    body = {
        "location": location,
        "properties": {
            "hyperVGeneration": generation,
            "storageProfile": {
                "osDisk": {
                    "osType": os_type,
                    "osState": "Generalized",
                    "blobUri": "https://sandbox.blob.core.windows.net/vhds/base-image.vhd",
                }
            },
        },
    }
    return str(images.begin_create_or_update(group, name, body).result().id)


def error_of(response: HttpResponse) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]


def blobs(arm: EmulatorHandle) -> Path:
    return arm.state_dir / "blobs"
