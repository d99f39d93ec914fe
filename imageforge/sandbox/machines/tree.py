"""Removing sandbox trees (VM directories, images, layers) safely."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imageforge.errors import SandboxError


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it, never crossing into another filesystem.

    ``rm --one-file-system`` refuses to descend into a mount point, so a mount that leaked
    out of a VM's namespace could never take host files with it; the removal then fails and
    says so.
    """
    if not path.exists() and not path.is_symlink():
        return
    result = subprocess.run(
        ["rm", "-rf", "--one-file-system", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or path.exists():
        detail = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "still there"
        raise SandboxError(f"could not remove {path}: {detail}")
