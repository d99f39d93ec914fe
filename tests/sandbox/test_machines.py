"""ChrootBackend against real VMs: boot, SSH, sudo, capture, replicate, delete, reap."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sandbox_helpers import (
    BASE,
    REPO,
    connect,
    new_key,
    next_address,
    run,
    sandbox_leftovers,
)

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import SANDBOX_SSH_PORT, OsProfile
from imageforge.sandbox.machines import vm as vm_module
from imageforge.sandbox.machines.checks import NOT_ROOT
from imageforge.sandbox.machines.chroot import ChrootBackend
from imageforge.sandbox.machines.hostkeys import KEY

pytestmark = pytest.mark.sandbox


def vm_gone(backend: ChrootBackend, key: str) -> None:
    """Assert that nothing of VM ``key`` is left: no process, no mount, no files."""
    vm_dir = backend.state_dir / "vms" / key
    assert vm_module.marked_processes(str(vm_dir)) == {}
    assert not any(str(vm_dir) in line for line in Path("/proc/mounts").read_text().splitlines())
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert str(vm_dir).encode() not in cmdline, f"process {pid} of {key} survived"
    assert not vm_dir.exists()


def test_boot_ssh_sudo_hostname(backend: ChrootBackend) -> None:
    key = new_key()
    address = next_address()
    profile = OsProfile("web-build-01", "azureuser", (key.public,))
    endpoint = backend.boot("boot-ssh", source=BASE, profile=profile, address=address)
    assert (endpoint.address, endpoint.port) == (address, SANDBOX_SSH_PORT)
    # booting a running VM again is idempotent
    assert backend.boot("boot-ssh", source=BASE, profile=profile, address=address) == endpoint
    with connect(endpoint, "azureuser", key) as client:
        assert run(client, "sudo", "-n", "true")[0] == 0
        assert run(client, "hostname")[1].strip() == "web-build-01"
        assert run(client, "cat", "/etc/hostname")[1].strip() == "web-build-01"
        assert "127.0.1.1\tweb-build-01" in run(client, "cat", "/etc/hosts")[1]
        status, out, _ = run(client, "getent", "passwd", "azureuser")
        assert status == 0 and out.strip().endswith(":/home/azureuser:/bin/bash")
        assert run(client, "test", "-x", "/usr/sbin/waagent")[0] == 0
        # the VM is PID-isolated: its init is PID 1 and it sees no host process
        _, out, _ = run(client, "ps", "-e", "-o", "pid=")
        assert 1 in {int(pid) for pid in out.split()}
        assert len(out.split()) < 20
        # the apt sources point at the host's mirror
        assert "URIs: " in run(client, "cat", "/etc/apt/sources.list.d/debian.sources")[1]
    # the VM's mounts exist only in its own mount namespace
    assert not any(
        str(backend.state_dir) in line for line in Path("/proc/mounts").read_text().splitlines()
    )
    assert "Server listening on" in backend.console_log("boot-ssh").read_text()
    backend.delete("boot-ssh")
    vm_gone(backend, "boot-ssh")


def test_marker_survives_generalize_capture_replicate(backend: ChrootBackend, blobs: Path) -> None:
    build_key = new_key()
    endpoint = backend.boot(
        "build-vm",
        source=BASE,
        profile=OsProfile("build", "packer", (build_key.public,)),
        address=next_address(),
    )
    with connect(endpoint, "packer", build_key) as client:
        status, _, err = run(client, "sudo", "sh", "-c", "echo built > /etc/imageforge-marker")
        assert status == 0, err
        # the build's last provisioner: generalize as on Azure (removes the admin user)
        status, out, err = run(client, "sudo", "waagent", "-force", "-deprovision+user")
        assert status == 0, out + err
    backend.generalize("build-vm")
    with pytest.raises(SandboxError, match="generalized"):
        backend.boot("build-vm", source=BASE, profile=OsProfile("x", "x"), address=next_address())
    image = blobs / "westeurope" / "v1"
    backend.capture("build-vm", image)
    backend.delete("build-vm")
    vm_gone(backend, "build-vm")
    # the capture is what the VM wrote, as one layer over the base tree (nothing was copied)
    captured = backend.layers.read_image(image)
    assert captured.base == backend.base_image_dir(BASE) and len(captured.layers) == 1
    layer = backend.layers.path(captured.layers[0])
    assert (layer / "etc/imageforge-marker").read_text() == "built\n"
    assert not (layer / "usr/sbin/sshd").exists(), "unchanged files stay in the base"
    for pseudo in ("proc", "sys", "dev", "run"):  # the VM's own mounts are not captured
        assert not (layer / pseudo).exists() or list((layer / pseudo).iterdir()) == []
    for algorithm in ("rsa", "ecdsa", "ed25519"):  # deprovision removed the host keys
        assert backend.layers.lookup(captured, f"etc/ssh/ssh_host_{algorithm}_key") is None

    progress: list[int] = []
    replica = blobs / "northeurope" / "v1"
    backend.replicate(image, replica, progress.append)
    assert progress == [0, 100]
    assert not list(blobs.glob("*/.imageforge-partial-*"))
    backend.remove_image(image)  # the replica is independent of its source
    assert not image.exists() and layer.is_dir()

    test_key = new_key()
    endpoint = backend.boot(
        "test-vm",
        source=replica,
        profile=OsProfile("tester", "verifier", (test_key.public,)),
        address=next_address(),
    )
    backend.remove_image(replica)  # a VM owns its disk, as in Azure
    assert layer.is_dir()
    with connect(endpoint, "verifier", test_key) as client:
        assert run(client, "cat", "/etc/imageforge-marker")[1] == "built\n"
        assert run(client, "hostname")[1].strip() == "tester"
        assert run(client, "sudo", "-n", "true")[0] == 0
        assert run(client, "getent", "passwd", "packer")[0] != 0, "build user was deprovisioned"
        assert run(client, "sudo", "sh", "-c", "echo test > /etc/imageforge-marker")[0] == 0
    assert (layer / "etc/imageforge-marker").read_text() == "built\n", "layers are read-only"
    backend.delete("test-vm")
    vm_gone(backend, "test-vm")
    assert not layer.exists(), "the last user of the layer is gone, so is the layer"


def test_boot_from_missing_image_is_refused(backend: ChrootBackend, blobs: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        backend.boot(
            "no-image",
            source=blobs / "nowhere",
            profile=OsProfile("h", "azureuser"),
            address=next_address(),
        )


def test_concurrent_boots_and_deletes(backend: ChrootBackend) -> None:
    keys = {name: new_key() for name in ("par-a", "par-b")}
    endpoints: dict[str, object] = {}
    errors: list[BaseException] = []

    def boot(name: str) -> None:
        try:
            endpoints[name] = backend.boot(
                name,
                source=BASE,
                profile=OsProfile(name, "azureuser", (keys[name].public,)),
                address=next_address(),
            )
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=boot, args=(name,)) for name in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name, key in keys.items():
        with connect(endpoints[name], "azureuser", key) as client:  # type: ignore[arg-type]
            assert run(client, "hostname")[1].strip() == name
    threads = [threading.Thread(target=backend.delete, args=(name,)) for name in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in keys:
        vm_gone(backend, name)


def test_reap_after_vm_tree_killed_while_command_runs(backend: ChrootBackend) -> None:
    key = new_key()
    endpoint = backend.boot(
        "killed-vm",
        source=BASE,
        profile=OsProfile("killed", "azureuser", (key.public,)),
        address=next_address(),
    )
    paths = vm_module.VmPaths(backend.state_dir / "vms" / "killed-vm")
    with connect(endpoint, "azureuser", key) as client:
        client.exec_command("sudo sleep 600")
        time.sleep(0.5)
        state = json.loads(paths.state.read_text())
        # a crash: every process of the VM dies at once, nobody cleans up
        for pid in [*vm_module.vm_processes(paths), state["unshare_pid"]]:
            with contextlib.suppress(ProcessLookupError):  # it may just have exited itself
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
        while not vm_module._is_zombie_or_gone(state["unshare_pid"]):
            assert time.monotonic() < deadline, "unshare survived SIGKILL"
            time.sleep(0.01)
    reaped = backend.reap()
    assert any(item.startswith("vm killed-vm") for item in reaped)
    vm_gone(backend, "killed-vm")


def test_reap_after_emulator_crash_mid_boot(backend: ChrootBackend) -> None:
    """An emulator SIGKILLed while booting a VM: the next run's reap() cleans up."""
    key = new_key()
    script = (
        "import sys; from pathlib import Path\n"
        "from imageforge.sandbox.backend import MARKETPLACE, OsProfile\n"
        "from imageforge.sandbox.machines.chroot import ChrootBackend\n"
        "b = ChrootBackend(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "b.boot('crashed-vm', source=MARKETPLACE[0],"
        " profile=OsProfile('crashed', 'azureuser', (sys.argv[3],)), address=sys.argv[4])\n"
        "import time; time.sleep(600)\n"
    )
    emulator = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            str(backend.state_dir),
            str(backend.cache_dir),
            key.public,
            next_address(),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    state_file = backend.state_dir / "vms" / "crashed-vm" / "vm.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        if state.get("init_pid"):
            break
        time.sleep(0.01)
    assert state.get("init_pid"), "the VM never started"
    emulator.kill()
    emulator.wait()
    assert vm_module.marked_processes(str(state_file.parent)), "the VM outlives its emulator"
    reaped = backend.reap()
    assert any(item.startswith("vm crashed-vm") for item in reaped)
    vm_gone(backend, "crashed-vm")


def test_boot_timeout_names_vm_and_console_log(
    backend: ChrootBackend, tmp_path: Path, blobs: Path
) -> None:
    # an image whose only layer deletes sshd from the base tree (an overlay whiteout)
    tree = backend.state_dir / "broken-layer"
    (tree / "usr/sbin").mkdir(parents=True)
    os.mknod(tree / "usr/sbin/sshd", stat.S_IFCHR, os.makedev(0, 0))
    broken = blobs / "broken"
    broken.mkdir()
    layer = backend.layers.add(tree, holder=broken)
    backend.layers.write_image(broken, backend.base_image_dir(BASE), [layer])
    impatient = ChrootBackend(backend.state_dir, backend.cache_dir, boot_timeout=3)
    with pytest.raises(SandboxError) as caught:
        impatient.boot(
            "no-sshd", source=broken, profile=OsProfile("h", "azureuser"), address=next_address()
        )
    message = str(caught.value)
    assert "VM no-sshd" in message and "console.log" in message
    assert (backend.base_image_dir(BASE) / "usr/sbin/sshd").exists()
    impatient.delete("no-sshd")
    vm_gone(backend, "no-sshd")


def test_not_root_is_refused(tmp_path: Path) -> None:
    snippet = (
        "import sys; from pathlib import Path\n"
        "from imageforge.errors import SandboxError\n"
        "from imageforge.sandbox.machines.chroot import ChrootBackend\n"
        "try:\n"
        "    ChrootBackend(Path(sys.argv[1]), Path(sys.argv[1]))\n"
        "except SandboxError as err:\n"
        "    print(err)\n"
    )
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            snippet,
            str(tmp_path / "state"),
        ],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == NOT_ROOT


