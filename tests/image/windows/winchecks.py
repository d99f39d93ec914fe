"""PowerShell checks of the Windows image suite, run through Testinfra's ``host.run``.

Testinfra's Windows support is thin, so each check is a small PowerShell script sent as
``powershell -NoProfile -NonInteractive -EncodedCommand <base64 UTF-16LE>`` (no quoting
problems through WinRM and cmd.exe) that prints JSON; a pure function then turns the JSON
into a ``Verdict`` whose ``detail`` a release manager understands. No script takes a secret:
the WinRM password lives in the connection, never in a command.

``read_*`` functions talk to the host; ``check_*`` functions decide. tests/unit/
test_windows_suite.py drives both with a recording fake host.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol

POWERSHELL = "powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand {}"
PRELUDE = "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'\n"

MARKER_KEY = r"HKLM:\SOFTWARE\imageforge"
RDP_TCP_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp"
TERMINAL_SERVER_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server"
SETUP_STATE_KEY = r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"
FIREWALL_PROFILES = ("Domain", "Private", "Public")

#: What the build must not leave behind: Packer's uploaded scripts and environment files,
#: PowerShell histories, unattend files with build-time settings.
LEFTOVER_PATTERNS = (
    r"C:\Windows\Temp\packer-*",
    r"C:\Windows\Temp\script-*.ps1",
    r"C:\Users\*\AppData\Roaming\Microsoft\Windows\PowerShell\PSReadLine\*_history.txt",
    r"C:\unattend.xml",
    r"C:\Windows\System32\Sysprep\unattend.xml",
)


class CommandResult(Protocol):
    rc: int
    stdout: str
    stderr: str


class Host(Protocol):
    def run(self, command: str, *args: str) -> CommandResult: ...


class CheckError(Exception):
    """A check script could not run or printed something that is not its JSON answer."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


def ps_quote(value: str) -> str:
    """Quote a value as a PowerShell single-quoted string literal."""
    return "'" + value.replace("'", "''") + "'"


def encode(script: str) -> str:
    """The -EncodedCommand argument for a script: base64 of its UTF-16LE text, with the prelude."""
    return base64.b64encode((PRELUDE + script).encode("utf-16-le")).decode("ascii")


def decode(command: str) -> str:
    """The script inside a command built by ``powershell_command`` (for tests and debugging)."""
    encoded = command.rsplit(" ", 1)[-1]
    return base64.b64decode(encoded).decode("utf-16-le").removeprefix(PRELUDE)


def powershell_command(script: str) -> str:
    return POWERSHELL.format(encode(script))


def powershell_json(host: Host, script: str) -> Any:
    """Run a script that prints JSON; return the parsed value (None for no output)."""
    result = host.run(powershell_command(script))
    if result.rc != 0:
        first = (result.stderr or result.stdout).strip().splitlines()[:1]
        raise CheckError(
            f"PowerShell check exited {result.rc}: {first[0] if first else 'no output'}"
        )
    text = result.stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise CheckError(f"PowerShell check printed no JSON: {text[:200]!r}") from None


# --- image marker ------------------------------------------------------------------------


def read_marker(host: Host) -> dict[str, str]:
    script = (
        f"if (-not (Test-Path -Path {ps_quote(MARKER_KEY)})) {{ '{{}}'; exit 0 }}\n"
        f"Get-ItemProperty -Path {ps_quote(MARKER_KEY)} | "
        "Select-Object -Property 'Image', 'Version', 'SourceCommit', 'BuildDate' | "
        "ConvertTo-Json -Compress"
    )
    value = powershell_json(host, script) or {}
    return {k: str(v) for k, v in value.items() if v is not None}


def check_marker_present(marker: dict[str, str]) -> Verdict:
    if marker:
        return Verdict(True, f"{MARKER_KEY} is present")
    return Verdict(
        False,
        f"{MARKER_KEY} is missing: the image was not built by imageforge's provisioners "
        "(Configure-ImageMarker.ps1 did not run)",
    )


def check_marker_image(marker: dict[str, str], image: str) -> Verdict:
    actual = marker.get("Image")
    return Verdict(
        actual == image,
        f"the VM says it is image {actual!r}, image {image!r} is under test",
    )


def check_marker_version(marker: dict[str, str], version: str) -> Verdict:
    actual = marker.get("Version")
    return Verdict(
        actual == version,
        f"the VM says it is version {actual!r}, version {version!r} is under test",
    )


# --- WinRM -------------------------------------------------------------------------------


