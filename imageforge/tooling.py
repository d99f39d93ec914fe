"""External tools imageforge needs on the machine it runs on (`invoke setup`)."""

from __future__ import annotations

import os
import shutil

from imageforge.errors import ToolError
from imageforge.process import SubprocessRunner, run_checked
from imageforge.site import Site

#: Debian packages: Packer itself; the sandbox's VM runtime; shellcheck for the provisioner tests.
PACKER_PACKAGES = ("packer",)


def ensure_packer(site: Site, *, check_only: bool = False) -> str:
    """Return Packer's path, installing Debian's package when it is missing."""
    found = shutil.which(site.packer)
    if found:
        print(f"packer: {found}")
        return found
    if check_only:
        raise ToolError(f"Packer is not installed (no {site.packer!r} on PATH)")
    if not shutil.which("apt-get"):
        raise ToolError(
            "Packer is missing and this machine has no apt-get: install Packer >= 1.6.6 "
            "from your distribution or HashiCorp, then set imageforge.packer"
        )
    if os.geteuid() != 0:
        raise ToolError("installing Packer needs root: run `sudo invoke setup`")
    runner = SubprocessRunner()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_checked(runner, ["apt-get", "update", "-q"], what="apt-get update", env=env)
    run_checked(
        runner,
        ["apt-get", "install", "-y", "-q", *PACKER_PACKAGES],
        what="apt-get install packer",
        env=env,
    )
    found = shutil.which(site.packer)
    if not found:
        raise ToolError(f"apt-get installed packer but {site.packer!r} is still not on PATH")
    print(f"packer: installed {found}")
    return found
