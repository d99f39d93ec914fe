"""sshd is running and only allows key-based logins of non-root users."""

from __future__ import annotations

import pytest

#: sshd keyword -> required effective value (`sshd -T`), and why a release manager cares.
REQUIRED_SSHD_SETTINGS = [
    ("permitrootlogin", "no", "root can log in over SSH"),
    ("passwordauthentication", "no", "passwords are accepted over SSH (brute-force target)"),
    ("kbdinteractiveauthentication", "no", "keyboard-interactive (password) logins are accepted"),
    ("permitemptypasswords", "no", "accounts with an empty password can log in"),
    ("pubkeyauthentication", "yes", "key-based logins are off: nobody could log in"),
    ("x11forwarding", "no", "X11 forwarding is allowed"),
]


@pytest.mark.smoke
def test_sshd_is_running(host):
    # A process check, not `systemctl is-active`: it also holds on sandbox VMs whose PID 1
    # is not systemd.
    processes = host.process.filter(comm="sshd")
    assert processes, "sshd is not running: nobody can log in to VMs made from this image"


@pytest.mark.parametrize(
    ("keyword", "expected", "risk"),
    REQUIRED_SSHD_SETTINGS,
    ids=[keyword for keyword, _, _ in REQUIRED_SSHD_SETTINGS],
)
def test_sshd_setting(sshd_config, keyword, expected, risk):
    assert "<error>" not in sshd_config, (
        f"cannot read sshd's effective configuration ({sshd_config.get('<error>')}): "
        "sshd would not start with it"
    )
    actual = sshd_config.get(keyword)
    assert actual == expected, (
        f"sshd {keyword} is {actual!r}, must be {expected!r}: otherwise {risk}"
    )