def read_winrm(host: Host) -> dict[str, Any]:
    script = (
        "$transports = @(Get-ChildItem -Path WSMan:\\localhost\\Listener | ForEach-Object {\n"
        "    ($_.Keys | Where-Object { $_ -like 'Transport=*' }) -replace '^Transport=', ''\n"
        "})\n"
        "$unencrypted = (Get-Item -Path WSMan:\\localhost\\Service\\AllowUnencrypted).Value\n"
        "$listening = @(Get-ChildItem -Path WSMan:\\localhost\\Listener | ForEach-Object {\n"
        '    (Get-ChildItem -Path "WSMan:\\localhost\\Listener\\$($_.Name)" |\n'
        "        Where-Object { $_.Name -eq 'CertificateThumbprint' }).Value\n"
        "} | Where-Object { $_ })\n"
        "$marker = Get-ItemProperty -Path 'HKLM:\\SOFTWARE\\imageforge' `\n"
        "    -ErrorAction SilentlyContinue\n"
        "$build = @()\n"
        "if ($marker -and $marker.PSObject.Properties['BuildWinRMThumbprint']) {\n"
        "    $build = @([string]$marker.BuildWinRMThumbprint -split ',' | Where-Object { $_ })\n"
        "}\n"
        "$stored = @(Get-ChildItem -Path Cert:\\LocalMachine\\My |\n"
        "    ForEach-Object { $_.Thumbprint })\n"
        "ConvertTo-Json -Compress -InputObject ([ordered]@{\n"
        "    Transports = $transports; AllowUnencrypted = [string]$unencrypted;\n"
        "    Listening = $listening; Build = $build; Stored = $stored })"
    )
    value = powershell_json(host, script) or {}
    return {
        "transports": sorted(str(t).upper() for t in _strings(value.get("Transports"))),
        "allow_unencrypted": str(value.get("AllowUnencrypted", "")).lower(),
        "listening": {t.upper() for t in _strings(value.get("Listening"))},
        "build": {t.upper() for t in _strings(value.get("Build"))},
        "stored": {t.upper() for t in _strings(value.get("Stored"))},
    }


