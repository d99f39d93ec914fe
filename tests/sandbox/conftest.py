"""Fixtures of the sandbox machine tests: one ChrootBackend per session, SSH helpers.

The base root filesystem is cached across sessions in ``$IMAGEFORGE_ROOTFS_CACHE`` (default
``~/.cache/imageforge/rootfs``), so the cold debootstrap happens once per machine. VMs live in
a temporary state dir; when the session ends every VM is deleted and the fixture asserts that
no sandbox process is left and nothing of the sandbox is mounted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import rootfs_cache
from sandbox_helpers import BASE, sandbox_leftovers

from imageforge.sandbox.machines.chroot import ChrootBackend


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's sandbox state dir (VMs, partial-image journal)."""
    return tmp_path_factory.mktemp("sandbox-state")


@pytest.fixture(scope="session")
def backend(state_dir: Path) -> Iterator[ChrootBackend]:
    """The session's ChrootBackend, with the base image built (or found in the cache) and a
    pool of RSA host keys, as the emulator runs it."""
    machines = ChrootBackend(state_dir, rootfs_cache(), host_key_pool=2)
    machines.base_image_dir(BASE)
    yield machines
    vms = state_dir / "vms"
    for vm_dir in sorted(vms.iterdir()) if vms.is_dir() else []:
        machines.delete(vm_dir.name)
    machines.shutdown()
    machines.reap()
    processes, mounts = sandbox_leftovers(state_dir)
    assert processes == [], f"sandbox processes left after the session: {processes}"
    assert mounts == [], f"sandbox mounts left after the session: {mounts}"
    assert not vms.exists() or list(vms.iterdir()) == []


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    """A per-test image store, like the emulator's ``<state>/blobs/``."""
    path = tmp_path / "blobs"
    path.mkdir()
    return path
