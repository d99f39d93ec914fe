"""Helpers shared by the spine's unit tests: the repository, its images, a copy of the tree,
running the real `invoke` CLI. Fixtures that use them live in conftest.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE_NAMES = ("debian-12", "ubuntu-24.04", "windows-2022")
PROFILE_NAMES = ("builtin", "plugin")
#: What a task needs to run from a copy of the repository (build/ deliberately not copied).
TREE = ("tasks.py", "images", "templates", "builders", "provisioners", "tests/image")
INVOKE = Path(sys.executable).parent / "invoke"
#: Environment variables that would change what imageforge does (target, secrets, settings).
_SCRUBBED_PREFIXES = ("ARM_", "AZURE_", "INVOKE_", "BUILD_", "IMAGEFORGE_", "SYSTEM_", "PACKER_")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without Azure, pipeline, Invoke and Packer settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["CHECKPOINT_DISABLE"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_tree(dest: Path) -> Path:
    """Copy what the tasks need (not build/) into ``dest``; return it."""
    for rel in TREE:
        src = REPO / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    return dest


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace ``old`` by ``new`` in ``path``; fails when ``old`` is not there (no silent no-op)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


@dataclass
class CliResult:
    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


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
    argv = [str(INVOKE), *args]
    proc = subprocess.run(
        argv, cwd=repo, env=base, capture_output=True, text=True, timeout=timeout, check=False
    )
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
