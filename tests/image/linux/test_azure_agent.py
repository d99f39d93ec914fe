"""The Azure Linux agent is installed and starts at boot (Azure needs it to run the VM)."""

from __future__ import annotations

import pytest

AGENT_PACKAGES = {"debian": "waagent", "ubuntu": "walinuxagent"}
AGENT_SERVICE = "walinuxagent.service"


@pytest.fixture(scope="module")
def agent_package(distribution):
    if distribution not in AGENT_PACKAGES:
        pytest.skip(f"no known Azure agent package for distribution {distribution!r}")
    return AGENT_PACKAGES[distribution]


@pytest.mark.smoke
def test_azure_agent_is_installed(host, agent_package):
    assert host.package(agent_package).is_installed, (
        f"the Azure Linux agent ({agent_package}) is not installed: Azure cannot provision "
        "VMs from this image or run extensions on them"
    )


@pytest.mark.smoke
def test_azure_agent_is_enabled(host):
    # `systemctl is-enabled` reads unit files, so it also answers in a chroot without systemd.
    result = host.run("systemctl is-enabled %s", AGENT_SERVICE)
    assert result.rc == 0, (
        f"{AGENT_SERVICE} is not enabled ({result.stdout.strip() or result.stderr.strip()}): "
        "the agent would not start at boot and the VM would never report ready"
    )
