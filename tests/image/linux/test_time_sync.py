"""The clock is kept in sync: chrony or systemd-timesyncd is enabled."""

from __future__ import annotations

TIME_SERVICES = ("chrony.service", "systemd-timesyncd.service")


def test_time_sync_service_is_enabled(host):
    states = {
        service: host.run("systemctl is-enabled %s", service).stdout.strip() or "not installed"
        for service in TIME_SERVICES
    }
    assert "enabled" in states.values(), (
        "no time synchronisation starts at boot ("
        + ", ".join(f"{service}: {state}" for service, state in states.items())
        + "): clocks drift, TLS and Kerberos fail"
    )
