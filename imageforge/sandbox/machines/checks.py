"""What the chroot backend refuses before it touches anything: the host, its dirs, its inputs.

Each check raises SandboxError with a one-line message; none writes or starts anything, so
``imageforge.sandbox.control`` can say NOT_ROOT before it spawns an emulator.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from pathlib import Path

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import OsProfile

NOT_ROOT = (
    "the sandbox needs root: it runs VMs as chroots with their own namespaces and mounts; "
    "run as root"
)

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$")
#: Characters overlayfs' mount options cannot carry in a path.
_OVERLAY_UNSAFE = set(",:=\\\n")


def check_host() -> None:
    """This process can run VMs: it is root and the tools it runs are installed."""
    if os.geteuid() != 0:
        raise SandboxError(NOT_ROOT)
    for tool in ("unshare", "mount", "cp"):
        if shutil.which(tool) is None:
            raise SandboxError(
                f"{tool} is not installed; the sandbox needs it to run VMs "
                "(Debian packages util-linux, mount, coreutils)"
            )


def check_dir(what: str, path: Path) -> None:
    """``path`` (the sandbox's ``what`` dir) can stand in an overlayfs mount option."""
    if _OVERLAY_UNSAFE & set(str(path)):
        raise SandboxError(
            f"sandbox {what} dir {path} contains one of , : = \\ which overlayfs "
            f"mount options cannot carry; choose another {what} dir"
        )


def check_key(vm_key: str) -> None:
    if not _KEY.match(vm_key):
        raise SandboxError(
            f"VM key {vm_key!r} is not filesystem-safe (letters, digits, . _ -; at most 128)"
        )


def check_address(address: str) -> None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as err:
        raise SandboxError(f"VM address {address!r} is not an IP address") from err
    if ip.version != 4 or not ip.is_loopback:
        raise SandboxError(f"VM address {address} is not a loopback address (127.x.y.z)")


def check_profile(profile: OsProfile) -> None:
    if not _USER.match(profile.admin_username) or profile.admin_username == "root":
        raise SandboxError(f"admin username {profile.admin_username!r} is not allowed")
    if not _HOST.match(profile.computer_name):
        raise SandboxError(f"computer name {profile.computer_name!r} is not a valid hostname")
