"""The emulator on real machines (chroot backend), through the real SDK: Run Command, and a
Specialized version made from a build VM that was deallocated but not generalized.

Build VM -> deallocate -> version of a Specialized definition -> VM from it without osProfile:
that VM keeps the build VM's admin user, its key, host keys and hostname, as on Azure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from emulator.emulator_helpers import Clients, make_clients, make_network
from helpers.cli import rootfs_cache
from sandbox_helpers import KeyPair, connect, new_key, run

from imageforge.sandbox.backend import Endpoint
from imageforge.sandbox.harness import running_emulator

pytestmark = pytest.mark.sandbox

LOCATION = "westus"
MARKETPLACE = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"}


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    state = tmp_path_factory.mktemp("chroot-emulator")
    with running_emulator(state, backend="chroot", cache_dir=rootfs_cache()) as handle:
        clients = make_clients(handle)
        yield clients
        for group in clients.resource.resource_groups.list():
            clients.resource.resource_groups.begin_delete(group.name).result()
        assert handle.status()["vms"] == 0


def _group(arm: Clients, name: str) -> str:
    arm.resource.resource_groups.create_or_update(name, {"location": LOCATION})
    return name


def _vm(
    arm: Clients,
    group: str,
    name: str,
    image: dict[str, str],
    *,
    admin: str | None = None,
    key: KeyPair | None = None,
) -> tuple[Any, Endpoint]:
    """A VM with its own network; with ``admin`` an osProfile for it and ``key``."""
    nic = make_network(arm, group, name, LOCATION)
    props: dict[str, Any] = {
        "hardwareProfile": {"vmSize": "Standard_B2s"},
        "storageProfile": {"imageReference": image},
        "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
    }
    if admin is not None:
        assert key is not None
        ssh_key = {"path": f"/home/{admin}/.ssh/authorized_keys", "keyData": key.public}
        props["osProfile"] = {
            "computerName": name,
            "adminUsername": admin,
            "linuxConfiguration": {
                "disablePasswordAuthentication": True,
                "ssh": {"publicKeys": [ssh_key]},
            },
        }
    vm = arm.compute.virtual_machines.begin_create_or_update(
        group, name, {"location": LOCATION, "properties": props}
    ).result()
    shown = arm.network.public_ip_addresses.get(group, f"{name}-ip")
    return vm, Endpoint(shown.ip_address, int(shown.tags["imageforge.sandbox-ssh-port"]))


def _stdout(status: Any) -> str:
    """The stdout part of a RunShellScript status's message."""
    return str(status.message).partition("[stdout]\n")[2].partition("\n[stderr]\n")[0]


def _shell(arm: Clients, group: str, vm: str, *lines: str) -> Any:
    """The one status of a RunShellScript's result."""
    result = arm.compute.virtual_machines.begin_run_command(
        group, vm, {"commandId": "RunShellScript", "script": list(lines)}
    ).result()
    assert len(result.value) == 1
    return result.value[0]


def test_run_command_runs_the_script_as_root_in_the_vm(arm: Clients) -> None:
    group = _group(arm, "rc-group")
    key = new_key()
    _vm(arm, group, "rc-vm", MARKETPLACE, admin="azureuser", key=key)
    status = _shell(arm, group, "rc-vm", "id -u", "cat /etc/hostname", "echo warn >&2")
    assert (status.code, status.level, status.display_status) == (
        "ProvisioningState/succeeded",
        "Info",
        "Provisioning succeeded",
    )
    assert status.message == "Enable succeeded: \n[stdout]\n0\nrc-vm\n\n[stderr]\nwarn\n"
    failed = _shell(arm, group, "rc-vm", "echo partial", "echo broken >&2", "exit 7")
    assert (failed.code, failed.level, failed.display_status) == (
        "ProvisioningState/failed",
        "Error",
        "Provisioning failed",
    )
    assert failed.message == (
        "Enable failed: failed to execute command: command terminated with exit status=7\n"
        "[stdout]\npartial\n\n[stderr]\nbroken\n"
    )
    log = (arm.arm.state_dir / "emulator.log").read_text()
    assert "partial" not in log and "broken" not in log, "script output stays out of the log"


def test_a_specialized_version_of_a_build_vm_keeps_its_identity(arm: Clients) -> None:
    group = _group(arm, "spec-group")
    key = new_key()
    build, build_endpoint = _vm(arm, group, "build-vm", MARKETPLACE, admin="packer", key=key)
    with connect(build_endpoint, "packer", key) as client:
        build_host_key = client.get_transport().get_remote_server_key().get_base64()  # type: ignore[union-attr]
        assert run(client, "sudo", "sh", "-c", "echo built > /etc/imageforge-marker")[0] == 0
    machine_id = _stdout(_shell(arm, group, "build-vm", "cat /etc/machine-id"))
    assert len(machine_id.strip()) == 32
    arm.compute.virtual_machines.begin_deallocate(group, "build-vm").result()  # no generalize

    compute = arm.compute
    compute.galleries.begin_create_or_update(group, "gallery", {"location": LOCATION}).result()
    compute.gallery_images.begin_create_or_update(
        group,
        "gallery",
        "spec",
        {
            "location": LOCATION,
            "properties": {
                "osType": "Linux",
                "osState": "Specialized",
                "hyperVGeneration": "V2",
                "identifier": {"publisher": "imageforge", "offer": "spec", "sku": "spec"},
            },
        },
    ).result()
    version = compute.gallery_image_versions.begin_create_or_update(
        group,
        "gallery",
        "spec",
        "1.0.0",
        {
            "location": LOCATION,
            "properties": {"storageProfile": {"source": {"virtualMachineId": build.id}}},
        },
    ).result()
    assert version.provisioning_state == "Succeeded"

    vm, endpoint = _vm(arm, group, "spec-vm", {"id": version.id})
    assert vm.os_profile is None
    with connect(endpoint, "packer", key) as client:  # the build VM's user and key
        assert client.get_transport().get_remote_server_key().get_base64() == build_host_key  # type: ignore[union-attr]
        assert run(client, "hostname")[1] == "build-vm\n"
        assert run(client, "cat", "/etc/imageforge-marker")[1] == "built\n"
        assert run(client, "sudo", "-n", "true")[0] == 0
    same = _shell(arm, group, "spec-vm", "cat /etc/machine-id", "id -u", "cat /etc/hostname")
    assert _stdout(same) == machine_id + "0\nbuild-vm\n"
