"""Fixtures of the Linux image suite: root commands, the image marker, sshd's effective config."""

from __future__ import annotations

import pytest

MARKER_PATH = "/etc/imageforge-release"
ERROR_KEY = "<error>"


@pytest.fixture(scope="module")
def is_root(host) -> bool:
    """Whether the suite's connection is already root (local:// as root, a sandbox as root)."""
    return host.user().uid == 0


@pytest.fixture(scope="module")
def run_as_root(host, is_root):
    """Run a command as root: directly when connected as root, else through `sudo -n`."""

    def run(command: str, *args: str):
        return host.run(command if is_root else "sudo -n " + command, *args)

    return run


@pytest.fixture(scope="module")
def distribution(host) -> str:
    """The distribution id from /etc/os-release (debian, ubuntu)."""
    return str(host.system_info.distribution).lower()


@pytest.fixture(scope="module")
def marker(host) -> dict[str, str]:
    """The KEY=VALUE pairs of /etc/imageforge-release ({} when the file is missing)."""
    marker_file = host.file(MARKER_PATH)
    if not marker_file.exists:
        return {}
    values: dict[str, str] = {}
    for line in marker_file.content_string.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def sshd_config(run_as_root) -> dict[str, str]:
    """sshd's effective configuration (`sshd -T`, as root), keyword -> value, lower-case keys.

    When sshd cannot print it (invalid configuration), the dict holds only ERROR_KEY with
    sshd's message, so each setting's test fails with it instead of erroring.
    """
    result = run_as_root("/usr/sbin/sshd -T")
    if result.rc != 0:
        return {ERROR_KEY: f"sshd -T exited {result.rc}: {result.stderr.strip()}"}
    config: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key.lower(), value.strip())
    return config
