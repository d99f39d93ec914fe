"""This machine's own public address, for ``test_allowed_source = "auto"``.

A Microsoft-hosted Azure DevOps agent gets a new public address for every job, so no fixed
range can be configured for the test VM's NSG rule. With ``auto``, imageforge asks an address
echo service (``egress_ip_url``, default https://api.ipify.org, which answers the caller's
address as plain text) once per test VM and admits exactly that address (/32, /128) for the
test's lifetime: the rule lives in the throw-away resource group and goes with it. The answer
must be one public address; anything else is a one-line error and no VM is made. The
alternative that opens nothing to the internet is a self-hosted agent inside a VNet with
``test_subnet_id`` (docs/pipelines.md).
"""

from __future__ import annotations

import ipaddress

from imageforge.errors import ConfigError

DEFAULT_URL = "https://api.ipify.org"
AUTO = "auto"


def own_address(url: str = DEFAULT_URL, *, timeout: float = 15.0) -> str:
    """The public address ``url`` sees this machine as, as a single-address CIDR range."""
    import requests

    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "text/plain"})
        response.raise_for_status()
    except requests.RequestException as err:
        raise ConfigError(
            f"test_allowed_source = auto: cannot ask {url} for this machine's public address "
            f"({type(err).__name__}); set the address yourself or use test_subnet_id"
        ) from None
    text = response.text.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        shown = text[:40] + ("…" if len(text) > 40 else "")
        raise ConfigError(
            f"test_allowed_source = auto: {url} answered {shown!r}, not an IP address"
        ) from None
    if not address.is_global:
        raise ConfigError(
            f"test_allowed_source = auto: {url} answered {address}, which is not a public "
            "address; set the range yourself or use test_subnet_id"
        )
    return str(ipaddress.ip_network(address))
