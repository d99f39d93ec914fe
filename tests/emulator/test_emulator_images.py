"""Managed images (Microsoft.Compute/images) through the real SDK: create from a generalized VM
or a disk, get, list, delete, and gallery image versions created from them.

Packer 1.6's built-in azure-arm publishes to a gallery only through a managed image, and
imageforge deletes that image after publishing: these are the calls that path makes.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import (
    LOCATION,
    begin_version_from_image,
    blobs,
    error_of,
    make_generalized_vm,
    make_image,
    make_vm,
    managed_image_id,
    rg_path,
)

API = {"api-version": "2026-04-01"}
GALLERY_API = {"api-version": "2026-03-03"}


def _image_path(clients, rg, name):  # type: ignore[no-untyped-def]
    return f"{rg_path(clients, rg)}/providers/Microsoft.Compute/images/{name}"


def _from_vm(vm_id, location=LOCATION, **properties):  # type: ignore[no-untyped-def]
    return {
        "location": location,
        "tags": {"imageforge.stage": "built"},
        "properties": {"sourceVirtualMachine": {"id": vm_id}, **properties},
    }


def _version_from(clients, rg, version, source_id):  # type: ignore[no-untyped-def]
    """Start a version of ``source_id`` tagged built and excluded from latest; the poller."""
    return begin_version_from_image(
        clients,
        rg,
        version,
        source_id,
        publishing={"excludeFromLatest": True},
        tags={"imageforge.stage": "built"},
    )


def _expect(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    error = error_of(response)
    assert (response.status_code, error["code"]) == (status, code), error
    return error


def _region_blobs(arm) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.name for p in (blobs(arm) / LOCATION).glob("*")}


def test_image_from_a_generalized_vm_answers_like_azure(clients, rg, arm):
    vm = make_generalized_vm(clients, rg)
    created = clients.send("PUT", _image_path(clients, rg, "raw-image"), _from_vm(vm.id), **API)
    assert created.status_code == 201
    body = created.json()
    assert body["type"] == "Microsoft.Compute/images"
    assert body["location"] == LOCATION
    assert body["properties"]["provisioningState"] == "Creating"
    assert (
        "/providers/Microsoft.Compute/locations/westus/operations/"
        in (created.headers["Azure-AsyncOperation"])
    )
    assert "monitor=true" in created.headers["Location"]
    assert int(created.headers["Retry-After"]) >= 1
    assert clients.send("GET", created.headers["Azure-AsyncOperation"]).json()["status"] == (
        "Succeeded"
    )

    image = clients.compute.images.begin_create_or_update(
        rg, "packer-image", _from_vm(vm.id)
    ).result()
    assert image.provisioning_state == "Succeeded"
    assert image.id == _image_path(clients, rg, "packer-image")
    assert image.source_virtual_machine.id == vm.id
    assert image.hyper_v_generation == "V2"
    assert image.tags == {"imageforge.stage": "built"}
    os_disk = image.storage_profile.os_disk
    assert (os_disk.os_type, os_disk.os_state) == ("Linux", "Generalized")
    assert os_disk.managed_disk.id == vm.storage_profile.os_disk.managed_disk.id
    assert image.storage_profile.data_disks == []
    assert image.storage_profile.zone_resilient is False

    shown = clients.compute.images.get(rg, "packer-image")
    assert shown.as_dict() == image.as_dict()
    in_group = [i.name for i in clients.compute.images.list_by_resource_group(rg)]
    assert in_group == ["raw-image", "packer-image"]
    everywhere = [i.id for i in clients.compute.images.list()]
    assert {image.id, _image_path(clients, rg, "raw-image")} <= set(everywhere)


def test_a_version_from_a_captured_image_boots_even_after_the_image_is_deleted(clients, rg, arm):
    make_image(clients, rg)
    vm = make_generalized_vm(clients, rg)
    before = _region_blobs(arm)
    image = clients.compute.images.begin_create_or_update(rg, "mi", _from_vm(vm.id)).result()
    assert len(_region_blobs(arm) - before) == 1  # the VM's disk, captured into the region

    version = _version_from(clients, rg, "1.0.0", image.id).result()
    assert version.provisioning_state == "Succeeded"
    assert version.storage_profile.source.id == image.id
    assert version.publishing_profile.exclude_from_latest is True
    assert version.tags == {"imageforge.stage": "built"}
    booted = make_vm(clients, rg, "first", image_reference={"id": version.id})
    assert booted.provisioning_state == "Succeeded"

    deleted = clients.send("DELETE", image.id, **API)
    assert deleted.status_code == 202
    assert "/locations/westus/operations/" in deleted.headers["Azure-AsyncOperation"]
    assert clients.send("GET", deleted.headers["Azure-AsyncOperation"]).json()["status"] == (
        "Succeeded"
    )
    with pytest.raises(ResourceNotFoundError) as caught:
        clients.compute.images.get(rg, "mi")
    assert caught.value.error.code == "ResourceNotFound"
    assert caught.value.error.message.startswith(
        f"The Resource 'Microsoft.Compute/images/mi' under resource group '{rg}' was not found."
    )
    assert len(_region_blobs(arm) - before) == 1  # the image's copy went, the version's stays
    again = make_vm(clients, rg, "second", image_reference={"id": version.id})
    assert again.provisioning_state == "Succeeded"


def test_delete_is_a_long_running_operation_and_a_missing_image_answers_204(clients, rg):
    clients.compute.images.begin_create_or_update(
        rg, "gone", _from_vm(make_generalized_vm(clients, rg).id)
    ).result()
    clients.compute.images.begin_delete(rg, "gone").result()
    assert [i.name for i in clients.compute.images.list_by_resource_group(rg)] == []
    assert clients.send("DELETE", _image_path(clients, rg, "gone"), **API).status_code == 204
    clients.compute.images.begin_delete(rg, "gone").result()  # nothing to delete is fine
    missing_group = _image_path(clients, "no-such-rg", "gone")
    _expect(clients.send("DELETE", missing_group, **API), 404, "ResourceGroupNotFound")
    _expect(clients.send("GET", missing_group, **API), 404, "ResourceGroupNotFound")


def test_an_image_of_a_vm_that_is_not_generalized_is_refused(clients, rg):
    running = make_vm(clients, rg, "running")
    with pytest.raises(HttpResponseError) as caught:
        clients.compute.images.begin_create_or_update(rg, "mi", _from_vm(running.id))
    assert caught.value.status_code == 409
    assert caught.value.error.code == "OperationNotAllowed"
    assert caught.value.error.message == (
        "The operation 'Create Image' requires the Virtual Machine 'running' to be Generalized."
    )
    assert [i.name for i in clients.compute.images.list_by_resource_group(rg)] == []


def test_bad_image_requests_are_refused_as_azure_refuses_them(clients, rg):
    vm = make_generalized_vm(clients, rg)
    path = _image_path(clients, rg, "mi")
    missing_vm = vm.id.rsplit("/", 1)[0] + "/nosuchvm"
    error = _expect(clients.send("PUT", path, _from_vm(missing_vm), **API), 404, "NotFound")
    assert error["target"] == "properties.sourceVirtualMachine.id"
    error = _expect(
        clients.send("PUT", path, _from_vm(vm.id, location="eastus"), **API),
        400,
        "InvalidParameter",
    )
    assert "same region" in error["message"]
    error = _expect(
        clients.send("PUT", path, _from_vm(vm.id, hyperVGeneration="V1"), **API),
        400,
        "InvalidParameter",
    )
    assert error["target"] == "properties.hyperVGeneration"
    no_source = {"location": LOCATION, "properties": {}}
    _expect(clients.send("PUT", path, no_source, **API), 400, "InvalidParameter")
    no_location = {"properties": {"sourceVirtualMachine": {"id": vm.id}}}
    _expect(clients.send("PUT", path, no_location, **API), 400, "LocationRequired")
    bad_name = _image_path(clients, rg, "-bad-")
    _expect(clients.send("PUT", bad_name, _from_vm(vm.id), **API), 400, "InvalidParameter")
    two_disks = {
        "location": LOCATION,
        "properties": {
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "blobUri": "https://x.blob.core.windows.net/vhds/a.vhd",
                    "snapshot": {"id": "/subscriptions/s/resourceGroups/g/snapshots/x"},
                }
            }
        },
    }
    _expect(clients.send("PUT", path, two_disks, **API), 400, "InvalidParameter")
    error = _expect(
        clients.send("PUT", path, _from_vm(vm.id), **{"api-version": "2019-01-01"}),
        400,
        "NoRegisteredProviderFound",
    )
    assert "'Microsoft.Compute/images'" in error["message"]
    assert [i.name for i in clients.compute.images.list_by_resource_group(rg)] == []


def test_an_existing_image_keeps_its_source_and_only_its_tags_change(clients, rg):
    vm = make_generalized_vm(clients, rg)
    other = make_generalized_vm(clients, rg, "othervm")
    clients.compute.images.begin_create_or_update(rg, "mi", _from_vm(vm.id)).result()
    path = _image_path(clients, rg, "mi")
    error = _expect(
        clients.send("PUT", path, _from_vm(other.id), **API), 409, "PropertyChangeNotAllowed"
    )
    assert error["target"] == "sourceVirtualMachine"
    retagged = clients.compute.images.begin_create_or_update(
        rg, "mi", {**_from_vm(vm.id), "tags": {"keep": "me"}}
    ).result()
    assert retagged.tags == {"keep": "me"}
    assert retagged.source_virtual_machine.id == vm.id


def test_an_image_of_a_disk_is_recorded_and_its_version_cannot_boot(clients, rg):
    make_image(clients, rg)
    image_id = managed_image_id(clients, rg)
    image = clients.compute.images.get(rg, image_id.rsplit("/", 1)[-1])
    assert image.source_virtual_machine is None
    assert image.hyper_v_generation == "V2"
    assert image.storage_profile.os_disk.blob_uri.endswith(".vhd")
    version = _version_from(clients, rg, "1.0.0", image_id).result()
    assert version.provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as caught:
        make_vm(clients, rg, "fromdisk", image_reference={"id": version.id})
    assert caught.value.error.code == "InvalidParameter"
    assert "managed image of a disk" in caught.value.error.message


def test_a_version_needs_its_managed_image_to_exist_and_to_fit(clients, rg):
    make_image(clients, rg)
    path = rg_path(clients, rg) + "/providers/Microsoft.Compute/galleries/gallery"
    path += "/images/debian-12/versions/1.0.0"

    def body(source_id: str) -> dict:  # type: ignore[type-arg]
        return {
            "location": LOCATION,
            "properties": {"storageProfile": {"source": {"id": source_id}}},
        }

    missing = _image_path(clients, rg, "nosuchimage")
    error = _expect(clients.send("PUT", path, body(missing), **GALLERY_API), 404, "NotFound")
    assert error["target"] == "galleryImageVersion.properties.storageProfile.source.id"
    assert missing in error["message"]
    gen1 = managed_image_id(clients, rg, generation="V1")
    error = _expect(clients.send("PUT", path, body(gen1), **GALLERY_API), 400, "InvalidParameter")
    assert "Hyper-V generation" in error["message"]
    windows = managed_image_id(clients, rg, os_type="Windows")
    error = _expect(
        clients.send("PUT", path, body(windows), **GALLERY_API), 400, "InvalidParameter"
    )
    assert "OS type" in error["message"]
    elsewhere = managed_image_id(clients, rg, location="eastus")
    error = _expect(
        clients.send("PUT", path, body(elsewhere), **GALLERY_API), 400, "InvalidParameter"
    )
    assert "region" in error["message"]
    assert (
        list(
            clients.compute.gallery_image_versions.list_by_gallery_image(rg, "gallery", "debian-12")
        )
        == []
    )


def test_resource_group_delete_removes_the_captured_copy(clients, arm):
    group = "images-teardown-rg"
    clients.resource.resource_groups.create_or_update(group, {"location": LOCATION})
    vm = make_generalized_vm(clients, group)
    before = _region_blobs(arm)
    clients.compute.images.begin_create_or_update(group, "mi", _from_vm(vm.id)).result()
    assert len(_region_blobs(arm) - before) == 1
    clients.resource.resource_groups.begin_delete(group).result()
    assert _region_blobs(arm) - before == set()
    assert not [i for i in clients.compute.images.list() if f"/{group}/" in i.id.lower()]
