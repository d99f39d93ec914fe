"""``ChrootBackend``: the sandbox's real machines, Debian root filesystems run as chroots.

See vm.py for the layout of one VM, disks.py for how a VM's disk is made from an image and
captured back, rootfs.py for the base images, layers.py for captured images (overlay layers
shared by reference), partial.py for images being written, runcommand.py for scripts run in a
VM (Run Command) and checks.py for what is refused up front. This module ties them to the
``MachineBackend`` contract (imageforge/sandbox/backend.py) and makes it thread-safe: one lock
per VM key serialises the operations on one VM, operations on different VMs run in parallel,
and a short registry lock guards the table of running VMs.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imageforge.sandbox.machines.vm as vm
from imageforge.errors import SandboxError
from imageforge.sandbox.backend import (
    SANDBOX_SSH_PORT,
    BaseImage,
    CommandOutput,
    Endpoint,
    OsProfile,
    ProgressCallback,
)
from imageforge.sandbox.machines import runcommand
from imageforge.sandbox.machines.checks import (
    check_address,
    check_dir,
    check_host,
    check_key,
    check_profile,
)
from imageforge.sandbox.machines.disks import Disks
from imageforge.sandbox.machines.hostkeys import HostKeyPool
from imageforge.sandbox.machines.layers import LayerStore
from imageforge.sandbox.machines.partial import PartialImages
from imageforge.sandbox.machines.rootfs import RootfsCache
from imageforge.sandbox.machines.tree import remove_tree

#: Default seconds from starting a VM's init until its sshd must answer with a banner.
BOOT_TIMEOUT = 90.0


@dataclass
class _Running:
    """A VM this backend instance started and has not stopped."""

    process: subprocess.Popen  # unshare, the parent of the VM's init
    endpoint: Endpoint


class ChrootBackend:
    """Runs sandbox VMs as chroots in their own namespaces, with their own sshd.

    ``state_dir`` holds the VMs (``vms/<vm_key>/``), the layers of captured images
    (``layers/``) and the journal of partially written images (``partial/``); ``cache_dir``
    holds the debootstrapped base trees. Raises SandboxError when not run as root.

    ``overlay`` chooses how a VM gets its disk: an overlay over its image's layers, used in
    place (nothing is copied), or, with ``overlay=False``, a full copy it writes into. By
    default the overlay is used when the state dir's filesystem can be an overlay upper layer.

    ``host_key_pool`` keeps that many RSA host keys made ahead of time for first boots, in the
    rootfs cache (see hostkeys.py); the emulator asks for a pool, throw-away backends in tests
    need none.
    """

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        *,
        boot_timeout: float = BOOT_TIMEOUT,
        overlay: bool | None = None,
        host_key_pool: int = 0,
    ) -> None:
        check_host()
        self.state_dir = Path(state_dir).absolute()
        self.cache_dir = Path(cache_dir).absolute()
        self.boot_timeout = boot_timeout
        self.rootfs = RootfsCache(self.cache_dir)
        self._vms_dir = self.state_dir / "vms"
        check_dir("state", self.state_dir)
        check_dir("rootfs cache", self.cache_dir)
        self._vms_dir.mkdir(parents=True, exist_ok=True)
        self._partial = PartialImages(self.state_dir / "partial")
        self.layers = LayerStore(self.state_dir / "layers")
        self.hostkeys = HostKeyPool(self.cache_dir / "hostkeys", size=host_key_pool)
        self.hostkeys.start()
        if overlay is None:
            overlay = vm.overlay_supported(self.state_dir)
        self.mode = "overlay" if overlay else "copy"
        self.disks = Disks(
            self.state_dir,
            self.mode,
            rootfs=self.rootfs,
            layers=self.layers,
            hostkeys=self.hostkeys,
        )
        self._registry_lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._running: dict[str, _Running] = {}

    # -- MachineBackend ---------------------------------------------------------------------

    def boot(
        self, vm_key: str, *, source: BaseImage | Path, profile: OsProfile | None, address: str
    ) -> Endpoint:
        """Boot a VM from a base image or a captured image; return once its sshd answers.

        Booting a key that is already running returns its endpoint; booting a stopped (not
        generalized) VM starts it again from its own disk without a new first boot. Without a
        ``profile`` (a specialized image) nothing is provisioned: the VM keeps the image's
        users, keys, host keys, machine id and hostname (see vminit.py).
        """
        check_key(vm_key)
        check_address(address)
        if profile is not None:
            check_profile(profile)
        paths = self._paths(vm_key)
        with self._locked(vm_key):
            running = self._running.get(vm_key)
            if running is not None and running.process.poll() is None:
                return running.endpoint
            state = vm.read_state(paths)
            if state.get("status") == "generalized":
                raise SandboxError(f"VM {vm_key} is generalized; it cannot be started again")
            if not state:
                if paths.dir.exists():  # leftovers of a VM that never recorded its state
                    vm.kill(paths)
                    vm.remove(paths)
                disk = self.disks.create(paths, source)
                host_key = self.disks.pooled_host_key(paths, disk)
            else:
                vm.kill(paths)  # a stopped VM: make sure nothing of an old run is left
                disk = {"base": state.get("base"), "layers": state.get("layers", [])}
                host_key = None
            endpoint = Endpoint(address, SANDBOX_SSH_PORT)
            config = {
                "vm_key": vm_key,
                "mode": state.get("mode") or self.mode,
                "instance_id": state.get("instance_id") or str(uuid.uuid4()),
                "hostname": profile.computer_name if profile else None,
                "admin_username": profile.admin_username if profile else None,
                "ssh_public_keys": list(profile.ssh_public_keys) if profile else [],
                "address": address,
                "port": SANDBOX_SSH_PORT,
                "root": str(paths.root),
                "lowers": [str(p) for p in self.disks.lowers(disk)],
                "upper": str(paths.upper),
                "work": str(paths.work),
                "disk": str(paths.disk),
                "host_key_dir": str(host_key) if host_key is not None else None,
            }
            state = {
                "vm_key": vm_key,
                "mode": config["mode"],
                "instance_id": config["instance_id"],
                "address": address,
                "port": SANDBOX_SSH_PORT,
                "source": str(source if isinstance(source, Path) else source.sku),
                **disk,
                "status": "booting",
                "started_at": time.time(),
            }
            vm.write_state(paths, state)
            process = vm.start(paths, config)
            state["unshare_pid"] = process.pid
            init_pid = vm.find_child(process.pid)
            if init_pid is not None:
                state["init_pid"] = init_pid
                state["pid_namespace"] = vm.pid_namespace(init_pid)
            vm.write_state(paths, state)
            try:
                vm.wait_for_ssh(
                    address, SANDBOX_SSH_PORT, self.boot_timeout, process, vm_key, paths.console
                )
            except SandboxError:
                vm.stop(paths, process, grace=0)
                state["status"] = "failed"
                vm.write_state(paths, state)
                raise
            state["status"] = "running"
            vm.write_state(paths, state)
            with self._registry_lock:
                self._running[vm_key] = _Running(process, endpoint)
            return endpoint

    def run_command(self, vm_key: str, script: str, *, timeout: float) -> CommandOutput:
        """Run ``script`` with bash as root inside the running VM (see runcommand.py).

        SandboxError when the VM is not running, stops while the script runs, or the script
        outlives ``timeout`` (it is killed). The VM's lock is not held while the script runs,
        so a long script does not hold up deleting or stopping the VM.
        """
        check_key(vm_key)
        paths = self._paths(vm_key)
        with self._locked(vm_key):
            running = self._running.get(vm_key)
            state = vm.read_state(paths)
            if running is None or running.process.poll() is not None or not state.get("init_pid"):
                status = state.get("status") or "not created"
                if running is None and status in ("booting", "running"):
                    status = "not started by this sandbox process"
                raise SandboxError(f"VM {vm_key} is not running ({status}); it cannot run commands")
        output = runcommand.run_script(paths, state["init_pid"], script, timeout=timeout)
        with self._registry_lock:
            still = self._running.get(vm_key) is running and running.process.poll() is None
        if not still:
            raise SandboxError(f"VM {vm_key} stopped while the command ran")
        return output

    def delete(self, vm_key: str) -> None:
        """Stop every process of the VM and remove its files (nothing is left mounted)."""
        check_key(vm_key)
        paths = self._paths(vm_key)
        with self._locked(vm_key):
            self._stop(vm_key, paths, grace=2.0)
            vm.remove(paths)
        self.layers.sweep()

    def generalize(self, vm_key: str) -> None:
        """Stop the VM (its processes, namespaces and mounts) so its disk can be captured.

        The image was deprovisioned inside the VM (``waagent -force -deprovision+user``) by
        the build's last provisioner; this is Azure's deallocate + generalize.
        """
        check_key(vm_key)
        paths = self._paths(vm_key)
        with self._locked(vm_key):
            state = self._require(vm_key, paths)
            self._stop(vm_key, paths, grace=5.0)
            state = vm.read_state(paths) or state
            state["status"] = "generalized"
            vm.write_state(paths, state)

    def capture(self, vm_key: str, dest: Path) -> None:
        """Make ``dest`` an image of the VM's disk, as it is now.

        A VM still running is stopped first: a consistent capture needs a stopped machine.
        On an overlay, the VM's upper dir (everything it wrote) becomes a new layer over the
        layers it booted from; nothing is copied. A VM that was not generalized can boot
        again, on a fresh upper dir over that new layer. In copy mode a generalized VM's disk
        becomes the image's only layer; a VM that can run again has its disk copied.
        """
        check_key(vm_key)
        paths = self._paths(vm_key)
        dest = Path(dest).absolute()
        with self._locked(vm_key):
            self._require(vm_key, paths)
            self._stop(vm_key, paths, grace=5.0)
            state = vm.read_state(paths)
            with self._partial.writing(dest) as tmp:
                self.disks.capture(paths, state, tmp)

    def replicate(self, src: Path, dest: Path, progress: ProgressCallback) -> None:
        """Make ``dest`` a replica of the image ``src``: it references the same layers.

        The replica is independent of its source: either can be removed and the other stays
        whole (layers live as long as an image or a VM references them).
        """
        src = Path(src).absolute()
        dest = Path(dest).absolute()
        with self._partial.writing(dest) as tmp:
            progress(0)
            with self.layers.locked():
                image = self.layers.read_image(src)
                self.layers.write_image(tmp, image.base, image.layers)
        progress(100)

    def remove_image(self, path: Path) -> None:
        """Delete an image directory, and the layers no other image or VM uses."""
        path = Path(path).absolute()
        if path == Path("/") or path in (self.state_dir, self.cache_dir):
            raise SandboxError(f"refusing to remove {path}: not an image directory")
        remove_tree(path)
        self.layers.sweep()

    def base_snapshot(self, base: BaseImage) -> dt.datetime | None:
        """When the base tree was debootstrapped (the tree's own mtime), if it is."""
        tree = self.rootfs.path(base.suite)
        try:
            return dt.datetime.fromtimestamp(tree.stat().st_mtime, dt.UTC)
        except OSError:
            return None

    def reap(self) -> list[str]:
        """Stop and remove what a crashed run left behind; return what was reaped.

        Every VM under the state dir that this backend instance is not running (a previous
        emulator's, or one whose processes died) loses its processes and files; processes
        still marked with a VM dir that no longer exists are killed; partially written images,
        layers nothing references any more and stale base-image build directories are removed.
        """
        reaped: list[str] = []
        keys = sorted(p.name for p in self._vms_dir.iterdir()) if self._vms_dir.is_dir() else []
        for key in keys:
            with self._locked(key):
                running = self._running.get(key)
                if running is not None and running.process.poll() is None:
                    continue
                paths = self._paths(key)
                killed = vm.kill(paths)
                if running is not None:
                    running.process.wait()
                with self._registry_lock:
                    self._running.pop(key, None)
                vm.remove(paths)
                reaped.append(f"vm {key}" + (f" (killed pids {killed})" if killed else ""))
        for pid, vm_dir in vm.marked_processes(str(self._vms_dir)).items():
            if Path(vm_dir).exists():
                continue  # a VM dir created since the loop above: a VM being booted
            try:
                os.kill(pid, signal.SIGKILL)
                reaped.append(f"process {pid} of {vm_dir}")
            except ProcessLookupError:
                pass
        reaped += self._partial.reap()
        reaped += [f"unused layer {layer}" for layer in self.layers.sweep()]
        reaped += [f"partial base image {p}" for p in self.rootfs.reap()]
        return reaped

    # -- extras ------------------------------------------------------------------------------

    def base_image_dir(self, image: BaseImage) -> Path:
        """The cached base root filesystem of ``image``, debootstrapping it when missing."""
        return self.rootfs.ensure(image.suite)

    def console_log(self, vm_key: str) -> Path:
        """Where the VM's console log is written."""
        return self._paths(vm_key).console

    def stop(self, vm_key: str) -> None:
        """Stop a VM's processes but keep its disk (Azure: deallocate); ``boot`` restarts it."""
        check_key(vm_key)
        paths = self._paths(vm_key)
        with self._locked(vm_key):
            self._require(vm_key, paths)
            self._stop(vm_key, paths, grace=5.0)

    def shutdown(self) -> None:
        """Stop (not delete) every VM this instance runs, e.g. when the emulator exits."""
        self.hostkeys.stop()
        for key in list(self._running):
            with self._locked(key):
                self._stop(key, self._paths(key), grace=2.0)

    # -- helpers -----------------------------------------------------------------------------

    def _paths(self, vm_key: str) -> vm.VmPaths:
        return vm.VmPaths(self._vms_dir / vm_key)

    @contextmanager
    def _locked(self, vm_key: str) -> Iterator[None]:
        with self._registry_lock:
            lock = self._key_locks.setdefault(vm_key, threading.Lock())
        with lock:
            yield

    def _require(self, vm_key: str, paths: vm.VmPaths) -> dict:
        state = vm.read_state(paths)
        if not state:
            raise SandboxError(f"VM {vm_key} does not exist in the sandbox")
        return state

    def _stop(self, vm_key: str, paths: vm.VmPaths, *, grace: float) -> None:
        with self._registry_lock:
            running = self._running.pop(vm_key, None)
        process = running.process if running is not None else None
        vm.stop(paths, process, grace=grace)
        state = vm.read_state(paths)
        if state and state.get("status") in ("booting", "running"):
            state["status"] = "stopped"
            vm.write_state(paths, state)
