"""Running the real `invoke` CLI in a private copy of the repository with a clean environment.

Shared by the unit tests (tests/unit/spine_helpers.py), the integration tests
(tests/integration/e2e_helpers.py, sandbox_build_helpers.py), the sandbox tests and the bench
scripts; each of those keeps its own specifics and imports these pieces.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INVOKE = Path(sys.executable).parent / "invoke"
#: What the tasks need to run from a copy of the repository (build/ and reports/ are not copied).
TREE = (
    "tasks.py",
    "pyproject.toml",
    "images",
    "templates",
    "builders",
    "provisioners",
    "tests/image",
)
DEFAULT_PORT = 8443
#: Environment variables that would change what imageforge does (target, secrets, settings).
_SCRUBBED_PREFIXES = ("ARM_", "AZURE_", "INVOKE_", "BUILD_", "IMAGEFORGE_", "SYSTEM_", "PACKER_")


def rootfs_cache() -> Path:
    """The machine's shared base-image cache (debootstrap runs once per machine)."""
    configured = os.environ.get("IMAGEFORGE_ROOTFS_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "imageforge" / "rootfs"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 that is not the sandbox's default one."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != DEFAULT_PORT:
            return port


def copy_tree(dest: Path, tree: Sequence[str] = TREE) -> Path:
    """Copy ``tree`` (paths relative to the repository) into ``dest``; return it."""
    for rel in tree:
        src = REPO / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(
                src, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
            )
        else:
            shutil.copy2(src, target)
    return dest


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace ``old`` by ``new`` in ``path`` (once unless ``count`` says otherwise); fails when
    ``old`` is not there (no silent no-op)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- the CLI ---------------------------------------------------------------------------------


@dataclass
class CliResult:
    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def tail(self, lines: int = 60) -> str:
        """The end of the output, for assertion messages."""
        out = self.stdout.splitlines()[-lines:]
        err = self.stderr.splitlines()[-lines:]
        return (
            f"$ {' '.join(self.argv)} -> exit {self.returncode}\n--- stdout (tail)\n"
            + "\n".join(out)
            + "\n--- stderr (tail)\n"
            + "\n".join(err)
        )

    def __str__(self) -> str:
        return (
            f"$ {shlex.join(self.argv)} -> exit {self.returncode}\n--- stdout\n{self.stdout}"
            f"--- stderr\n{self.stderr}"
        )


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without Azure, pipeline, Invoke and Packer settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["CHECKPOINT_DISABLE"] = "1"
    env.update(extra or {})
    return env


def cli_env(
    home: Path, state_dir: Path, port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A clean environment (``clean_env``) with the sandbox in ``state_dir`` on ``port`` and the
    shared rootfs cache, plus ``extra``."""
    return clean_env(
        {
            "HOME": str(home),
            "PYTHONUNBUFFERED": "1",
            "INVOKE_IMAGEFORGE_SANDBOX_STATE_DIR": str(state_dir),
            "INVOKE_IMAGEFORGE_SANDBOX_PORT": str(port),
            "INVOKE_IMAGEFORGE_SANDBOX_CACHE_DIR": str(rootfs_cache()),
            **(extra or {}),
        }
    )


def run_invoke(
    repo: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float | None = 300,
    prefix: Sequence[str] = (),
) -> CliResult:
    """Run the real `invoke` CLI in ``repo`` (behind ``prefix``, e.g. ``as_user``'s) with
    exactly ``env`` and no stdin, and wait for it."""
    argv = [*prefix, str(INVOKE), *args]
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        cwd=repo,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
