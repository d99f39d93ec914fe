"""imageforge.azure.runcommand: reading both shapes of a RunCommandResult, and the login-key
script's refusals. The script itself runs on real sandbox VMs of a Specialized image
(tests/integration/test_sandbox_specialized.py) and the emulator's Run Command is checked in
tests/emulator."""

from __future__ import annotations

import pytest

from imageforge.azure.runcommand import KEY_ADDED, login_key_script, output
from imageforge.errors import AzureError

#: The response of ComputeRP's example VirtualMachineRunCommand.json (2024-11-01).
SPEC_EXAMPLE = {
    "value": [
        {
            "code": "ComponentStatus/StdOut/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "message": "This is a sample script with parameters value1 value2",
        },
        {
            "code": "ComponentStatus/StdErr/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "message": "",
        },
    ]
}


def linux(code: str, head: str, stdout: str, stderr: str) -> dict:
    message = f"{head}\n[stdout]\n{stdout}\n[stderr]\n{stderr}"
    return {"value": [{"code": code, "level": "Info", "message": message}]}


def test_the_spec_examples_shape_gives_its_streams():
    result = output(SPEC_EXAMPLE)
    assert result.succeeded
    assert result.stdout == "This is a sample script with parameters value1 value2"
    assert result.stderr == ""


def test_the_linux_extensions_shape_gives_its_streams_and_verdict():
    ok = output(linux("ProvisioningState/succeeded", "Enable succeeded: ", "a\nb", "warn"))
    assert (ok.succeeded, ok.stdout, ok.stderr) == (True, "a\nb", "warn")
    failed = output(
        linux(
            "ProvisioningState/failed",
            "Enable failed: failed to execute command: command terminated with exit status=1",
            "",
            "useradd: boom",
        )
    )
    assert (failed.succeeded, failed.stderr) == (False, "useradd: boom")


def test_a_message_without_streams_is_the_error_text():
    result = output({"value": [{"code": "ProvisioningState/failed", "message": "VM agent down"}]})
    assert (result.succeeded, result.stdout, result.stderr) == (False, "", "VM agent down")


def test_the_login_key_script_quotes_the_key_and_reports_success():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB imageforge-run-1"
    script = login_key_script("imageforge", key)
    assert f'printf "%s\\n" \'{key}\' >> "$home/.ssh/authorized_keys"' in script
    assert script[0] == "set -eu" and script[-1] == f"echo {KEY_ADDED}"


@pytest.mark.parametrize(
    ("user", "key", "fragment"),
    [
        ("Root;rm", "ssh-ed25519 AAAA k", "'Root;rm' is not a Linux user name"),
        ("imageforge", "ssh-rsa AAAA k", "not an ssh-ed25519 public key"),
        ("imageforge", "ssh-ed25519 AAAA k'; reboot", "not an ssh-ed25519 public key"),
    ],
)
def test_the_login_key_script_refuses_what_it_cannot_quote_safely(user, key, fragment):
    with pytest.raises(AzureError, match=fragment):
        login_key_script(user, key)
