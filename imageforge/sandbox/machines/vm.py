"""One sandbox VM's files, processes and lifecycle.

A VM lives in ``<state_dir>/vms/<vm_key>/``::

    upper/        overlayfs upper layer: every write the VM makes
    work/         overlayfs work dir
    root/         mount point of the VM's root, mounted only inside the VM's mount namespace
    refs/         hard links holding the layers the VM runs on (see layers.py)
    disk/         copy mode only: the VM's own full copy of its image, written in place
    init.json     configuration of vminit.py
    vm.json       state: address, lower dirs, pids, pid namespace, status (for reap)
    console.log   stdout/stderr of the VM's init, first boot and sshd

The VM's root is an overlay of its upper dir over the layers of the image it booted from and
that image's base tree, used in place: the layers are immutable, and the VM's references keep
them in the store even when the gallery version is deleted (as in Azure, a VM owns its disk).
Booting therefore copies nothing. Where the state dir's filesystem cannot be an overlay upper
layer (copy mode), the VM gets a full copy of its image instead.

Processes are found again after a crash of the emulator through the marker variable
``IMAGEFORGE_SANDBOX_VM=<vm dir>`` in the environment of every process the backend starts for
a VM (unshare, the VM's init, copy helpers) and through the VM's PID namespace recorded in
vm.json. Killing the init (PID 1 of the namespace) makes the kernel kill every process in it,
and the mount namespace with all the VM's mounts goes away with its last process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from imageforge.errors import SandboxError
from imageforge.sandbox.machines.tree import remove_tree

MARKER = "IMAGEFORGE_SANDBOX_VM"
VMINIT = Path(__file__).with_name("vminit.py")

UNSHARE_VM = [
    "unshare",
    "--fork",
    "--pid",
    "--mount",
    "--uts",
    "--ipc",
    "--propagation",
    "private",
    "--kill-child",
]
UNSHARE_MOUNT = ["unshare", "--mount", "--propagation", "private"]


@dataclass(frozen=True)
class VmPaths:
    """The files of one VM under the state dir."""

    dir: Path

    @property
    def disk(self) -> Path:
        return self.dir / "disk"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def config(self) -> Path:
        return self.dir / "init.json"

    @property
    def state(self) -> Path:
        return self.dir / "vm.json"

    @property
    def console(self) -> Path:
        return self.dir / "console.log"


def marker_env(vm_dir: Path) -> dict[str, str]:
    """The environment of processes started for a VM: the host's, plus the marker."""
    env = dict(os.environ)
    env[MARKER] = str(vm_dir)
    return env


