"""Fixtures of the spine's unit tests (helpers live in spine_helpers).

Fixtures here carry distinctive names so they cannot collide with ones a test module defines.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from spine_helpers import copy_tree

from imageforge.pipeline.validate import throwaway_key


@pytest.fixture(scope="session")
def packer_path() -> str:
    """The installed Packer; tests that need the real one skip (saying why) without it."""
    found = shutil.which("packer")
    if not found:
        pytest.skip("Packer is not installed (run `invoke setup`)")
    return found


@pytest.fixture(scope="session")
def throwaway_ssh_key() -> Iterator[Path]:
    """An SSH private key file: `packer validate` of the null source wants one to exist (the
    one imageforge's own validation makes)."""
    with throwaway_key() as path:
        yield path


@pytest.fixture
def no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No subscription or credentials from the developer's environment leak into a render."""
    for name in list(os.environ):
        if name.startswith(("ARM_", "AZURE_", "BUILD_", "IMAGEFORGE_")):
            monkeypatch.delenv(name)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A private copy of the repository tree that a test may edit and run tasks in."""
    return copy_tree(tmp_path / "repo")
