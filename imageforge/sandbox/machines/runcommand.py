"""Run Command's RunShellScript inside a running sandbox VM: a script run by bash as root.

The script runs as the VM's own processes do: ``nsenter`` enters the namespaces of the VM's
init (mount, PID, UTS, IPC; the network is the host's, as for every sandbox VM), then
``chroot`` into the VM's root, with the environment vminit gives the VM's processes (its PATH,
HOME=/root, LANG) and nothing of the emulator's. bash reads the script from a file descriptor
(``/dev/fd/N``, the VM's /proc), so the script's commands get /dev/null as stdin and cannot
read the rest of the script. stdout and stderr go to temporary files, so a background process
the script leaves running cannot hold the call open, and only their tails are read back.

The ``nsenter`` process carries the VM's marker (vm.py), so a reap or a delete of the VM finds
and kills it with the VM; the script itself is in the VM's PID namespace and dies with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import imageforge.sandbox.machines.vm as vm
from imageforge.errors import SandboxError
from imageforge.sandbox.backend import OUTPUT_TAIL_BYTES, CommandOutput, output_tail
from imageforge.sandbox.machines import vminit


def run_script(paths: vm.VmPaths, init_pid: int, script: str, *, timeout: float) -> CommandOutput:
    """Run ``script`` in the VM whose init is ``init_pid``; return how it ended.

    A script killed by a signal reports the shell's status for it, 128 + the signal. Raises
    SandboxError when ``init_pid`` is not the VM's init any more, or after killing a script
    still running after ``timeout`` seconds.
    """
    if not _is_init_of(paths, init_pid):
        raise SandboxError(f"VM {paths.dir.name} is not running (its init is gone)")
    env_args = [f"{name}={value}" for name, value in vminit.chroot_env().items()]
    with (
        tempfile.TemporaryFile(prefix="runcommand-") as source,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        source.write(script.encode())
        source.flush()
        source.seek(0)
        fd = source.fileno()
        argv = [
            "nsenter", f"--target={init_pid}", "--mount", "--pid", "--uts", "--ipc", "--",
            "env", "-i", *env_args, "chroot", str(paths.root), "/bin/bash", f"/dev/fd/{fd}",
        ]  # fmt: skip
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=(fd,),
            env=vm.marker_env(paths.dir),
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(process)
            raise SandboxError(
                f"the command on VM {paths.dir.name} did not finish within {timeout:.0f}s; "
                "it was killed"
            ) from None
        if code < 0:  # killed by a signal (nsenter dies of its child's)
            code = 128 - code
        return CommandOutput(code, _tail(out), _tail(err))


def _is_init_of(paths: vm.VmPaths, pid: int) -> bool:
    """Whether ``pid`` is alive and carries the VM's marker (its init, not a reused pid)."""
    needle = f"{vm.MARKER}={paths.dir}".encode()
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _tail(stream: IO[bytes]) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - OUTPUT_TAIL_BYTES))
    return output_tail(stream.read())


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (host pids), children first."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            parent = int(stat.rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` (nsenter), its process group and every descendant, then reap it.

    The group goes first and at once: a process whose parent is killed is adopted by the VM's
    init and is no descendant any more, but it stays in the group (unless it left it)."""
    pids = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
