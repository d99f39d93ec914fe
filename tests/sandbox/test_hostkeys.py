"""The pool of RSA host keys made ahead of time for first boots."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from imageforge.sandbox.machines.hostkeys import KEY, HostKeyPool

pytestmark = pytest.mark.sandbox


def wait_ready(pool: HostKeyPool, count: int) -> None:
    deadline = time.monotonic() + 60
    while pool.ready() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.ready() == count


def test_pool_fills_hands_out_each_key_once_and_refills(tmp_path: Path) -> None:
    stale = tmp_path / "keys" / ".tmp-999999999-dead"
    stale.mkdir(parents=True)
    busy = tmp_path / "keys" / f".tmp-{os.getpid()}-another-pool"
    busy.mkdir()
    pool = HostKeyPool(tmp_path / "keys", size=2)
    assert not stale.exists(), "keys a dead process was making are discarded"
    assert busy.exists(), "keys a living process is making are left alone"
    busy.rmdir()
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    pool.start()
    try:
        wait_ready(pool, 2)
        first = pool.take(tmp_path / "vm1")
        second = pool.take(tmp_path / "vm2")
        assert first == tmp_path / "vm1" and second == tmp_path / "vm2"
        publics = set()
        for taken in (first, second):
            private = taken / KEY
            assert stat.S_IMODE(private.stat().st_mode) == 0o600
            assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
            publics.add((taken / f"{KEY}.pub").read_text().split()[1])
        assert len(publics) == 2
        wait_ready(pool, 2)  # taking wakes the filler
    finally:
        pool.stop()


def test_an_empty_pool_gives_nothing(tmp_path: Path) -> None:
    pool = HostKeyPool(tmp_path / "keys", size=0)
    pool.start()
    assert pool.take(tmp_path / "vm") is None
    assert not (tmp_path / "vm").exists()


def test_a_pool_whose_state_dir_is_removed_stops_quietly(tmp_path: Path) -> None:
    """`invoke sandbox.reset` wipes the state dir under a running emulator's pool."""
    pool = HostKeyPool(tmp_path / "keys", size=2)
    pool.start()
    shutil.rmtree(tmp_path / "keys")
    assert pool._thread is not None
    pool._thread.join(timeout=30)
    assert not pool._thread.is_alive()
    assert pool.ready() == 0 and pool.take(tmp_path / "vm") is None


def test_a_key_taken_onto_another_filesystem_is_copied_and_leaves_nothing(tmp_path: Path) -> None:
    """The pool lives in the rootfs cache; a state dir on another filesystem gets a copy."""
    pool = HostKeyPool(tmp_path / "keys", size=1)
    pool.start()
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(other)], check=True)
    try:
        wait_ready(pool, 1)
        pool.stop()
        (ready,) = (tmp_path / "keys" / "ready").iterdir()
        public = (ready / f"{KEY}.pub").read_text()
        taken = pool.take(other / "vm")
        assert taken == other / "vm"
        assert (taken / f"{KEY}.pub").read_text() == public
        assert stat.S_IMODE((taken / KEY).stat().st_mode) == 0o600
        assert not ready.exists()
        assert [p.name for p in (tmp_path / "keys").iterdir()] == ["ready"]
    finally:
        subprocess.run(["umount", str(other)], check=True)
