"""VM sizes: a size that cannot boot the image's Hyper-V generation is refused as Azure does.

Azure answers 400 BadRequest "The selected VM size 'X' cannot boot Hypervisor Generation 'N'"
on the VM PUT (create or resize); every other size is accepted (sizes are not emulated).
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from emulator_helpers import MARKETPLACE_GEN1, MARKETPLACE_GEN2, make_network, make_vm, vm_body


def _put(clients, rg, name, image_reference, size):  # type: ignore[no-untyped-def]
    nic = make_network(clients, rg, name)
    body = vm_body(nic.id, image_reference)
    body["properties"]["hardwareProfile"] = {"vmSize": size}
    return clients.compute.virtual_machines.begin_create_or_update(rg, name, body).result()


@pytest.mark.parametrize(
    ("image_reference", "size", "generation"),
    [
        (MARKETPLACE_GEN2, "Standard_A2_v2", "2"),
        (MARKETPLACE_GEN2, "Basic_A0", "2"),
        (MARKETPLACE_GEN2, "Standard_D1_v2", "2"),
        (MARKETPLACE_GEN2, "Standard_NC6_Promo", "2"),
        (MARKETPLACE_GEN1, "Standard_M208ms_v2", "1"),
        (MARKETPLACE_GEN1, "Standard_D2ads_v6", "1"),
        (MARKETPLACE_GEN1, "Standard_NC24ads_A100_v4", "1"),
    ],
)
def test_a_size_that_cannot_boot_the_generation_is_refused(
    clients, rg, image_reference, size, generation
):
    with pytest.raises(HttpResponseError) as refused:
        _put(clients, rg, "vm", image_reference, size)
    assert refused.value.status_code == 400
    assert refused.value.error.code == "BadRequest"
    assert refused.value.error.message.startswith(
        f"The selected VM size '{size}' cannot boot Hypervisor Generation '{generation}'. "
    )
    assert "https://aka.ms/azuregen2vm" in refused.value.error.message
    assert [vm.name for vm in clients.compute.virtual_machines.list(rg)] == []


@pytest.mark.parametrize(
    ("image_reference", "size"),
    [
        (MARKETPLACE_GEN2, "Standard_DS2_v2"),
        (MARKETPLACE_GEN2, "Standard_D2s_v5"),
        (MARKETPLACE_GEN2, "Standard_B2s"),
        (MARKETPLACE_GEN1, "Standard_A2_v2"),
        (MARKETPLACE_GEN1, "Standard_D4s_v5"),
    ],
)
def test_a_size_that_boots_the_generation_is_accepted(clients, rg, image_reference, size):
    vm = _put(clients, rg, "vm", image_reference, size)
    assert vm.provisioning_state == "Succeeded"
    assert vm.hardware_profile.vm_size == size


def test_resizing_to_a_size_of_the_other_generation_is_refused(clients, rg):
    vm = make_vm(clients, rg, "web")
    body = {"location": vm.location, "properties": {"hardwareProfile": {"vmSize": "Basic_A1"}}}
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_create_or_update(rg, "web", body).result()
    assert refused.value.error.code == "BadRequest"
    assert "cannot boot Hypervisor Generation '2'" in refused.value.error.message
    after = clients.compute.virtual_machines.get(rg, "web")
    assert after.hardware_profile.vm_size == "Standard_B2s"
