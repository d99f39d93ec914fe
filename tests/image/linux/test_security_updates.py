"""VMs made from the image install security updates by themselves (unattended-upgrades)."""

from __future__ import annotations


def test_unattended_upgrades_is_installed(host):
    assert host.package("unattended-upgrades").is_installed, (
        "unattended-upgrades is not installed: VMs would never install security updates "
        "by themselves"
    )


def test_unattended_upgrade_runs_daily(host):
    result = host.run("apt-config shell VALUE APT::Periodic::Unattended-Upgrade")
    assert result.stdout.strip() == "VALUE='1'", (
        'APT::Periodic::Unattended-Upgrade is not "1" '
        f"({result.stdout.strip() or 'not set'}): security updates are not installed daily"
    )


def test_security_origin_is_allowed(host):
    result = host.run(
        "apt-config dump Unattended-Upgrade::Origins-Pattern Unattended-Upgrade::Allowed-Origins"
    )
    origins = [line for line in result.stdout.splitlines() if "security" in line.lower()]
    assert origins, (
        "unattended-upgrades is not configured for the distribution's security origin: "
        "it would install nothing"
    )
