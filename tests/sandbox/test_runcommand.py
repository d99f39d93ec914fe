"""ChrootBackend.run_command on real VMs: Run Command's RunShellScript, bash as root inside."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_helpers import BASE, next_address

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import OUTPUT_TAIL_BYTES, OsProfile
from imageforge.sandbox.machines import vm as vm_module
from imageforge.sandbox.machines.chroot import ChrootBackend
from imageforge.sandbox.machines.vminit import VM_PATH

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def runner(backend: ChrootBackend) -> Iterator[str]:
    """One running VM for the module's commands (hostname runner-01, admin azureuser)."""
    backend.boot(
        "runner", source=BASE, profile=OsProfile("runner-01", "azureuser"), address=next_address()
    )
    yield "runner"
    backend.delete("runner")
    assert vm_module.marked_processes(str(backend.state_dir / "vms" / "runner")) == {}


def test_the_script_runs_as_root_inside_the_vm(backend: ChrootBackend, runner: str) -> None:
    script = "\n".join(
        ["id -u", "hostname", "cat /etc/hostname", "echo to-stderr >&2", "getent passwd azureuser"]
    )
    output = backend.run_command(runner, script, timeout=60)
    assert output.exit_code == 0, output
    lines = output.stdout.splitlines()
    assert lines[:3] == ["0", "runner-01", "runner-01"]
    assert lines[3].startswith("azureuser:")
    assert output.stderr == "to-stderr\n"


def test_the_script_sees_the_vm_not_the_host(backend: ChrootBackend, runner: str) -> None:
    script = "\n".join(
        [
            'echo "path=$PATH home=$HOME"',
            "env | grep -c IMAGEFORGE_SANDBOX_VM || true",
            "tr '\\0' ' ' < /proc/1/cmdline; echo",  # the VM's PID namespace: its init is PID 1
            "ps -e -o pid= | wc -l",
            "test -e /etc/imageforge-not-on-host && echo leaked || echo ok",
        ]
    )
    output = backend.run_command(runner, script, timeout=60)
    assert output.exit_code == 0, output
    lines = output.stdout.splitlines()
    assert lines[0] == f"path={VM_PATH} home=/root"
    assert lines[1] == "0", "the emulator's environment does not reach the script"
    assert "vminit.py run" in lines[2]
    assert int(lines[3]) < 20, "the script sees the VM's processes only"
    # what a script writes is on the VM's disk, not the host's
    assert (
        backend.run_command(runner, "touch /etc/written-by-runcommand", timeout=60).exit_code == 0
    )
    assert (
        backend.run_command(runner, "test -f /etc/written-by-runcommand", timeout=60).exit_code == 0
    )
    assert not Path("/etc/written-by-runcommand").exists()


def test_stdin_is_empty_so_a_command_cannot_eat_the_script(
    backend: ChrootBackend, runner: str
) -> None:
    script = "if read -r line; then echo read:$line; else echo eof; fi\necho next-line"
    output = backend.run_command(runner, script, timeout=60)
    assert output.stdout == "eof\nnext-line\n"


def test_a_failing_script_reports_its_exit_status(backend: ChrootBackend, runner: str) -> None:
    output = backend.run_command(runner, "echo before\necho oops >&2\nexit 3", timeout=60)
    assert (output.exit_code, output.stdout, output.stderr) == (3, "before\n", "oops\n")
    killed = backend.run_command(runner, "kill -KILL $$", timeout=60)
    assert killed.exit_code == 128 + 9


def test_only_the_tail_of_long_output_is_kept(backend: ChrootBackend, runner: str) -> None:
    script = "head -c 100000 /dev/zero | tr '\\0' a; echo END\nhead -c 9000 /dev/zero >&2"
    output = backend.run_command(runner, script, timeout=60)
    assert len(output.stdout.encode()) == OUTPUT_TAIL_BYTES
    assert output.stdout.endswith("aaaEND\n")
    assert output.stderr == "\0" * OUTPUT_TAIL_BYTES


def test_a_background_process_does_not_hold_the_command(
    backend: ChrootBackend, runner: str
) -> None:
    started = time.monotonic()
    output = backend.run_command(runner, "sleep 300 &\necho started", timeout=60)
    assert output.stdout == "started\n"
    assert time.monotonic() - started < 30
    assert backend.run_command(runner, "pkill -x sleep", timeout=60).exit_code == 0


def test_a_script_past_its_timeout_is_killed(backend: ChrootBackend, runner: str) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError, match="did not finish within 1s"):
        backend.run_command(runner, "sleep 120; sleep 121", timeout=1)
    assert time.monotonic() - started < 20
    left = backend.run_command(runner, "pgrep -x sleep || echo none", timeout=60)
    assert left.stdout == "none\n", "the timed-out script's processes were killed"


def test_a_vm_that_is_not_running_cannot_run_commands(backend: ChrootBackend) -> None:
    with pytest.raises(SandboxError, match="not running"):
        backend.run_command("never-booted", "true", timeout=10)
    backend.boot(
        "stopped-runner",
        source=BASE,
        profile=OsProfile("stopped", "azureuser"),
        address=next_address(),
    )
    assert backend.run_command("stopped-runner", "true", timeout=60).exit_code == 0
    backend.stop("stopped-runner")
    with pytest.raises(SandboxError, match="stopped-runner is not running"):
        backend.run_command("stopped-runner", "true", timeout=10)
    backend.delete("stopped-runner")


def test_a_vm_stopped_while_the_script_runs_is_an_error(backend: ChrootBackend) -> None:
    key = "stopping-runner"
    backend.boot(
        key, source=BASE, profile=OsProfile("stopping", "azureuser"), address=next_address()
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            backend.run_command(key, "sleep 60", timeout=120)
        except BaseException as err:  # noqa: BLE001 - checked below
            errors.append(err)

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    time.sleep(1.0)
    backend.stop(key)  # not held up by the script: run_command holds no lock while it runs
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - started < 30
    assert len(errors) == 1 and isinstance(errors[0], SandboxError), errors
    assert "stopped while the command ran" in str(errors[0])
    backend.delete(key)
    assert vm_module.marked_processes(str(backend.state_dir / "vms" / key)) == {}
