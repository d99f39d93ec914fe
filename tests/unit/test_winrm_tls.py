"""A Windows test VM's own WinRM certificate and the TLS policy that pins it (issue 12.1).

Windows cannot run here, so the VM is played by a local HTTPS server with a certificate made
the way LISTENER_SCRIPT makes one (self-signed, the address as subjectAltName). What is real:
Python's ssl, and the Windows suite run by ``verify.run_suite`` through Testinfra's WinRM
backend and pywinrm, which either completes the TLS handshake with the pinned certificate (and
then fails to log in, the server being no WinRM) or refuses the server's certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import REPO
from test_windows_build import syntax_errors

from imageforge.azure import winrmcert
from imageforge.errors import AzureError
from imageforge.verify import run_suite


def make_certificate(
    tmp: Path, address: str, *, days: int = 2, name: str = "vm"
) -> tuple[str, Path, Path]:
    """A self-signed certificate for ``address``: (PEM, certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, cert_file, key_file


def run_command_result(pem: str, stderr: str = "") -> dict:  # type: ignore[type-arg]
    """A RunCommandResult as ComputeRP's VirtualMachineRunCommand example shapes it."""
    der = ssl.PEM_cert_to_DER_cert(pem)
    stdout = f"{winrmcert.MARKER}{base64.b64encode(der).decode()}\n"
    return {
        "value": [
            {"code": "ComponentStatus/StdOut/succeeded", "level": "Info",
             "displayStatus": "Provisioning succeeded", "message": stdout},
            {"code": "ComponentStatus/StdErr/succeeded", "level": "Info",
             "displayStatus": "Provisioning succeeded", "message": stderr},
        ]
    }  # fmt: skip


class _Unauthorized(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    """A TLS server on 127.0.0.1 with its own certificate: (port, its PEM, a scratch dir)."""
    tmp = tmp_path_factory.mktemp("winrm-tls")
    pem, cert_file, key_file = make_certificate(tmp, "127.0.0.1")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], pem, tmp
    httpd.shutdown()
    httpd.server_close()


# --- the certificate Run Command returns ----------------------------------------------------


def test_the_listener_script_parses_and_carries_no_secret():
    body = winrmcert.run_command_input("203.0.113.7")
    assert body["commandId"] == "RunPowerShellScript"
    assert {p["name"]: p["value"] for p in body["parameters"]} == {
        "Address": "203.0.113.7",
        "Kind": "IPAddress",
    }
    script = "\n".join(body["script"])
    assert syntax_errors(script) == []
    assert "-KeyExportPolicy NonExportable" in script and "Transport=HTTPS" in script
    assert "password" not in script.lower()
    assert winrmcert.run_command_input("vm.example.com")["parameters"][1]["value"] == "DNS"


def test_the_certificate_for_the_address_is_taken(tmp_path):
    pem, _, _ = make_certificate(tmp_path, "10.1.2.3")
    got = winrmcert.certificate_from_result(run_command_result(pem), "10.1.2.3", vm="vm")
    assert got == pem


def test_a_certificate_for_another_address_is_refused(tmp_path):
    pem, _, _ = make_certificate(tmp_path, "10.9.9.9")
    with pytest.raises(AzureError, match="names 10.9.9.9, not 10.1.2.3"):
        winrmcert.certificate_from_result(run_command_result(pem), "10.1.2.3", vm="vm")


def test_no_certificate_in_the_output_names_what_went_wrong():
    denied = "New-SelfSignedCertificate : Access is denied.\r\n"
    result = {
        "value": [
            {"code": "ComponentStatus/StdOut/succeeded", "message": ""},
            {"code": "ComponentStatus/StdErr/succeeded", "message": denied},
        ]
    }
    with pytest.raises(AzureError) as caught:
        winrmcert.certificate_from_result(result, "10.1.2.3", vm="virtual machine testvm in rg")
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "virtual machine testvm in rg: the WinRM listener was not set up by Run Command "
        "(New-SelfSignedCertificate : Access is denied.)"
    )


# --- TLS, pinned -----------------------------------------------------------------------------


def test_the_reachability_check_accepts_only_the_pinned_certificate(server, tmp_path):
    port, pem, _ = server
    winrmcert.check_tls("127.0.0.1", port, pem, timeout=5)
    other, _, _ = make_certificate(tmp_path, "127.0.0.1", name="other")
    with pytest.raises(ssl.SSLCertVerificationError):
        winrmcert.check_tls("127.0.0.1", port, other, timeout=5)


def _suite(server, certificate: str, name: str):  # type: ignore[no-untyped-def]
    port, _, tmp = server
    report = tmp / name
    result = run_suite(
        f"winrm://imageforge@127.0.0.1:{port}",
        os="windows",
        image_file=REPO / "images" / "windows-2022.pkrvars.hcl",
        version="1.0.0",
        admin_user="imageforge",
        report_dir=report,
        winrm_password="not-a-real-password-0",
        winrm_certificate=certificate,
        echo=lambda _line: None,
        repo_root=REPO,
    )
    return result, (report / "pytest.log").read_text()


def test_the_suite_trusts_the_vm_certificate_it_was_given(server):
    _, pem, _ = server
    result, log = _suite(server, pem, "pinned")
    assert result.exit_code == 2  # could not test: the server is no WinRM ...
    assert "cannot reach" in log
    assert "SSLError" not in log and "CERTIFICATE_VERIFY_FAILED" not in log  # ... but TLS held
    assert "not-a-real-password-0" not in log


def test_the_suite_refuses_a_server_whose_certificate_is_not_the_pinned_one(server):
    _, _, tmp = server
    other, _, _ = make_certificate(tmp, "127.0.0.1", name="impostor")
    result, log = _suite(server, other, "impostor")
    assert result.exit_code == 2
    assert "CERTIFICATE_VERIFY_FAILED" in log
