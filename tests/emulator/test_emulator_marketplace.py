"""The sandbox marketplace as ComputeRP's VirtualMachineImages serve it, through the SDK.

VirtualMachineImages_List answers a bare array of VirtualMachineImageResource (name, location,
id); VirtualMachineImages_Get one VirtualMachineImage. A base's first version is named after
its snapshot (0.YYYYMMDD.HHMM); the admin API publishes newer ones; a VM's ``latest`` is the
newest, and an unknown version is PlatformImageNotFound.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from emulator_helpers import LOCATION, MARKETPLACE_GEN2, make_vm

from imageforge.errors import SandboxError

BASE = ("Debian", "debian-12", "12-gen2")


def _names(clients) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.name for i in clients.compute.virtual_machine_images.list(LOCATION, *BASE)]


def test_versions_list_get_and_publish(clients, arm):
    first = _names(clients)
    assert len(first) >= 1 and all(n.startswith("0.") for n in first)
    published = arm.admin.call(
        "POST", "/_sandbox/marketplace",
        {"publisher": "debian", "offer": "debian-12", "sku": "12-gen2", "version": "0.29991231.1"},
    )  # fmt: skip
    assert published["version"] == "0.29991231.1"
    names = _names(clients)
    assert names[-1] == "0.29991231.1" and names[:-1] == first
    newest = clients.compute.virtual_machine_images.list(
        LOCATION, *BASE, orderby="name desc", top=1
    )
    assert [i.name for i in newest] == ["0.29991231.1"]
    item = clients.compute.virtual_machine_images.list(LOCATION, *BASE)[0]
    assert item.location == LOCATION
    assert item.id.endswith(f"/Skus/12-gen2/Versions/{first[0]}")
    image = clients.compute.virtual_machine_images.get(LOCATION, *BASE, "0.29991231.1")
    assert image.name == "0.29991231.1"
    assert image.os_disk_image.operating_system == "Linux"
    assert image.hyper_v_generation == "V2"
    with pytest.raises(SandboxError, match="409"):  # not newer than what exists
        arm.admin.call("POST", "/_sandbox/marketplace", {"publisher": "Debian",
                       "offer": "debian-12", "sku": "12-gen2", "version": "0.1.1"})  # fmt: skip


def test_unknown_skus_and_versions_are_not_found(clients):
    with pytest.raises(ResourceNotFoundError):
        clients.compute.virtual_machine_images.list(LOCATION, "Debian", "debian-12", "13-gen2")
    with pytest.raises(ResourceNotFoundError):
        clients.compute.virtual_machine_images.get(LOCATION, *BASE, "9.9.9")


def test_a_vm_boots_the_version_it_names_and_latest_is_the_newest(clients, rg):
    names = _names(clients)
    vm = make_vm(clients, rg, "pinned", image_reference={**MARKETPLACE_GEN2, "version": names[0]})
    assert vm.storage_profile.image_reference.exact_version == names[0]
    latest = make_vm(
        clients, rg, "newest", image_reference={**MARKETPLACE_GEN2, "version": "latest"}
    )
    assert latest.storage_profile.image_reference.exact_version == names[-1]
    with pytest.raises(HttpResponseError) as caught:
        make_vm(clients, rg, "missing", image_reference={**MARKETPLACE_GEN2, "version": "0.1.2"})
    assert caught.value.error.code == "PlatformImageNotFound"
    assert "'Debian:debian-12:12-gen2:0.1.2' is not available" in caught.value.error.message
