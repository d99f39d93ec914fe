"""ARM error codes and statuses, each as Azure answers it, in ARM's error envelope."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import (
    LOCATION,
    MARKETPLACE_GEN1,
    error_of,
    gallery_path,
    make_generalized_vm,
    make_image,
    make_network,
    make_version,
    make_vm,
    managed_image_id,
    rg_path,
    vm_body,
)

API = {"api-version": "2026-03-03"}
VM_API = {"api-version": "2026-04-01"}


def _version_body(clients, rg, **publishing):  # type: ignore[no-untyped-def]
    return {
        "location": LOCATION,
        "properties": {
            "publishingProfile": publishing,
            "storageProfile": {"source": {"id": managed_image_id(clients, rg)}},
        },
    }


def _expect(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    error = error_of(response)
    assert (response.status_code, error["code"]) == (status, code), error
    return error


def test_requests_need_a_bearer_token(clients):
    import requests

    url = clients.arm.base_url + rg_path(clients, "any") + "?api-version=2025-04-01"
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = requests.get(url, headers=headers, verify=str(clients.arm.ca_path), timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "AuthenticationFailed"
    admin = requests.get(
        clients.arm.base_url + "/_sandbox/stats", verify=str(clients.arm.ca_path), timeout=10
    )
    assert admin.status_code == 401


def test_api_versions(clients, rg):
    path = gallery_path(clients, rg)
    _expect(clients.send("GET", path), 400, "MissingApiVersionParameter")
    error = _expect(
        clients.send("GET", path, **{"api-version": "2099-01-01"}), 400, "NoRegisteredProviderFound"
    )
    assert "2026-03-03" in error["message"]
    _expect(
        clients.send("GET", path, **{"api-version": "latest"}), 400, "InvalidApiVersionParameter"
    )
    _expect(
        clients.send("GET", rg_path(clients, rg), **{"api-version": "2099-01-01"}),
        400,
        "InvalidApiVersionParameter",
    )
    # a gallery api-version is not a VM api-version
    _expect(
        clients.send(
            "GET", rg_path(clients, rg) + "/providers/Microsoft.Compute/virtualMachines/x", **API
        ),
        400,
        "NoRegisteredProviderFound",
    )


@pytest.mark.parametrize(
    "name", ["1.0", "1.0.0.0", "a.b.c", "1.0.-1", "2147483648.0.0", "1.0.0-rc"]
)
def test_bad_version_name(clients, rg, name):
    make_image(clients, rg)
    path = gallery_path(clients, rg) + f"/images/debian-12/versions/{name}"
    error = _expect(
        clients.send("PUT", path, _version_body(clients, rg), **API), 400, "InvalidParameter"
    )
    assert error["target"] == "galleryImageVersionName"


def test_not_found_codes(clients, rg):
    gallery = gallery_path(clients, rg)
    _expect(clients.send("GET", gallery, **API), 404, "ResourceNotFound")
    _expect(clients.send("GET", gallery + "/images/x", **API), 404, "ParentResourceNotFound")
    make_image(clients, rg)
    _expect(clients.send("GET", gallery + "/images/nope", **API), 404, "ResourceNotFound")
    _expect(
        clients.send(
            "PUT", gallery + "/images/nope/versions/1.0.0", _version_body(clients, rg), **API
        ),
        404,
        "ParentResourceNotFound",
    )
    missing_rg = gallery_path(clients, "no-such-group")
    _expect(clients.send("GET", missing_rg, **API), 404, "ResourceGroupNotFound")
    with pytest.raises(ResourceNotFoundError):
        clients.compute.gallery_image_versions.get(rg, "gallery", "debian-12", "9.9.9")


def test_cannot_delete_parents_with_children(clients, rg):
    make_image(clients, rg)
    clients.compute.gallery_image_versions.begin_create_or_update(
        rg, "gallery", "debian-12", "1.0.0", _version_body(clients, rg)
    ).result()
    gallery = gallery_path(clients, rg)
    _expect(
        clients.send("DELETE", gallery + "/images/debian-12", **API), 409, "CannotDeleteResource"
    )
    _expect(clients.send("DELETE", gallery, **API), 409, "CannotDeleteResource")


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("osType", "Windows"),
        ("osState", "Specialized"),
        ("hyperVGeneration", "V1"),
        ("identifier", {"publisher": "other", "offer": "debian-12", "sku": "V2"}),
    ],
)
def test_image_definition_fixed_properties(clients, rg, prop, value):
    image = make_image(clients, rg)
    body = clients.send("GET", image.id, **API).json()
    body["properties"][prop] = value
    error = _expect(clients.send("PUT", image.id, body, **API), 409, "PropertyChangeNotAllowed")
    assert prop in error["message"]
    with pytest.raises(HttpResponseError) as raised:
        clients.compute.gallery_images.begin_update(
            rg, "gallery", "debian-12", {"properties": {prop: value}}
        ).result()
    assert raised.value.error.code == "PropertyChangeNotAllowed"


def test_source_vm_must_match_the_definition(clients, rg):
    make_image(clients, rg)  # Generalized, V2
    running = make_vm(clients, rg, "running")
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"

    def body(vm_id: str) -> dict:  # type: ignore[type-arg]
        return {
            "location": LOCATION,
            "properties": {"storageProfile": {"source": {"virtualMachineId": vm_id}}},
        }

    error = _expect(clients.send("PUT", path, body(running.id), **API), 400, "InvalidParameter")
    assert "Specialized" in error["message"] and "generalize" in error["message"]
    gen1 = make_generalized_vm(clients, rg, "gen1", image_reference=MARKETPLACE_GEN1)
    error = _expect(clients.send("PUT", path, body(gen1.id), **API), 400, "InvalidParameter")
    assert "Hyper-V generation" in error["message"] and "V1" in error["message"]


@pytest.mark.parametrize(
    ("publishing", "fragment"),
    [
        ({"targetRegions": [{"name": "eastus"}]}, "must include the region"),
        ({"targetRegions": [{"name": "westus"}, {"name": "West US"}]}, "more than once"),
        (
            {"targetRegions": [{"name": "westus"}, {"name": "moon-north"}]},
            "not a valid Azure region",
        ),
        ({"targetRegions": [{"name": "westus", "regionalReplicaCount": 0}]}, "between 1 and 100"),
        ({"targetRegions": [{"name": "westus", "regionalReplicaCount": 101}]}, "between 1 and 100"),
        ({"replicaCount": 0}, "between 1 and 100"),
        ({"storageAccountType": "Floppy_LRS"}, "storage account type"),
    ],
)
def test_bad_publishing_profiles(clients, rg, publishing, fragment):
    make_image(clients, rg)
    path = gallery_path(clients, rg) + "/images/debian-12/versions/1.0.0"
    error = _expect(
        clients.send("PUT", path, _version_body(clients, rg, **publishing), **API),
        400,
        "InvalidParameter",
    )
    assert fragment in error["message"]
    assert error["target"].startswith("galleryImageVersion.properties.publishingProfile")


def test_version_update_rules(clients, rg):
    make_image(clients, rg)
    vm = make_generalized_vm(clients, rg)
    version = make_version(
        clients,
        rg,
        "1.0.0",
        vm.id,
        publishing={"targetRegions": [{"name": "westus"}, {"name": "eastus"}]},
    )
    for change in (
        {"storageProfile": {"source": {"virtualMachineId": vm.id + "x"}}},
        {"publishingProfile": {"storageAccountType": "Premium_LRS"}},
        {"publishingProfile": {"replicationMode": "Shallow"}},
    ):
        _expect(
            clients.send(
                "PATCH", version.id, {"properties": {"storageProfile": {}, **change}}, **API
            ),
            409,
            "PropertyChangeNotAllowed",
        )
    moved = {"location": "eastus", "properties": {"storageProfile": {}}}
    _expect(clients.send("PATCH", version.id, moved, **API), 400, "InvalidResourceLocation")
    bad = {
        "properties": {
            "storageProfile": {},
            "publishingProfile": {"targetRegions": [{"name": "eastus"}]},
        }
    }
    _expect(clients.send("PATCH", version.id, bad, **API), 400, "InvalidParameter")

    protect = {
        "properties": {
            "storageProfile": {},
            "safetyProfile": {"allowDeletionOfReplicatedLocations": False},
        }
    }
    clients.compute.gallery_image_versions.begin_update(
        rg, "gallery", "debian-12", "1.0.0", protect
    ).result()
    shrink = {
        "properties": {
            "storageProfile": {},
            "publishingProfile": {"targetRegions": [{"name": "westus"}]},
        }
    }
    error = _expect(clients.send("PATCH", version.id, shrink, **API), 409, "OperationNotAllowed")
    assert "allowDeletionOfReplicatedLocations" in error["message"]


def test_vm_image_refusals(clients, rg):
    nic = make_network(clients, rg, "refused")
    vms = rg_path(clients, rg) + "/providers/Microsoft.Compute/virtualMachines/"
    unknown = {
        "publisher": "Canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    }
    error = _expect(
        clients.send("PUT", vms + "u", vm_body(nic.id, unknown), **VM_API),
        404,
        "PlatformImageNotFound",
    )
    assert "Debian:debian-12:12-gen2" in error["message"]
    windows = {
        "publisher": "MicrosoftWindowsServer",
        "offer": "WindowsServer",
        "sku": "2022-datacenter-g2",
        "version": "latest",
    }
    error = _expect(
        clients.send("PUT", vms + "w", vm_body(nic.id, windows), **VM_API), 400, "InvalidParameter"
    )
    assert "Windows cannot run in the sandbox" in error["message"]

    win_image = make_image(clients, rg, image="windows-2022", os_type="Windows")
    error = _expect(
        clients.send("PUT", vms + "w2", vm_body(nic.id, {"id": win_image.id}), **VM_API),
        400,
        "InvalidParameter",
    )
    assert "Windows cannot run in the sandbox" in error["message"]


def test_vm_from_version_needs_replication_to_its_region(clients, rg):
    make_image(clients, rg)
    vm = make_generalized_vm(clients, rg)
    version = make_version(clients, rg, "1.0.0", vm.id)  # westus only
    nic = make_network(clients, rg, "east", location="eastus")
    path = rg_path(clients, rg) + "/providers/Microsoft.Compute/virtualMachines/east"
    error = _expect(
        clients.send("PUT", path, vm_body(nic.id, {"id": version.id}, "eastus"), **VM_API),
        404,
        "GalleryImageNotFound",
    )
    assert "East US" in error["message"]


def test_generalize_needs_a_deallocated_vm(clients, rg):
    make_vm(clients, rg, "busy")
    path = rg_path(clients, rg) + "/providers/Microsoft.Compute/virtualMachines/busy/generalize"
    _expect(clients.send("POST", path, **VM_API), 409, "OperationNotAllowed")


def test_network_reference_and_in_use_errors(clients, rg):
    net = rg_path(clients, rg) + "/providers/Microsoft.Network"
    nic_body = {
        "location": LOCATION,
        "properties": {
            "ipConfigurations": [
                {
                    "name": "c",
                    "properties": {"subnet": {"id": net + "/virtualNetworks/none/subnets/default"}},
                }
            ]
        },
    }
    _expect(
        clients.send(
            "PUT", net + "/networkInterfaces/n", nic_body, **{"api-version": "2026-03-01"}
        ),
        400,
        "InvalidResourceReference",
    )
    vm = make_vm(clients, rg, "user")
    nic_id = vm.network_profile.network_interfaces[0].id
    _expect(clients.send("DELETE", nic_id, **{"api-version": "2026-03-01"}), 400, "NicInUse")
    pip_id = net + "/publicIPAddresses/user-ip"
    _expect(
        clients.send("DELETE", pip_id, **{"api-version": "2026-03-01"}),
        400,
        "PublicIPAddressCannotBeDeleted",
    )
    vnet_id = net + "/virtualNetworks/user-vnet"
    _expect(
        clients.send("DELETE", vnet_id, **{"api-version": "2026-03-01"}),
        400,
        "InUseSubnetCannotBeDeleted",
    )


def test_unknown_paths_and_bad_bodies(clients, rg):
    _expect(
        clients.send("GET", rg_path(clients, rg) + "/providers/Microsoft.Foo/bars/x", **API),
        404,
        "InvalidResourceType",
    )
    gallery = gallery_path(clients, rg)
    _expect(clients.send("PUT", gallery, {"properties": {}}, **API), 400, "LocationRequired")
    _expect(
        clients.send("PUT", gallery, {"location": "moon"}, **API),
        400,
        "LocationNotAvailableForResourceType",
    )
    _expect(
        clients.send("PUT", gallery_path(clients, rg, "bad-name"), {"location": LOCATION}, **API),
        400,
        "InvalidParameter",
    )
    tags = {f"t{i}": "v" for i in range(51)}
    _expect(
        clients.send("PUT", gallery, {"location": LOCATION, "tags": tags}, **API),
        400,
        "InvalidTagCount",
    )
