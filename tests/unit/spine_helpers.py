"""Helpers shared by the spine's unit tests: its images, a copy of the tree (without
pyproject.toml), running the real `invoke` CLI with no sandbox. The pieces the integration
tests share (REPO, edit, clean_env, CliResult) are in helpers.cli. Fixtures live in conftest.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from helpers import cli
from helpers.cli import CliResult, clean_env, free_port

IMAGE_NAMES = ("debian-12", "debian-12-hardened", "ubuntu-24.04", "windows-2022")
PROFILE_NAMES = ("builtin", "plugin")
#: What a task needs to run from a copy of the repository (build/ deliberately not copied).
TREE = ("tasks.py", "images", "templates", "builders", "provisioners", "tests/image")


def copy_tree(dest: Path) -> Path:
    """Copy what the tasks need (not build/) into ``dest``; return it."""
    return cli.copy_tree(dest, TREE)


def run_invoke(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 180
) -> CliResult:
    """Run the real `invoke` CLI in ``repo`` with a clean environment and no sandbox running."""
    base = clean_env(
        {
            "HOME": str(repo.parent / "home"),
            "INVOKE_IMAGEFORGE_SANDBOX_STATE_DIR": str(repo.parent / "sandbox-state"),
            "INVOKE_IMAGEFORGE_SANDBOX_PORT": str(free_port()),
        }
    )
    base.update(env or {})
    return cli.run_invoke(repo, *args, env=base, timeout=timeout)
