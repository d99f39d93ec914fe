"""test_allowed_source = auto: the NSG admits exactly this machine's public address (issue
12.6), as an address echo service answers it. The service is played by a local HTTP server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from helpers.cli import REPO

from imageforge.azure import egress, vmaccess
from imageforge.errors import ConfigError
from imageforge.site import Site

ANSWERS = {
    "/public": (200, "203.0.113.7\n"),  # TEST-NET-3 is documentation space: use a global one
    "/global": (200, "20.61.12.34\n"),
    "/v6": (200, "2603:1020:201:10::10f\n"),
    "/private": (200, "10.1.0.4"),
    "/html": (200, "<html><body>Your IP is 20.61.12.34</body></html>"),
    "/down": (503, "unavailable"),
}


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, text = ANSWERS.get(self.path, (404, "no"))
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_answer_becomes_a_single_address_range(echo):
    assert egress.own_address(f"{echo}/global") == "20.61.12.34/32"
    assert egress.own_address(f"{echo}/v6") == "2603:1020:201:10::10f/128"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/private", "answered 10.1.0.4, which is not a public address"),
        ("/public", "answered 203.0.113.7, which is not a public address"),
        ("/html", "answered '<html><body>Your IP is 20.61.12.34</body…', not an IP address"),
        ("/down", "cannot ask"),
    ],
)
def test_an_answer_that_is_not_one_public_address_is_refused(echo, path, why):
    with pytest.raises(ConfigError) as caught:
        egress.own_address(f"{echo}{path}")
    assert why in str(caught.value) and "\n" not in str(caught.value)


def test_auto_is_what_the_test_vm_rule_admits_on_azure_and_loopback_on_the_sandbox(echo):
    site = Site(root=REPO, egress_ip_url=f"{echo}/global")
    azure = SimpleNamespace(target="azure", site=site)
    assert vmaccess.nsg_source(azure, "auto", None) == "20.61.12.34/32"  # type: ignore[arg-type]
    sandbox = SimpleNamespace(target="sandbox", site=site)
    assert vmaccess.nsg_source(sandbox, "auto", None) == vmaccess.SANDBOX_SOURCE  # type: ignore[arg-type]
