"""Run Command: ``POST .../virtualMachines/{vmName}/runCommand`` (VirtualMachines_RunCommand).

As in ComputeRP's runCommand.json (stable 2024-11-01): the body is a RunCommandInput
(``commandId``, ``script`` lines, ``parameters``), the answer 202 with the operation's monitors
(``final-state-via: location``), and the Location monitor answers 202 until the command is
done, then 200 with a RunCommandResult, ``{"value": [InstanceViewStatus]}``.

The sandbox runs only ``RunShellScript``: the script's lines joined with newlines, run by bash
as root inside the VM through the backend's ``run_command``. It passes no ``parameters`` to
the script (Azure exports them as environment variables; a sandbox limitation), and refuses
the other built-in commands. The result has the shape of Azure's Linux Run Command extension
(one status whose message carries the tails of stdout and stderr); a script's non-zero exit is
a result, and the operation fails only when the machine could not run the script.

Neither the script nor its output is logged: the request log keeps no bodies (stats.py); the
result lives only in the operation, as Azure keeps it for the Location monitor.
"""

from __future__ import annotations

from typing import Any

from imageforge.sandbox.backend import CommandOutput, output_tail
from imageforge.sandbox.emulator.armerrors import invalid_parameter, not_allowed
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import vms
from imageforge.sandbox.emulator.messages import ArmRequest, ArmResponse
from imageforge.sandbox.emulator.store import Resource

RUN_SHELL_SCRIPT = "RunShellScript"
#: The built-in command ids of ``az vm run-command list`` (from memory): Linux's, Windows'.
LINUX_COMMANDS = (RUN_SHELL_SCRIPT, "ifconfig", "RemoveRunCommandLinuxExtension")
WINDOWS_COMMANDS = (
    "RunPowerShellScript", "DisableNLA", "DisableWindowsUpdate", "EnableAdminAccount",
    "EnableEMS", "EnableRemotePS", "EnableWindowsUpdate", "IPConfig", "RDPSettings",
    "RemoveRunCommandWindowsExtension", "ResetRDPCert", "SetRDPPort",
)  # fmt: skip
#: Azure stops an action Run Command's script after 90 minutes.
TIMEOUT_SECONDS = 90 * 60.0


def run_command(em: Emulator, req: ArmRequest) -> ArmResponse:
    with em.store.lock:
        res = vms.require_vm(em, req)
        script = _script(req.body, res)
        _require_running(res)
    vm_key = res.internal["vmKey"]

    def work(_op_id: str) -> dict[str, Any]:
        return result(em.backend.run_command(vm_key, script, timeout=TIMEOUT_SECONDS))

    return em.ops.start(
        req, provider=vms.PROVIDER, location=res.body["location"], resource_id=res.id,
        work=work, status=202,
    )  # fmt: skip


def result(output: CommandOutput) -> dict[str, Any]:
    """The RunCommandResult of a script that ran, in the format of Azure's Linux Run Command
    extension (written from memory): one status, succeeded for exit 0, failed otherwise, its
    message the last 4096 bytes of stdout and of stderr under ``[stdout]`` and ``[stderr]``."""
    streams = f"[stdout]\n{output_tail(output.stdout)}\n[stderr]\n{output_tail(output.stderr)}"
    if output.exit_code == 0:
        status = {
            "code": "ProvisioningState/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "message": "Enable succeeded: \n" + streams,
        }
    else:
        status = {
            "code": "ProvisioningState/failed",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": "Enable failed: failed to execute command: command terminated with "
            f"exit status={output.exit_code}\n" + streams,
        }
    return {"value": [status]}


def _script(body: Any, res: Resource) -> str:
    """The script a RunCommandInput asks to run, or InvalidParameter for what cannot run."""
    if not isinstance(body, dict) or not isinstance(body.get("commandId"), str):
        raise invalid_parameter("Required parameter 'commandId' is missing (null).", "commandId")
    command_id = body["commandId"]
    name = res.body["name"]
    linux = str(res.internal.get("osType", "Linux")).lower() == "linux"
    known = {c.lower(): c for c in (LINUX_COMMANDS if linux else WINDOWS_COMMANDS)}
    other = {c.lower() for c in (WINDOWS_COMMANDS if linux else LINUX_COMMANDS)}
    wanted = command_id.lower()
    if wanted in other:
        raise invalid_parameter(
            f"The command '{command_id}' cannot run on virtual machine '{name}': it is a "
            f"{'Windows' if linux else 'Linux'} command and the VM runs "
            f"{'Linux' if linux else 'Windows'}.",
            "commandId",
        )
    if wanted not in known:
        raise invalid_parameter(
            f"The command id '{command_id}' is not a Run Command; the commands of virtual "
            f"machine '{name}' are {', '.join(known.values())}.",
            "commandId",
        )
    if known[wanted] != RUN_SHELL_SCRIPT:
        raise invalid_parameter(
            f"The sandbox runs only {RUN_SHELL_SCRIPT}, not '{known[wanted]}'; give the "
            "command as a script.",
            "commandId",
        )
    if body.get("parameters"):
        raise invalid_parameter(
            f"The sandbox passes no parameters to {RUN_SHELL_SCRIPT} (a sandbox limitation); "
            "write the values into the script.",
            "parameters",
        )
    lines = body.get("script")
    if lines is None:
        lines = []
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise invalid_parameter("The script must be a list of strings (its lines).", "script")
    return "\n".join(lines)


def _require_running(res: Resource) -> None:
    """409 OperationNotAllowed unless the VM runs. The code and the wording are Azure's as we
    remember them (not checked against a spec or a recorded answer)."""
    props, internal = res.properties, res.internal
    state = str(internal.get("power") or "starting")
    provisioning = props.get("provisioningState")
    if internal.get("generalized"):
        state = "generalized"
    elif provisioning in ("Creating", "Deleting", "Failed"):
        state = str(provisioning).lower()
    if state != "running":
        raise not_allowed(
            "The operation requires the VM to be running (or set to run). Virtual machine "
            f"'{res.body['name']}' is {state}."
        )