def test_session_leaves_nothing_behind_so_far(backend: ChrootBackend) -> None:
    processes, mounts = sandbox_leftovers(backend.state_dir)
    assert (processes, mounts) == ([], [])


def test_copy_mode_for_filesystems_without_overlay(backend: ChrootBackend, blobs: Path) -> None:
    """With overlay=False a VM runs on its own full copy, which capture takes as it is."""
    copying = ChrootBackend(backend.state_dir, backend.cache_dir, overlay=False)
    assert copying.mode == "copy"
    key = new_key()
    endpoint = copying.boot(
        "copy-vm",
        source=BASE,
        profile=OsProfile("copyvm", "azureuser", (key.public,)),
        address=next_address(),
    )
    with connect(endpoint, "azureuser", key) as client:
        assert run(client, "sudo", "touch", "/etc/copy-mode")[0] == 0
        assert run(client, "hostname")[1].strip() == "copyvm"
    copying.generalize("copy-vm")
    image = blobs / "copy"
    copying.capture("copy-vm", image)
    copying.delete("copy-vm")
    vm_gone(backend, "copy-vm")
    captured = copying.layers.read_image(image)
    assert captured.base is None and len(captured.layers) == 1
    disk = copying.layers.path(captured.layers[0])
    assert (disk / "etc/copy-mode").exists()
    base_sshd = backend.base_image_dir(BASE) / "usr/sbin/sshd"
    assert (disk / "usr/sbin/sshd").stat().st_ino != base_sshd.stat().st_ino
    # a VM booted from it gets its own full copy again
    endpoint = copying.boot(
        "copy-vm-2",
        source=image,
        profile=OsProfile("copyvm2", "azureuser", (key.public,)),
        address=next_address(),
    )
    with connect(endpoint, "azureuser", key) as client:
        assert run(client, "test", "-e", "/etc/copy-mode")[0] == 0
    copying.delete("copy-vm-2")
    copying.remove_image(image)
    assert not disk.exists()


