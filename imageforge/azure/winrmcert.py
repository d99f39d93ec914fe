"""A Windows test VM's own WinRM HTTPS listener, and the certificate imageforge then pins.

An image carries no WinRM listener of its own: Invoke-Sysprep.ps1 removes the build VM's, whose
private key every VM of the image would otherwise share. Once a test VM runs, imageforge runs
``LISTENER_SCRIPT`` on it through the Run Command API (``POST .../virtualMachines/{vm}/
runCommand`` with ``commandId`` RunPowerShellScript, ComputeRP runCommand.json). The script
makes a self-signed certificate for the address imageforge connects to (a subjectAltName IP or
DNS entry), valid two days, private key not exportable; replaces any HTTPS listener with one on
that certificate; and prints the certificate's public part. That answer comes back through ARM,
authenticated, so it is the VM's own certificate, not something met on the network.

TLS policy: the suite and the reachability check verify the server with that certificate as
the only trust anchor and the address checked against it (pywinrm's ``ca_trust_path``, Python's
``ssl`` with ``check_hostname``). Nothing is ever connected with validation off, and no password
takes part in any of this.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import ssl
from typing import Any

from imageforge.azure import runcommand
from imageforge.azure.arm import arm_call, as_json, one_line
from imageforge.azure.clients import Session
from imageforge.errors import AzureError

MARKER = "IMAGEFORGE-WINRM-CERTIFICATE:"
FIREWALL_RULE = "imageforge-WinRM-HTTPS-In"

LISTENER_SCRIPT = (
    "param([string]$Address, [string]$Kind)",
    "Set-StrictMode -Version Latest",
    "$ErrorActionPreference = 'Stop'",
    "Get-ChildItem -Path WSMan:\\localhost\\Listener |",
    "    Where-Object { $_.Keys -contains 'Transport=HTTPS' } |",
    '    ForEach-Object { Remove-Item -Path "WSMan:\\localhost\\Listener\\$($_.Name)" '
    "-Recurse -Force }",
    '$cert = New-SelfSignedCertificate -Subject "CN=$Address" `',
    '    -TextExtension @("2.5.29.17={text}$Kind=$Address") `',
    "    -CertStoreLocation Cert:\\LocalMachine\\My -KeyExportPolicy NonExportable `",
    "    -NotAfter (Get-Date).AddDays(2)",
    "New-Item -Path WSMan:\\localhost\\Listener -Transport HTTPS -Address * `",
    "    -CertificateThumbPrint $cert.Thumbprint -Force | Out-Null",
    f"if (-not (Get-NetFirewallRule -Name '{FIREWALL_RULE}' -ErrorAction SilentlyContinue)) {{",
    f"    New-NetFirewallRule -Name '{FIREWALL_RULE}' -DisplayName 'WinRM over HTTPS' `",
    "        -Direction Inbound -Protocol TCP -LocalPort 5986 -Action Allow | Out-Null",
    "}",
    f"Write-Output ('{MARKER}' + [Convert]::ToBase64String($cert.RawData))",
)


def run_command_input(address: str) -> dict[str, Any]:
    """The RunCommandInput body for ``address`` (what the suite connects to)."""
    try:
        ipaddress.ip_address(address)
        kind = "IPAddress"
    except ValueError:
        kind = "DNS"
    return {
        "commandId": "RunPowerShellScript",
        "script": list(LISTENER_SCRIPT),
        "parameters": [{"name": "Address", "value": address}, {"name": "Kind", "value": kind}],
    }


def certificate_from_result(result: dict[str, Any], address: str, *, vm: str) -> str:
    """The PEM of the certificate ``LISTENER_SCRIPT`` printed, checked: it names ``address``
    and is valid now. ``result`` is the RunCommandResult JSON (``value``: instance view
    statuses whose ``code`` is ``ComponentStatus/StdOut/...`` or ``.../StdErr/...``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    streams = runcommand.output(result)
    stdout, stderr = streams.stdout, streams.stderr
    encoded = next(
        (
            line.strip()[len(MARKER) :]
            for line in stdout.splitlines()
            if line.strip().startswith(MARKER)
        ),
        None,
    )
    if not encoded:
        why = one_line(stderr, 160) or one_line(stdout, 160) or "no output"
        raise AzureError(f"{vm}: the WinRM listener was not set up by Run Command ({why})")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True))
    except ValueError as err:
        raise AzureError(f"{vm}: Run Command returned no valid certificate ({err})") from None
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    listed = {str(n) for n in names.get_values_for_type(x509.IPAddress)} if names else set()
    listed |= set(names.get_values_for_type(x509.DNSName)) if names else set()
    if address not in listed and str(_normalized(address)) not in listed:
        raise AzureError(
            f"{vm}: the WinRM certificate names {', '.join(sorted(listed)) or 'nothing'}, "
            f"not {address}"
        )
    now = dt.datetime.now(dt.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise AzureError(f"{vm}: the WinRM certificate is not valid now")
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _normalized(address: str) -> object:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return address


def configure_listener(session: Session, group: str, vm_name: str, address: str) -> str:
    """Give the VM its own listener and certificate (see the module docstring); its PEM."""
    where = f"virtual machine {vm_name} in {group}"
    with arm_call(f"setting up the WinRM listener of {where}", where=session.where):
        result = session.compute.virtual_machines.begin_run_command(
            group, vm_name, run_command_input(address)
        ).result()
    return certificate_from_result(as_json(result), address, vm=where)


def tls_context(certificate_pem: str) -> ssl.SSLContext:
    """Verify the server against this one certificate, and its name or address against it."""
    context = ssl.create_default_context(cadata=certificate_pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def check_tls(host: str, port: int, certificate_pem: str, *, timeout: float) -> None:
    """One TLS handshake with the pinned certificate; OSError (ssl errors included) if not."""
    context = tls_context(certificate_pem)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host):
            return
