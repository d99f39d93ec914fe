"""The smoke stage's one pytest session for several hosts: the ssh_config that gives each VM its
own address, port, user and key (checked with the real OpenSSH's ``ssh -G``), and the per-host
counts read back from the JUnit file. The whole stage runs for real in tests/integration/
test_e2e.py (a corrupted replica fails while the other region passes)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from imageforge.errors import VerifyError
from imageforge.hostspec import SharedConnections, SshHost, ssh_hosts_config_text
from imageforge.junit import JUnitCounts, counts_by_host

HOSTS = [
    SshHost("northeurope", "127.0.0.9", 2222, "imageforge", Path("/keys/ne")),
    SshHost("swedencentral", "127.0.0.10", 2223, "imageforge", Path("/keys/sc")),
]


def effective(config: Path, alias: str) -> dict[str, list[str]]:
    """What OpenSSH would use to connect to ``alias`` (``ssh -G``), keyword -> values."""
    out = subprocess.run(
        ["ssh", "-G", "-F", str(config), alias], capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key, []).append(value)
    return found


def test_each_alias_gets_its_own_address_port_user_and_only_its_key(tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text(ssh_hosts_config_text(HOSTS, tmp_path / "known_hosts", control_dir=tmp_path))
    for host in HOSTS:
        got = effective(config, host.alias)
        assert got["hostname"] == [host.host]
        assert got["port"] == [str(host.port)]
        assert got["user"] == [host.user]
        assert got["identityfile"] == [str(host.identity)]
        assert got["identitiesonly"] == ["yes"]
        assert got["stricthostkeychecking"] == ["accept-new"]
        assert got["userknownhostsfile"] == [str(tmp_path / "known_hosts")]
        assert got["controlpath"][0].startswith(f"{tmp_path}/cm-")
    # the two control paths differ (one shared connection per VM)
    paths = {effective(config, h.alias)["controlpath"][0] for h in HOSTS}
    assert len(paths) == 2


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="test_ssh" name="test_sshd_is_running[ssh://northeurope]"/>
<testcase classname="test_ssh" name="test_sshd_is_running[ssh://swedencentral]"/>
<testcase classname="test_image_marker" name="test_marker_file_exists[ssh://northeurope]">
  <failure message="no marker"/></testcase>
<testcase classname="test_image_marker" name="test_marker_file_exists[ssh://swedencentral]"/>
<testcase classname="test_packages" name="test_required_package_is_installed[ssh://northeurope-curl]"/>
<testcase classname="test_admin" name="test_admin_user_exists[ssh://swedencentral]">
  <error message="unreachable"/></testcase>
</testsuite></testsuites>
"""


def test_the_counts_of_each_host_come_from_its_own_test_ids(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    counts = counts_by_host(junit, ["ssh://northeurope", "ssh://swedencentral", "ssh://other"])
    assert counts["ssh://northeurope"] == JUnitCounts(
        passed=2,
        failed=1,
        failures=("test_image_marker::test_marker_file_exists[ssh://northeurope]",),
    )
    assert counts["ssh://swedencentral"] == JUnitCounts(
        passed=2, errors=1, failures=("test_admin::test_admin_user_exists[ssh://swedencentral]",)
    )
    assert counts["ssh://other"] == JUnitCounts()


def test_a_host_that_never_answers_is_one_line_naming_it_after_the_timeout(tmp_path):
    with socket.socket() as sock:  # a port that is closed: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        shared = SharedConnections(tmp_path)
        host = SshHost("northeurope", "127.0.0.1", port, "imageforge", tmp_path / "no-key")
        with pytest.raises(VerifyError) as refused:
            shared.add(host, timeout=2.0, what="smoke VM 127.0.0.1 in rg-x")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        "smoke VM 127.0.0.1 in rg-x was not reachable (SSH login) within 2s: "
    )
    assert "Connection refused" in message, message
    assert shared.hosts == []  # never answered: not one the suite runs on
    assert "northeurope" not in shared.config_path.read_text()
    shared.close()  # no master was opened: closing is quiet
