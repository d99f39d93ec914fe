"""Run Command (``POST .../virtualMachines/{vmName}/runCommand``) against the emulator.

The shared emulator runs the inert backend: it has no machine, so a script "runs" with exit 0
and no output, and these tests check ARM's side (the spec's request, its long-running answer,
the RunCommandResult, what is refused). tests/sandbox runs scripts on real machines.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute.models import RunCommandResult
from emulator_helpers import error_of, make_vm, rg_path

API = {"api-version": "2026-04-01"}
SUCCEEDED = {
    "code": "ProvisioningState/succeeded",
    "level": "Info",
    "displayStatus": "Provisioning succeeded",
    "message": "Enable succeeded: \n[stdout]\n\n[stderr]\n",
}


def _path(clients, group: str, vm: str = "vm") -> str:
    return f"{rg_path(clients, group)}/providers/Microsoft.Compute/virtualMachines/{vm}/runCommand"


def test_the_sdk_runs_a_shell_script_and_gets_the_result(clients, rg):
    make_vm(clients, rg)
    poller = clients.compute.virtual_machines.begin_run_command(
        rg, "vm", {"commandId": "RunShellScript", "script": ["id -u", "hostname"]}
    )
    result = poller.result()
    assert isinstance(result, RunCommandResult)
    assert [(s.code, s.level, s.display_status, s.message) for s in result.value] == [
        (
            "ProvisioningState/succeeded",
            "Info",
            "Provisioning succeeded",
            "Enable succeeded: \n[stdout]\n\n[stderr]\n",
        )
    ]


def test_run_command_is_a_long_running_operation_ending_at_its_location(clients, rg, arm):
    make_vm(clients, rg)
    arm.reset_stats()
    script = ["echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0secretish key@test'"]
    started = clients.send("POST", _path(clients, rg), {"commandId": "RunShellScript",
                                                        "script": script}, **API)  # fmt: skip
    assert started.status_code == 202, started.text()
    location = started.headers["Location"]
    # the spec example's Location: the compute operation with monitor=true
    assert "/providers/Microsoft.Compute/locations/westus/operations/" in location
    assert "monitor=true" in location
    assert "/operations/" in started.headers["Azure-AsyncOperation"]
    assert int(started.headers["Retry-After"]) >= 1
    status = clients.send("GET", started.headers["Azure-AsyncOperation"]).json()
    assert status["status"] == "Succeeded"
    final = clients.send("GET", location)
    assert final.status_code == 200
    assert final.json() == {"value": [SUCCEEDED]}
    # the request log keeps method, path and status, never the script or its output
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIH0secretish" not in str(arm.stats())


def test_run_command_on_a_missing_vm_is_404(clients, rg):
    with pytest.raises(ResourceNotFoundError) as raised:
        clients.compute.virtual_machines.begin_run_command(
            rg, "nowhere", {"commandId": "RunShellScript", "script": ["true"]}
        )
    assert raised.value.error.code == "ResourceNotFound"


@pytest.mark.parametrize(
    ("body", "target", "words"),
    [
        (["RunShellScript"], "commandId", "'commandId' is missing"),
        ({}, "commandId", "'commandId' is missing"),
        ({"script": ["true"]}, "commandId", "'commandId' is missing"),
        ({"commandId": "RunPowerShellScript"}, "commandId", "Windows command"),
        ({"commandId": "NoSuchCommand"}, "commandId", "not a Run Command"),
        ({"commandId": "ifconfig"}, "commandId", "runs only RunShellScript"),
        (
            {"commandId": "RunShellScript", "script": ["echo $1"],
             "parameters": [{"name": "arg1", "value": "x"}]},
            "parameters",
            "passes no parameters",
        ),
        ({"commandId": "RunShellScript", "script": "echo one line"}, "script", "list of strings"),
    ],
)  # fmt: skip
def test_what_the_sandbox_cannot_run_is_400_invalid_parameter(clients, rg, body, target, words):
    make_vm(clients, rg)
    answer = clients.send("POST", _path(clients, rg), body, **API)
    assert answer.status_code == 400
    error = error_of(answer)
    assert (error["code"], error["target"]) == ("InvalidParameter", target)
    assert words in error["message"]


def test_the_sdk_sees_a_refused_command_as_an_http_error(clients, rg):
    make_vm(clients, rg)
    with pytest.raises(HttpResponseError) as raised:
        clients.compute.virtual_machines.begin_run_command(
            rg, "vm", {"commandId": "RunPowerShellScript", "script": ["Get-Date"]}
        )
    assert raised.value.status_code == 400
    assert raised.value.error.code == "InvalidParameter"


def test_a_vm_that_is_not_running_refuses_with_409(clients, rg, arm):
    compute = clients.compute
    make_vm(clients, rg, "off")
    compute.virtual_machines.begin_deallocate(rg, "off").result()
    answer = clients.send("POST", _path(clients, rg, "off"), {"commandId": "RunShellScript"}, **API)
    assert answer.status_code == 409
    error = error_of(answer)
    assert error["code"] == "OperationNotAllowed"
    assert "'off'" in error["message"] and "deallocated" in error["message"]

    compute.virtual_machines.generalize(rg, "off")
    error = error_of(
        clients.send("POST", _path(clients, rg, "off"), {"commandId": "RunShellScript"}, **API)
    )
    assert error["code"] == "OperationNotAllowed" and "generalized" in error["message"]

    # a VM whose creation failed is stopped
    arm.set_faults([{"kind": "lro_failed", "method": "PUT", "path": "/virtualMachines/broken$"}])
    with pytest.raises(HttpResponseError):
        make_vm(clients, rg, "broken")
    answer = clients.send(
        "POST", _path(clients, rg, "broken"), {"commandId": "RunShellScript"}, **API
    )
    assert answer.status_code == 409
    assert "'broken'" in error_of(answer)["message"]


def test_a_machine_that_cannot_run_the_script_fails_the_operation(clients, rg, arm):
    make_vm(clients, rg)
    arm.set_faults(
        [{"kind": "lro_failed", "method": "POST", "path": "/runCommand$",
          "code": "SandboxMachineError", "message": "the VM stopped"}]
    )  # fmt: skip
    poller = clients.compute.virtual_machines.begin_run_command(
        rg, "vm", {"commandId": "RunShellScript", "script": ["true"]}
    )
    with pytest.raises(HttpResponseError) as raised:
        poller.result()
    assert "the VM stopped" in str(raised.value)


def test_run_command_is_served_with_the_vm_api_versions(clients, rg):
    make_vm(clients, rg)
    answer = clients.send(
        "POST", _path(clients, rg), {"commandId": "RunShellScript"}, **{"api-version": "2024-11-01"}
    )
    assert answer.status_code == 202
    refused = clients.send(
        "POST", _path(clients, rg), {"commandId": "RunShellScript"}, **{"api-version": "2026-03-03"}
    )
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "NoRegisteredProviderFound"
