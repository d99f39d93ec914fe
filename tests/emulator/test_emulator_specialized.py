"""VMs from gallery image versions of a Specialized image definition: no osProfile.

A version made from a VM that was deallocated but not generalized is Specialized; its VMs keep
the source VM's identity, so Azure refuses an osProfile for them (InvalidParameter "Parameter
'osProfile' is not allowed.") where a generalized image requires one.
"""

from __future__ import annotations

import pytest
from emulator_helpers import (
    MARKETPLACE_GEN2,
    error_of,
    gallery_path,
    make_generalized_vm,
    make_image,
    make_network,
    make_version,
    make_vm,
    rg_path,
    vm_body,
)

API = {"api-version": "2026-04-01"}
NOT_ALLOWED = "Parameter 'osProfile' is not allowed."
MISSING = "Required parameter 'osProfile' is missing (null)."


def _vm_path(clients, group: str, name: str) -> str:
    return f"{rg_path(clients, group)}/providers/Microsoft.Compute/virtualMachines/{name}"


def _specialized_version(clients, group: str) -> str:
    """A Specialized definition's version 1.0.0 (in "latest") from a deallocated build VM."""
    make_image(clients, group, image="spec", os_state="Specialized")
    build = make_vm(clients, group, "build")
    clients.compute.virtual_machines.begin_deallocate(group, "build").result()
    version = make_version(
        clients, group, "1.0.0", build.id, image="spec", publishing={"excludeFromLatest": False}
    )
    assert version.provisioning_state == "Succeeded"
    return str(version.id)


def _put(clients, group: str, name: str, image_id: str, *, os_profile: bool):
    nic = make_network(clients, group, name)
    body = vm_body(nic.id, {"id": image_id})
    if not os_profile:
        del body["properties"]["osProfile"]
    return clients.send("PUT", _vm_path(clients, group, name), body, **API)


def test_a_specialized_version_refuses_an_os_profile(clients, rg):
    version_id = _specialized_version(clients, rg)
    answer = _put(clients, rg, "withprofile", version_id, os_profile=True)
    assert answer.status_code == 400
    assert error_of(answer) == {
        "code": "InvalidParameter",
        "message": NOT_ALLOWED,
        "target": "osProfile",
    }
    assert clients.send("GET", _vm_path(clients, rg, "withprofile"), **API).status_code == 404


def test_a_vm_from_a_specialized_version_has_no_os_profile(clients, rg):
    version_id = _specialized_version(clients, rg)
    nic = make_network(clients, rg, "spec")
    body = vm_body(nic.id, {"id": version_id})
    del body["properties"]["osProfile"]
    vm = clients.compute.virtual_machines.begin_create_or_update(rg, "spec", body).result()
    assert vm.provisioning_state == "Succeeded"
    assert vm.os_profile is None
    assert vm.storage_profile.image_reference.exact_version == "1.0.0"
    shown = clients.send("GET", _vm_path(clients, rg, "spec"), **API).json()
    assert "osProfile" not in shown["properties"]
    view = clients.compute.virtual_machines.instance_view(rg, "spec")
    assert "PowerState/running" in [s.code for s in view.statuses]
    # it runs commands like any running VM
    result = clients.compute.virtual_machines.begin_run_command(
        rg, "spec", {"commandId": "RunShellScript", "script": ["true"]}
    ).result()
    assert result.value[0].code == "ProvisioningState/succeeded"


@pytest.mark.parametrize("suffix", ["", "/versions/latest"])
def test_the_definition_or_latest_of_a_specialized_image_refuses_an_os_profile(clients, rg, suffix):
    _specialized_version(clients, rg)
    image_id = f"{gallery_path(clients, rg)}/images/spec{suffix}"
    refused = _put(clients, rg, "refused", image_id, os_profile=True)
    assert refused.status_code == 400
    assert error_of(refused)["message"] == NOT_ALLOWED
    created = _put(clients, rg, "made", image_id, os_profile=False)
    assert created.status_code == 201, created.text()
    assert "osProfile" not in created.json()["properties"]
    vm = clients.compute.virtual_machines.get(rg, "made")
    assert vm.provisioning_state == "Succeeded" and vm.os_profile is None


def test_a_generalized_version_still_needs_an_os_profile(clients, rg):
    make_image(clients, rg)
    build = make_generalized_vm(clients, rg)
    version = make_version(clients, rg, "1.0.0", build.id)
    answer = _put(clients, rg, "noprofile", str(version.id), os_profile=False)
    assert answer.status_code == 400
    error = error_of(answer)
    assert error == {"code": "InvalidParameter", "message": MISSING, "target": "osProfile"}
    made = _put(clients, rg, "withprofile", str(version.id), os_profile=True)
    assert made.status_code == 201
    assert made.json()["properties"]["osProfile"]["adminUsername"] == "azureuser"


def test_a_marketplace_image_still_needs_an_os_profile(clients, rg):
    nic = make_network(clients, rg, "market")
    body = vm_body(nic.id, MARKETPLACE_GEN2)
    del body["properties"]["osProfile"]
    answer = clients.send("PUT", _vm_path(clients, rg, "market"), body, **API)
    assert answer.status_code == 400
    assert error_of(answer)["message"] == MISSING


def test_a_vm_from_a_specialized_version_can_be_captured_again(clients, rg):
    """Specialized all the way: a specialized VM, deallocated, is a new specialized version."""
    version_id = _specialized_version(clients, rg)
    assert _put(clients, rg, "second", version_id, os_profile=False).status_code == 201
    second = clients.compute.virtual_machines.get(rg, "second")
    clients.compute.virtual_machines.begin_deallocate(rg, "second").result()
    again = make_version(clients, rg, "2.0.0", second.id, image="spec")
    assert again.provisioning_state == "Succeeded"
    assert _put(clients, rg, "third", str(again.id), os_profile=False).status_code == 201
