"""Kernel parameters the image configures for boot (the image definition's test.sysctl).

What is checked is the configuration systemd-sysctl applies at boot, read the way it reads it
(/usr/lib, /run and /etc sysctl.d files by name, /etc overriding, then /etc/sysctl.conf; the
last assignment wins), not the running kernel: a sandbox VM shares its host's kernel, and on
Azure the values are what boot applied from these very files.
"""

from __future__ import annotations

import pytest

DIRS = ("/usr/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d")


@pytest.fixture(scope="module")
def configured(run_as_root) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """name -> (value, file) of every assignment in boot order, the last one kept."""
    listing = run_as_root(
        "sh -c 'for d in " + " ".join(DIRS) + '; do ls -1 "$d" 2>/dev/null | sed "s|^|$d/|"; done\''
    )
    chosen: dict[str, str] = {}
    for path in listing.stdout.split():
        if path.endswith(".conf"):
            chosen[path.rsplit("/", 1)[1]] = path  # later dirs override earlier ones by name
    files = [chosen[name] for name in sorted(chosen)] + ["/etc/sysctl.conf"]
    settings: dict[str, tuple[str, str]] = {}
    for path in files:
        text = run_as_root(f"cat {path}").stdout if path else ""
        for raw in text.splitlines():
            line = raw.strip().lstrip("-").strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            name, _, value = line.partition("=")
            settings[name.strip().replace("/", ".")] = (" ".join(value.split()), path)
    return settings


def test_kernel_parameter_is_configured_for_boot(configured, sysctl_setting):
    name, wanted = sysctl_setting
    assert name in configured, (
        f"{name} is not set in any sysctl.d file: the kernel keeps its default "
        "(configure-kernel-hardening.sh writes /etc/sysctl.d/60-imageforge-hardening.conf)"
    )
    value, where = configured[name]
    assert value == wanted, f"{name} is {value} (set last in {where}), the image needs {wanted}"