def full_copy(source: Path, dest: Path, vm_dir: Path) -> None:
    """Copy the tree ``source`` to the new directory ``dest`` (copy mode's VM disks)."""
    result = subprocess.run(
        ["cp", "-a", "--", str(source), str(dest)],
        env=marker_env(vm_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SandboxError(f"could not copy {source} for VM {vm_dir.name}: {result.stderr.strip()}")


def read_state(paths: VmPaths) -> dict:
    """The VM's recorded state, or an empty dict if none was written (or it is unreadable)."""
    try:
        return json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return {}


def write_state(paths: VmPaths, state: dict) -> None:
    """Record the VM's state atomically."""
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, paths.state)


def start(paths: VmPaths, config: dict) -> subprocess.Popen:
    """Start the VM's init in its own namespaces; return the ``unshare`` process."""
    paths.config.write_text(json.dumps(config, indent=2) + "\n")
    with paths.console.open("ab") as console:
        return subprocess.Popen(
            [*UNSHARE_VM, sys.executable, "-I", str(VMINIT), "run", str(paths.config)],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=console,
            env=marker_env(paths.dir),
            start_new_session=True,
        )


def find_child(pid: int, timeout: float = 5.0) -> int | None:
    """The first child of ``pid`` (unshare's forked init), waiting up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN, or pid is gone
            children = [str(p) for p in _all_pids() if _parent(p) == pid]
        except OSError:
            return None
        if children:
            return int(children[0])
        if _is_zombie_or_gone(pid):
            return None
        time.sleep(0.01)
    return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def pid_namespace(pid: int) -> str | None:
    """The PID namespace of ``pid`` (``pid:[inode]``), or None if it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def wait_for_ssh(
    address: str, port: int, timeout: float, process: subprocess.Popen, name: str, console: Path
) -> None:
    """Wait until ``address:port`` answers with an SSH banner; raise SandboxError if not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SandboxError(
                f"VM {name} stopped while booting (exit {process.returncode}); "
                f"console log: {console}"
            )
        try:
            with socket.create_connection((address, port), timeout=2) as conn:
                conn.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
                banner = conn.recv(256)
            if banner.startswith(b"SSH-"):
                return
            last = f"unexpected banner {banner[:40]!r}"
        except OSError as err:
            last = str(err)
        time.sleep(0.05)
    raise SandboxError(
        f"VM {name} did not answer SSH on {address}:{port} within {timeout:.0f}s ({last}); "
        f"console log: {console}"
    )


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[0] in ("Z", "X")


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def marked_processes(prefix: str) -> dict[int, str]:
    """Live processes whose marker is ``prefix`` or below it: pid -> VM dir."""
    found: dict[int, str] = {}
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(MARKER.encode() + b"="):
                value = item.split(b"=", 1)[1].decode(errors="replace")
                if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                    if not _is_zombie_or_gone(pid):
                        found[pid] = value
                break
    return found


def namespace_processes(namespace: str) -> list[int]:
    """Live processes in the PID namespace ``namespace`` (``pid:[inode]``)."""
    return [
        pid
        for pid in _all_pids()
        if pid_namespace(pid) == namespace and not _is_zombie_or_gone(pid)
    ]


def vm_processes(paths: VmPaths) -> list[int]:
    """Every live process of the VM: marked ones and those in its recorded PID namespace.

    The namespace counts only while one of the VM's marked processes is in it: a PID namespace
    dies with its init, and the kernel reuses a dead namespace's inode number for new ones, so
    a stopped VM's recorded ``pid:[inode]`` can name another VM's namespace (deleting a stopped
    build VM then killed the sshd of a test VM booted meanwhile, in parallel builds).
    """
    marked = marked_processes(str(paths.dir))
    pids = set(marked)
    namespace = read_state(paths).get("pid_namespace")
    if namespace and any(pid_namespace(pid) == namespace for pid in marked):
        pids.update(namespace_processes(namespace))
    return sorted(pids)


def stop(paths: VmPaths, process: subprocess.Popen | None = None, *, grace: float = 5.0) -> None:
    """Stop every process of the VM: SIGTERM to its init, then SIGKILL whatever is left.

    Returns only when no process of the VM is alive any more; its mount namespace (and with
    it every mount of the VM) is then gone.
    """
    state = read_state(paths)
    needle = f"{MARKER}={paths.dir}".encode()
    init_pid = state.get("init_pid")
    if grace > 0 and init_pid and _environ_has(init_pid, needle):
        try:
            os.kill(init_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not _is_zombie_or_gone(init_pid):
            time.sleep(0.05)
    kill(paths)
    if process is not None:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired as err:
            raise SandboxError(f"VM {paths.dir.name}: unshare did not exit") from err


def kill(paths: VmPaths, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process of the VM and wait until they are gone; return their pids."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        pids = vm_processes(paths)
        if not pids:
            return sorted(killed)
        if time.monotonic() > deadline:
            raise SandboxError(
                f"VM {paths.dir.name}: processes {pids} survived SIGKILL for {timeout:.0f}s"
            )
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def host_mounts_under(path: Path) -> list[str]:
    """Mount points in the host's (this process's) mount table at or below ``path``."""
    prefix = str(path).rstrip("/")
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            target = fields[1].replace("\\040", " ")
            if target == prefix or target.startswith(prefix + "/"):
                found.append(target)
    return found


def remove(paths: VmPaths) -> None:
    """Remove the VM's files (its processes must be gone); refuse if anything is mounted."""
    mounted = host_mounts_under(paths.dir)
    if mounted:
        raise SandboxError(f"VM {paths.dir.name}: {mounted[0]} is mounted; not removing it")
    remove_tree(paths.dir)


def overlay_supported(directory: Path) -> bool:
    """Whether overlayfs can use ``directory``'s filesystem as an upper layer.

    Not every filesystem can (an overlayfs root, as in many containers, cannot). The probe
    mounts a tiny overlay in a throw-away private mount namespace.
    """
    probe = directory / f".overlay-probe-{os.getpid()}-{time.monotonic_ns()}"
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir(parents=True)
        options = f"lowerdir={probe}/lower,upperdir={probe}/upper,workdir={probe}/work"
        result = subprocess.run(
            [*UNSHARE_MOUNT, "mount", "-t", "overlay", "overlay", "-o", options, f"{probe}/merged"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0
    finally:
        remove_tree(probe)
