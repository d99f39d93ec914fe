"""Run Command: a script run on a VM by Azure's agent (root on Linux), its output through ARM.

``POST .../virtualMachines/{vm}/runCommand`` (ComputeRP runCommand.json, a long-running
operation whose final state comes from its Location) answers a RunCommandResult: a list of
instance-view statuses. Two shapes come back, and ``output`` reads both:

- the spec's example (RunPowerShellScript): ``ComponentStatus/StdOut/succeeded`` and
  ``ComponentStatus/StdErr/succeeded``, each message one stream;
- the Linux extension's (RunShellScript): one ``ProvisioningState/succeeded`` (or ``/failed``)
  whose message is ``Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...``. This shape is from
  memory of Azure's answers, not from a spec; the sandbox emulator answers the same.

``add_login_key`` is how a test reaches a VM made from a Specialized image: such a VM has no
osProfile (Azure refuses one), so no user or key is provisioned on it. Run Command gives the
test's admin user, on that VM only, the run's public key and a sudo rule; nothing of it is in
the image, and it goes when the VM's group is deleted.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from imageforge.azure.arm import arm_call, as_json, one_line
from imageforge.azure.clients import Session
from imageforge.errors import AzureError

KEY_ADDED = "IMAGEFORGE-LOGIN-KEY-ADDED"
SUDOERS_FILE = "/etc/sudoers.d/imageforge-test"
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_PUBLIC_KEY = re.compile(r"^ssh-ed25519 [A-Za-z0-9+/]+=* [A-Za-z0-9._@-]+$")


@dataclass(frozen=True)
class CommandOutput:
    """What one Run Command printed, and whether it succeeded."""

    succeeded: bool
    stdout: str
    stderr: str


def output(result: dict[str, Any]) -> CommandOutput:
    """The streams of a RunCommandResult's JSON, in either shape (the module docstring)."""
    stdout = stderr = ""
    succeeded = True
    for status in result.get("value") or []:
        code = str(status.get("code", ""))
        message = str(status.get("message") or "")
        if "/StdOut/" in code:
            stdout += message
        elif "/StdErr/" in code:
            stderr += message
        elif code.startswith("ProvisioningState/"):
            succeeded = succeeded and code.lower().endswith("/succeeded")
            head, _, streams = message.partition("[stdout]\n")
            out, _, err = streams.partition("\n[stderr]\n")
            stdout += out
            stderr += err if streams else head
        if code.lower().endswith("/failed"):
            succeeded = False
    return CommandOutput(succeeded, stdout, stderr)


def login_key_script(user: str, public_key: str) -> list[str]:
    """The RunShellScript lines: ``user`` (made if missing) may log in with ``public_key`` and
    sudo without a password."""
    if not _USER.match(user):
        raise AzureError(f"{user!r} is not a Linux user name")
    if not _PUBLIC_KEY.match(public_key.strip()):
        raise AzureError("the per-run key is not an ssh-ed25519 public key")
    q_user, q_key = shlex.quote(user), shlex.quote(public_key.strip())
    return [
        "set -eu",
        f"user={q_user}",
        'if ! id -u "$user" >/dev/null 2>&1; then',
        '  useradd --create-home --shell /bin/bash --user-group "$user"',
        "fi",
        'home="$(getent passwd "$user" | cut -d: -f6)"',
        'install -d -m 700 -o "$user" -g "$user" "$home/.ssh"',
        f'printf "%s\\n" {q_key} >> "$home/.ssh/authorized_keys"',
        'chown "$user:$user" "$home/.ssh/authorized_keys"',
        'chmod 600 "$home/.ssh/authorized_keys"',
        f'printf "%s ALL=(ALL) NOPASSWD: ALL\\n" "$user" > {SUDOERS_FILE}',
        f"chmod 440 {SUDOERS_FILE}",
        f"echo {KEY_ADDED}",
    ]


def run_shell_script(
    session: Session, group: str, vm_name: str, script: list[str]
) -> CommandOutput:
    """Run ``script`` as root on the Linux VM ``vm_name``; its output."""
    where = f"virtual machine {vm_name} in {group}"
    with arm_call(f"running a command on {where}", where=session.where):
        result = session.compute.virtual_machines.begin_run_command(
            group, vm_name, {"commandId": "RunShellScript", "script": script}
        ).result()
    return output(as_json(result))


def add_login_key(session: Session, group: str, vm_name: str, user: str, public_key: str) -> None:
    """Give ``user`` on this VM only the run's ``public_key`` (see the module docstring)."""
    result = run_shell_script(session, group, vm_name, login_key_script(user, public_key))
    if not result.succeeded or KEY_ADDED not in result.stdout:
        why = one_line(result.stderr, 160) or one_line(result.stdout, 160) or "no output"
        raise AzureError(
            f"virtual machine {vm_name} in {group}: Run Command did not add the test's login "
            f"key for {user} ({why})"
        )
