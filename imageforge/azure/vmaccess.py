"""Access to a throw-away VM: its per-run credentials, and who may connect to it.

Credentials:

- Linux: a per-run ed25519 key (``generate_key``), written 0600 into a private directory the
  caller owns and removes; password authentication stays disabled on the VM.
- Windows: a per-run random password (``generate_password``) that exists only in memory; it
  goes into the VM's PUT body and nowhere else (never argv, logs or tags).

Who may connect (``nsg_source``, the NSG rule's source): ``allowed_source`` when given; on the
sandbox 127.0.0.1/32; with an existing ``subnet_id`` (a runner inside the VNet) the VM gets no
public IP and the rule admits ``VirtualNetwork``; otherwise the runner's address must be given
(``allowed_source`` or ``IMAGEFORGE_TEST_ALLOWED_SOURCE``, e.g. ``203.0.113.7/32``, or
``auto``: this machine's public address as an echo service sees it, see ``egress``):
imageforge never opens SSH or WinRM to the whole internet by default.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import string
from pathlib import Path

from imageforge.azure import egress
from imageforge.azure.clients import Session
from imageforge.errors import ConfigError

ALLOWED_SOURCE_ENV = "IMAGEFORGE_TEST_ALLOWED_SOURCE"
SANDBOX_SOURCE = "127.0.0.1/32"
#: Service tags an NSG rule's source may name as they are.
SERVICE_TAGS = ("*", "VirtualNetwork", "Internet", "AzureCloud")
_PASSWORD_SPECIALS = "!#%+-=@_~"


def generate_key(directory: Path, comment: str) -> tuple[Path, str]:
    """An ed25519 key pair: the private key file (0600, OpenSSH format) and the public line."""
    # cryptography is heavy: loaded when a key is made, not when imageforge.azure is imported
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path = directory / "id_ed25519"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    return path, f"{public.decode()} {comment}"


def generate_password(length: int = 24) -> str:
    """A random password that meets Azure's complexity rules (upper, lower, digit, special)."""
    pools = (string.ascii_uppercase, string.ascii_lowercase, string.digits, _PASSWORD_SPECIALS)
    alphabet = "".join(pools)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in pool for c in candidate) for pool in pools):
            return candidate


def nsg_source(session: Session, allowed_source: str | None, subnet_id: str | None) -> str:
    """The NSG rule's source address prefix (see the module docstring)."""
    value = allowed_source or (
        None if session.target == "sandbox" else os.environ.get(ALLOWED_SOURCE_ENV)
    )
    if value:
        value = value.strip()
        if value.lower() == egress.AUTO:
            if session.target == "sandbox":
                return SANDBOX_SOURCE
            if subnet_id:  # a runner inside the VNet connects from there, not from its egress
                return "VirtualNetwork"
            return egress.own_address(session.site.egress_ip_url)
        if value in SERVICE_TAGS:
            return value
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigError(
                f"allowed source {value!r} is not an IP address or CIDR range (e.g. 203.0.113.7/32)"
            ) from None
    if session.target == "sandbox":
        return SANDBOX_SOURCE
    if subnet_id:
        return "VirtualNetwork"
    raise ConfigError(
        f"the test VM would be reachable from anywhere: set {ALLOWED_SOURCE_ENV} to this "
        "runner's public address (e.g. 203.0.113.7/32) or give an existing subnet to test in"
    )