def test_first_boot_takes_each_pooled_rsa_host_key_once(backend: ChrootBackend) -> None:
    deadline = time.monotonic() + 60
    while backend.hostkeys.ready() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    ready = backend.cache_dir / "hostkeys" / "ready"

    def pooled() -> dict[str, str]:
        return {k.name: (k / f"{KEY}.pub").read_text().split()[1] for k in ready.iterdir()}

    key = new_key()
    served = []
    for n in range(2):
        before = pooled()  # the pool refills in the background, so look right before each boot
        assert before, "the pool has a key ready"
        endpoint = backend.boot(
            f"pooled-{n}",
            source=BASE,
            profile=OsProfile(f"pooled{n}", "azureuser", (key.public,)),
            address=next_address(),
        )
        assert not (backend.state_dir / "vms" / f"pooled-{n}" / "hostkey").exists()
        with connect(endpoint, "azureuser", key) as client:
            status, out, _ = run(client, "sudo", "cat", "/etc/ssh/ssh_host_rsa_key.pub")
            assert status == 0
            served.append(out.split()[1])
            status, out, _ = run(client, "stat", "-c", "%a %U", "/etc/ssh/ssh_host_rsa_key")
            assert out.strip() == "600 root"
            # sshd serves it: the key a client sees when it asks for RSA
            status, out, _ = run(
                client, "ssh-keyscan", "-t", "rsa", "-p", str(endpoint.port), endpoint.address
            )
            assert served[-1] in out
        taken = [name for name, public in before.items() if public == served[-1]]
        assert taken, "the VM's RSA host key came from the pool"
        assert taken[0] not in pooled(), "a taken key leaves the pool"
    assert served[0] != served[1], "no key is handed out twice"
    for n in range(2):
        backend.delete(f"pooled-{n}")
        vm_gone(backend, f"pooled-{n}")
