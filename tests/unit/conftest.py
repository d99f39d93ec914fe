"""Shared helpers of the unit tests: the repository, its images, Packer, a copy of the tree.

Fixtures here carry distinctive names so they cannot collide with ones a test module defines.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def packer_path() -> str:
    """The installed Packer; tests that need the real one skip (saying why) without it."""
    found = shutil.which("packer")
    if not found:
        pytest.skip("Packer is not installed (run `invoke setup`)")
    return found


@pytest.fixture(scope="session")
def throwaway_ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SSH private key file: `packer validate` of the null source wants one to exist."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No subscription or credentials from the developer's environment leak into a render."""
    for name in list(os.environ):
        if name.startswith(("ARM_", "AZURE_", "BUILD_", "IMAGEFORGE_")):
            monkeypatch.delenv(name)


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


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A private copy of the repository tree that a test may edit and run tasks in."""
    return copy_tree(tmp_path / "repo")


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
    state = repo.parent / "sandbox-state"
    base = clean_env(
        {
            "HOME": str(repo.parent / "home"),
            "INVOKE_IMAGEFORGE_SANDBOX_STATE_DIR": str(state),
            "INVOKE_IMAGEFORGE_SANDBOX_PORT": str(free_port()),
        }
    )
    base.update(env or {})
    argv = [str(INVOKE), *args]
    proc = subprocess.run(
        argv, cwd=repo, env=base, capture_output=True, text=True, timeout=timeout, check=False
    )
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def invoke_in() -> Callable[..., CliResult]:
    return run_invoke
