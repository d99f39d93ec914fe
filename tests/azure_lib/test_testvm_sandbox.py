"""Build VM -> captured version -> test VM on real sandbox machines (chroot backend).

Each VM is a Debian root filesystem with its own sshd; "reachable" is a real SSH login with the
run's key. Needs root, debootstrap and sshd (the base image is cached across runs).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paramiko
import pytest
from azure_helpers import load_image, new_session

from imageforge import tags
from imageforge.azure import gallery, testvm, vmaccess
from imageforge.azure.testvm import TestVm
from imageforge.sandbox.harness import EmulatorHandle, running_emulator

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path_factory.mktemp("chroot-arm"), backend="chroot") as handle:
        yield handle
        assert handle.status()["vms"] == 0, "a VM outlived its with block"


def _run(vm: TestVm, command: str) -> str:
    key = paramiko.Ed25519Key.from_private_key_file(str(vm.ssh_key_path))
    with paramiko.SSHClient() as client:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            vm.host, port=vm.port, username=vm.username, pkey=key,
            allow_agent=False, look_for_keys=False, timeout=15,
        )  # fmt: skip
        _, stdout, stderr = client.exec_command(command, timeout=60)
        out = stdout.read().decode()
        status = stdout.channel.recv_exit_status()
        assert status == 0, stderr.read().decode()
        return out


def test_build_capture_and_test_vm_are_reachable_and_leave_nothing(machines):
    image = load_image("debian-12")
    with new_session(machines) as session:
        gallery.ensure_image_definition(session, image)
        with testvm.sandbox_build_vm(session, image, run_id="sb-1") as build:
            assert build.username == "packer"
            assert _run(build, "id -un").strip() == "packer"
            marker = "echo imageforge-sandbox-test | sudo tee /etc/imageforge-azure-test"
            _run(build, marker)
            version_id = testvm.capture_version(
                session, image, "1.0.0", build, tags={tags.STAGE: "built"}
            )
            build_key = build.ssh_key_path
        assert not build_key.exists()
        assert gallery.get_version(session, image, "1.0.0").regions == {"westeurope": "Completed"}
        with testvm.deploy_test_vm(session, image, "1.0.0", run_id="st-1") as vm:
            assert vm.username == "imageforge" and vm.host != build.host
            assert _run(vm, "cat /etc/imageforge-azure-test") == "imageforge-sandbox-test\n"
            assert _run(vm, "sudo -n true; echo ok").strip() == "ok"
            props = session.compute.virtual_machines.get(vm.resource_group, vm.vm_name).as_dict()
            assert props["properties"]["storageProfile"]["imageReference"]["id"] == version_id
            groups = {g.name for g in session.resource.resource_groups.list()}
            assert vm.resource_group in groups
        groups = {g.name for g in session.resource.resource_groups.list()}
        assert vm.resource_group not in groups and build.resource_group not in groups
        with pytest.raises(OSError):  # the machine is gone with its group
            socket.create_connection((vm.host, vm.port), timeout=3).close()


#: What an attacker might try: the user name as password. Not a credential of anything.
GUESSED = "imageforge"


def test_only_the_runs_key_logs_in(machines, tmp_path):
    image = load_image("debian-12")
    with new_session(machines) as session:
        gallery.ensure_image_definition(session, image)
        with testvm.sandbox_build_vm(session, image, run_id="sb-2") as build:
            testvm.capture_version(session, image, "1.0.0", build, tags={})
        with testvm.deploy_test_vm(session, image, "1.0.0", run_id="st-2") as vm:
            with pytest.raises(paramiko.AuthenticationException):
                with paramiko.SSHClient() as client:
                    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
                    client.connect(
                        vm.host, port=vm.port, username=vm.username, password=GUESSED,
                        allow_agent=False, look_for_keys=False, timeout=15,
                    )  # fmt: skip
            other_path, _ = vmaccess.generate_key(tmp_path, "someone-else")
            other = paramiko.Ed25519Key.from_private_key_file(str(other_path))
            with pytest.raises(paramiko.AuthenticationException):
                with paramiko.SSHClient() as client:
                    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
                    client.connect(
                        vm.host, port=vm.port, username=vm.username, pkey=other,
                        allow_agent=False, look_for_keys=False, timeout=15,
                    )  # fmt: skip