def _strings(value: Any) -> list[str]:
    """ConvertTo-Json gives a single-item array as a bare string, an empty one as null."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def check_winrm_https_listener(winrm: dict[str, Any]) -> Verdict:
    ok = "HTTPS" in winrm["transports"]
    return Verdict(
        ok,
        f"WinRM listeners: {', '.join(winrm['transports']) or 'none'}; "
        "an HTTPS listener is required to manage VMs made from this image",
    )


def check_winrm_no_http_listener(winrm: dict[str, Any]) -> Verdict:
    ok = "HTTP" not in winrm["transports"]
    return Verdict(
        ok,
        f"WinRM listeners: {', '.join(winrm['transports']) or 'none'}; "
        "a plain HTTP listener must not exist",
    )


def check_build_winrm_certificate_gone(winrm: dict[str, Any]) -> Verdict:
    """The build VM's WinRM certificate (Packer's, shared by every VM of the image if it stayed)
    is neither in the machine store nor behind a listener."""
    if not winrm.get("build"):
        return Verdict(
            False,
            "HKLM:\\SOFTWARE\\imageforge has no BuildWinRMThumbprint: Invoke-Sysprep.ps1 did not "
            "record (nor remove) the build's WinRM certificate",
        )
    left = sorted(winrm["build"] & (winrm["stored"] | winrm["listening"]))
    return Verdict(
        not left,
        f"the build's WinRM certificate {', '.join(left)} is still on this VM: every VM of the "
        "image would share its private key (Invoke-Sysprep.ps1 removes it)"
        if left
        else "the build's WinRM certificate is gone",
    )


def check_winrm_unencrypted_refused(winrm: dict[str, Any]) -> Verdict:
    ok = winrm["allow_unencrypted"] == "false"
    return Verdict(
        ok,
        f"WinRM AllowUnencrypted is {winrm['allow_unencrypted'] or 'unknown'}, must be false",
    )


# --- firewall ----------------------------------------------------------------------------


def read_firewall_profiles(host: Host) -> dict[str, bool]:
    script = (
        "ConvertTo-Json -Compress -InputObject @(Get-NetFirewallProfile | ForEach-Object {\n"
        "    [ordered]@{ Name = [string]$_.Name; Enabled = [string]$_.Enabled } })"
    )
    value = powershell_json(host, script) or []
    if isinstance(value, dict):
        value = [value]
    return {str(p["Name"]): str(p["Enabled"]).lower() == "true" for p in value}


def check_firewall_profile(profiles: dict[str, bool], name: str) -> Verdict:
    if name not in profiles:
        return Verdict(False, f"the {name} firewall profile was not found")
    state = "on" if profiles[name] else "off"
    return Verdict(profiles[name], f"the {name} firewall profile is {state}; it must be on")


# --- Remote Desktop ----------------------------------------------------------------------


def read_rdp(host: Host) -> dict[str, int | None]:
    script = (
        f"$server = Get-ItemProperty -Path {ps_quote(TERMINAL_SERVER_KEY)}\n"
        f"$rdp = Get-ItemProperty -Path {ps_quote(RDP_TCP_KEY)}\n"
        "ConvertTo-Json -Compress -InputObject ([ordered]@{\n"
        "    fDenyTSConnections = $server.fDenyTSConnections\n"
        "    UserAuthentication = $rdp.UserAuthentication\n"
        "    SecurityLayer = $rdp.SecurityLayer })"
    )
    value = powershell_json(host, script) or {}
    return {k: (int(v) if v is not None else None) for k, v in value.items()}


def check_rdp_enabled(rdp: dict[str, int | None]) -> Verdict:
    deny = rdp.get("fDenyTSConnections")
    return Verdict(
        deny == 0,
        f"Remote Desktop is {'enabled' if deny == 0 else 'disabled'} (fDenyTSConnections={deny})",
    )


def check_rdp_requires_nla(rdp: dict[str, int | None]) -> Verdict:
    value = rdp.get("UserAuthentication")
    return Verdict(
        value == 1,
        f"RDP UserAuthentication is {value}: Network Level Authentication must be required (1)",
    )


# --- Defender ----------------------------------------------------------------------------


def read_defender(host: Host) -> dict[str, Any]:
    script = (
        "$service = Get-Service -Name WinDefend -ErrorAction SilentlyContinue\n"
        "$status = $null\n"
        "try { $status = Get-MpComputerStatus } catch { }\n"
        "ConvertTo-Json -Compress -InputObject ([ordered]@{\n"
        "    Service = if ($service) { [string]$service.Status } else { 'NotInstalled' }\n"
        "    RealTimeProtectionEnabled = if ($status) { [bool]$status.RealTimeProtectionEnabled }"
        " else { $false } })"
    )
    value = powershell_json(host, script) or {}
    return {
        "service": str(value.get("Service", "NotInstalled")),
        "realtime": bool(value.get("RealTimeProtectionEnabled", False)),
    }


def check_defender_running(defender: dict[str, Any]) -> Verdict:
    return Verdict(
        defender["service"] == "Running",
        f"the Microsoft Defender service (WinDefend) is {defender['service']}, must be Running",
    )


def check_defender_realtime(defender: dict[str, Any]) -> Verdict:
    return Verdict(
        defender["realtime"],
        "Microsoft Defender real-time protection is "
        f"{'on' if defender['realtime'] else 'off'}; it must be on",
    )


# --- build leftovers ---------------------------------------------------------------------


def read_leftovers(host: Host) -> list[str]:
    patterns = ", ".join(ps_quote(p) for p in LEFTOVER_PATTERNS)
    script = (
        f"ConvertTo-Json -Compress -InputObject @(Get-Item -Path {patterns} -Force "
        "-ErrorAction SilentlyContinue | ForEach-Object { $_.FullName })"
    )
    value = powershell_json(host, script) or []
    if isinstance(value, str):
        value = [value]
    return sorted(str(v) for v in value)


def check_no_leftovers(leftovers: list[str]) -> Verdict:
    return Verdict(
        not leftovers,
        "the build left files in the image: " + (", ".join(leftovers) or "none"),
    )


def read_image_state(host: Host) -> str:
    script = (
        f"ConvertTo-Json -Compress -InputObject ([string](Get-ItemProperty -Path "
        f"{ps_quote(SETUP_STATE_KEY)} -ErrorAction SilentlyContinue).ImageState)"
    )
    return str(powershell_json(host, script) or "")


def check_sysprep_complete(image_state: str) -> Verdict:
    return Verdict(
        image_state == "IMAGE_STATE_COMPLETE",
        f"Windows setup state is {image_state or 'unknown'}, must be IMAGE_STATE_COMPLETE: "
        "the image was not generalized with sysprep, or the VM did not finish specializing",
    )


# --- features ----------------------------------------------------------------------------


def read_feature(host: Host, name: str) -> dict[str, Any] | None:
    script = (
        f"$feature = Get-WindowsFeature -Name {ps_quote(name)}\n"
        "if (-not $feature) { 'null'; exit 0 }\n"
        "ConvertTo-Json -Compress -InputObject ([ordered]@{\n"
        "    Name = [string]$feature.Name; Installed = [bool]$feature.Installed })"
    )
    value = powershell_json(host, script)
    return value if isinstance(value, dict) else None


def check_feature_installed(feature: dict[str, Any] | None, name: str) -> Verdict:
    if feature is None:
        return Verdict(False, f"Windows feature {name!r} does not exist on this Windows version")
    installed = bool(feature.get("Installed"))
    return Verdict(
        installed,
        f"required Windows feature {name!r} is "
        f"{'installed' if installed else 'not installed'} (image definition: "
        "test.required_features)",
    )
