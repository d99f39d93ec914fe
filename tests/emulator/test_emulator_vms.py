"""Virtual machines, their network, "latest", resource group teardown and TLS trust."""

from __future__ import annotations

import ipaddress
import ssl

import pytest
from azure.core.exceptions import ServiceRequestError
from cryptography import x509
from emulator_helpers import (
    LOCATION,
    MARKETPLACE_GEN2,
    blobs,
    make_clients,
    make_generalized_vm,
    make_image,
    make_network,
    make_version,
    make_vm,
    rg_path,
    vm_body,
)

from imageforge.sandbox.backend import SANDBOX_SSH_PORT


def _statuses(view) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.code for s in view.statuses]


def test_vm_lifecycle(clients, rg, arm):
    compute, network = clients.compute, clients.network
    vms_before = arm.status()["vms"]
    vm = make_vm(clients, rg, "web")
    assert vm.provisioning_state == "Succeeded"
    assert vm.storage_profile.image_reference.exact_version
    assert vm.os_profile.admin_username == "azureuser"
    assert vm.os_profile.admin_password is None

    shown = compute.virtual_machines.get(rg, "web", expand="instanceView")
    assert "PowerState/running" in _statuses(shown.instance_view)
    assert (
        _statuses(compute.virtual_machines.instance_view(rg, "web"))[0]
        == "ProvisioningState/succeeded"
    )

    pip = network.public_ip_addresses.get(rg, "web-ip")
    address = ipaddress.ip_address(pip.ip_address)
    assert address.is_loopback and str(address) != "127.0.0.1"
    assert pip.tags["imageforge.sandbox-ssh-port"] == str(SANDBOX_SSH_PORT)
    nic = network.network_interfaces.get(rg, "web-nic")
    assert nic.virtual_machine.id == vm.id
    assert pip.ip_configuration.id == nic.ip_configurations[0].id
    assert arm.status()["vms"] == vms_before + 1

    other = make_vm(clients, rg, "db")
    other_ip = network.public_ip_addresses.get(rg, "db-ip").ip_address
    assert other_ip != pip.ip_address and other.vm_id != vm.vm_id

    compute.virtual_machines.begin_deallocate(rg, "web").result()
    assert "PowerState/deallocated" in _statuses(compute.virtual_machines.instance_view(rg, "web"))
    compute.virtual_machines.generalize(rg, "web")
    assert "OSState/generalized" in _statuses(compute.virtual_machines.instance_view(rg, "web"))

    deleted = clients.send("DELETE", vm.id, **{"api-version": "2026-04-01"})
    assert deleted.status_code == 202
    assert (
        "/providers/Microsoft.Compute/locations/westus/operations/"
        in deleted.headers["Azure-AsyncOperation"]
    )
    assert (
        clients.send("GET", deleted.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    )
    assert clients.send("GET", vm.id, **{"api-version": "2026-04-01"}).status_code == 404
    assert network.public_ip_addresses.get(rg, "web-ip").ip_address is None
    assert network.network_interfaces.get(rg, "web-nic").virtual_machine is None


def test_vm_put_answers_201_with_compute_lro_headers(clients, rg):
    nic = make_network(clients, rg, "raw")
    path = rg_path(clients, rg) + "/providers/Microsoft.Compute/virtualMachines/raw"
    created = clients.send(
        "PUT", path, vm_body(nic.id, MARKETPLACE_GEN2), **{"api-version": "2026-04-01"}
    )
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Creating"
    assert "adminPassword" not in created.json()["properties"]["osProfile"]
    assert int(created.headers["Retry-After"]) >= 1
    status = clients.send("GET", created.headers["Azure-AsyncOperation"]).json()
    assert status["status"] == "Succeeded"


def test_latest_follows_exclude_from_latest(clients, rg):
    make_image(clients, rg)
    vm = make_generalized_vm(clients, rg)
    both = [{"name": "westus"}, {"name": "eastus"}]
    make_version(clients, rg, "1.0.0", vm.id, publishing={"targetRegions": both})
    make_version(
        clients, rg, "2.0.0", vm.id, publishing={"targetRegions": both, "excludeFromLatest": True}
    )
    make_version(
        clients,
        rg,
        "1.5.0",
        vm.id,
        publishing={
            "targetRegions": [{"name": "westus"}, {"name": "eastus", "excludeFromLatest": True}]
        },
    )
    image_id = (
        f"{rg_path(clients, rg)}/providers/Microsoft.Compute/galleries/gallery/images/debian-12"
    )
    west = make_vm(clients, rg, "west", image_reference={"id": image_id})
    assert west.storage_profile.image_reference.exact_version == "1.5.0"
    east = make_vm(
        clients,
        rg,
        "east",
        image_reference={"id": image_id + "/versions/latest"},
        location="eastus",
    )
    assert east.storage_profile.image_reference.exact_version == "1.0.0"
    pinned = make_vm(clients, rg, "pinned", image_reference={"id": image_id + "/versions/2.0.0"})
    assert pinned.storage_profile.image_reference.exact_version == "2.0.0"


def test_resource_group_delete_takes_everything_with_it(clients, arm):
    group = "teardown-rg"
    clients.resource.resource_groups.create_or_update(group, {"location": LOCATION})
    make_image(clients, group)
    vm = make_generalized_vm(clients, group)
    version = make_version(clients, group, "1.0.0", vm.id)
    make_vm(clients, group, "booted", image_reference={"id": version.id})
    before = arm.status()
    blob_count = len(list(blobs(arm).glob("*/*")))
    clients.resource.resource_groups.begin_delete(group).result()
    after = arm.status()
    assert after["vms"] == before["vms"] - 2
    assert len(list(blobs(arm).glob("*/*"))) == blob_count - 1
    assert clients.resource.resource_groups.check_existence(group) is False
    listed = clients.send(
        "GET",
        f"/subscriptions/{arm.subscription_id}/resourcegroups",
        **{"api-version": "2025-04-01"},
    )
    assert group not in [g["name"] for g in listed.json()["value"]]


def test_certificate_verification_is_on(arm, rg):
    untrusting = make_clients(arm, connection_verify=True, retry_total=0)
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.resource.resource_groups.get(rg)
    cert = x509.load_pem_x509_certificate((arm.ca_path.parent / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    by_name = make_clients(arm, base_url=arm.base_url.replace("127.0.0.1", "localhost"))
    assert by_name.resource.resource_groups.get(rg).name == rg
    ssl.create_default_context(cafile=str(arm.ca_path))  # the CA file is a valid trust store
