"""A VM booted without an osProfile from a capture of a VM that was not generalized.

That is a VM from a Specialized gallery image version: as on Azure, nothing is provisioned and
it keeps the identity of the VM it was captured from (its users and their keys, SSH host keys,
hostname, machine id); only the SSH host keys an image lacks are made.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_helpers import BASE, connect, new_key, next_address, run

from imageforge.sandbox.backend import OsProfile
from imageforge.sandbox.machines import vm as vm_module
from imageforge.sandbox.machines.chroot import ChrootBackend
from imageforge.sandbox.machines.vminit import INSTANCE_FILE

pytestmark = pytest.mark.sandbox

IDENTITY = [
    "cat /etc/machine-id",
    "cat /etc/ssh/ssh_host_ed25519_key.pub",
    "cat /etc/ssh/ssh_host_rsa_key.pub",
    f"cat /{INSTANCE_FILE}",
    "sha256sum /var/lib/waagent/ovf-env.xml",
    "grep -c . /home/builder/.ssh/authorized_keys",
    "cat /etc/sudoers.d/waagent",
    "grep 127.0.1.1 /etc/hosts",
    "cut -d: -f1 /etc/passwd | sort | tr '\\n' ' '",
]


def _identity(backend: ChrootBackend, key: str) -> list[str]:
    output = backend.run_command(key, "\n".join(IDENTITY), timeout=60)
    assert output.exit_code == 0, output
    return output.stdout.splitlines()


def test_a_specialized_vm_keeps_the_source_vms_identity(
    backend: ChrootBackend, blobs: Path
) -> None:
    key = new_key()
    source = backend.boot(
        "spec-source",
        source=BASE,
        profile=OsProfile("spec-source", "builder", (key.public,)),
        address=next_address(),
    )
    with connect(source, "builder", key) as client:
        host_key = client.get_transport().get_remote_server_key().get_base64()  # type: ignore[union-attr]
        assert run(client, "sudo", "sh", "-c", "echo kept > /etc/imageforge-marker")[0] == 0
    before = _identity(backend, "spec-source")
    image = blobs / "westus" / "spec-v1"
    backend.capture("spec-source", image)  # stopped, not generalized: a specialized capture
    backend.delete("spec-source")

    copy = backend.boot("spec-copy", source=image, profile=None, address=next_address())
    assert (backend.state_dir / "vms" / "spec-copy" / "hostkey").exists() is False
    with connect(copy, "builder", key) as client:  # the source's user logs in with its key
        assert client.get_transport().get_remote_server_key().get_base64() == host_key  # type: ignore[union-attr]
        assert run(client, "hostname")[1].strip() == "spec-source"
        assert run(client, "cat", "/etc/imageforge-marker")[1] == "kept\n"
        assert run(client, "sudo", "-n", "true")[0] == 0
    assert _identity(backend, "spec-copy") == before
    assert backend.run_command("spec-copy", "cat /etc/hostname", timeout=60).stdout == (
        "spec-source\n"
    )
    assert "no osProfile" in backend.console_log("spec-copy").read_text()
    backend.delete("spec-copy")
    backend.remove_image(image)
    assert vm_module.marked_processes(str(backend.state_dir / "vms")) == {}


def test_a_specialized_image_without_host_keys_gets_new_ones_and_a_hostname(
    backend: ChrootBackend, blobs: Path
) -> None:
    """An image whose host keys and hostname were removed (but users kept) still boots: the
    pooled RSA key and ``ssh-keygen -A`` make the keys, the VM key names the host."""
    key = new_key()
    backend.boot(
        "spec-bare",
        source=BASE,
        profile=OsProfile("spec-bare", "builder", (key.public,)),
        address=next_address(),
    )
    wiped = backend.run_command(
        "spec-bare", "rm -f /etc/ssh/ssh_host_*\n: > /etc/hostname", timeout=60
    )
    assert wiped.exit_code == 0, wiped
    image = blobs / "westus" / "spec-bare"
    backend.capture("spec-bare", image)
    backend.delete("spec-bare")

    endpoint = backend.boot("spec-bare-copy", source=image, profile=None, address=next_address())
    with connect(endpoint, "builder", key) as client:
        assert run(client, "hostname")[1].strip() == "spec-bare-copy"
        for algorithm in ("rsa", "ecdsa", "ed25519"):
            assert run(client, "test", "-s", f"/etc/ssh/ssh_host_{algorithm}_key.pub")[0] == 0
    backend.delete("spec-bare-copy")
    backend.remove_image(image)
