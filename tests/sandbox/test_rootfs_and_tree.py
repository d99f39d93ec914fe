"""The pieces of ChrootBackend that need no VM: apt sources, cache keys, tree removal, checks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sandbox_helpers import next_address

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import BaseImage, OsProfile
from imageforge.sandbox.machines import rootfs
from imageforge.sandbox.machines.chroot import ChrootBackend
from imageforge.sandbox.machines.tree import remove_tree

pytestmark = pytest.mark.sandbox

DEB822 = """\
Types: deb deb-src
# a comment
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://one.example/debian bookworm main
deb-src http://one.example/debian bookworm main
deb http://one.example/debian-security bookworm-security main non-free-firmware
"""


def test_parse_deb822_keeps_enabled_deb_entries() -> None:
    entries = rootfs.parse_deb822(DEB822)
    assert [(e.uri, e.suites) for e in entries] == [
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
        ("http://mirror.example/debian-security", ("bookworm-security",)),
    ]
    assert entries[0].components == ("main", "contrib")
    assert entries[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_parse_one_line_sources() -> None:
    entries = rootfs.parse_one_line(ONE_LINE)
    assert [(e.uri, e.suites, e.signed_by) for e in entries] == [
        ("http://one.example/debian", ("bookworm",), "/etc/apt/keyrings/x.gpg"),
        ("http://one.example/debian-security", ("bookworm-security",), None),
    ]


def test_host_sources_read_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(ONE_LINE)
    directory = tmp_path / "sources.list.d"
    directory.mkdir()
    (directory / "debian.sources").write_text(DEB822)
    entries = rootfs.host_apt_sources((tmp_path / "sources.list",), directory)
    assert [e.uri for e in entries][:2] == [
        "http://one.example/debian",
        "http://one.example/debian-security",
    ]
    assert len(entries) == 4


def test_image_sources_use_host_mirrors_for_the_suite() -> None:
    host = rootfs.parse_deb822(DEB822)
    chosen = rootfs.image_sources("bookworm", host)
    assert chosen == host
    assert rootfs.debootstrap_mirror("bookworm", chosen) == "http://mirror.example/debian"
    # a host on another suite: its mirrors, the image's suite names
    retargeted = rootfs.image_sources("trixie", host)
    assert [(e.uri, e.suites) for e in retargeted] == [
        ("http://mirror.example/debian", ("trixie", "trixie-updates")),
        ("http://mirror.example/debian-security", ("trixie-security",)),
    ]
    text = rootfs.render_deb822(retargeted)
    assert "URIs: http://mirror.example/debian\nSuites: trixie trixie-updates\n" in text


def test_no_mirror_is_a_clear_error() -> None:
    with pytest.raises(SandboxError, match="no apt source on this machine carries"):
        rootfs.debootstrap_mirror("bookworm", [])


def test_cache_key_depends_on_packages_not_order() -> None:
    key = rootfs.cache_key("bookworm", ("a", "b"))
    assert key.startswith("bookworm-")
    assert key == rootfs.cache_key("bookworm", ("b", "a"))
    assert key != rootfs.cache_key("bookworm", ("a", "b", "c"))
    assert rootfs.cache_key("bookworm").startswith("bookworm-")


def test_missing_debootstrap_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootfs.shutil, "which", lambda name: None)
    with pytest.raises(SandboxError, match=r"apt-get install debootstrap"):
        rootfs.RootfsCache(tmp_path).ensure("bookworm")
    assert not list(tmp_path.glob(".tmp-*"))


def test_stale_build_dirs_are_reaped_unless_locked(tmp_path: Path) -> None:
    name = rootfs.cache_key("bookworm")
    (tmp_path / f"{name}.lock").touch()
    stale = tmp_path / f".tmp-{name}-123-456"
    stale.mkdir()
    (stale / "file").write_text("x")
    cache = rootfs.RootfsCache(tmp_path)
    lock = rootfs._FileLock(tmp_path / f"{name}.lock")
    with lock:  # a build in progress: its temp dir stays
        assert cache.reap() == []
    assert cache.reap() == [str(stale)]
    assert not stale.exists()


def test_remove_tree_never_crosses_into_a_mount(tmp_path: Path) -> None:
    victim = tmp_path / "vm"
    mounted = victim / "root"
    mounted.mkdir(parents=True)
    (victim / "file").write_text("x")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mounted)], check=True)
    try:
        (mounted / "host-file").write_text("keep me")
        with pytest.raises(SandboxError, match=f"could not remove {victim}"):
            remove_tree(victim)
        assert (mounted / "host-file").read_text() == "keep me"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    remove_tree(victim)
    assert not victim.exists()
    remove_tree(victim)  # already gone: nothing to do


def test_backend_checks_its_inputs(tmp_path: Path) -> None:
    backend = ChrootBackend(tmp_path / "state", tmp_path / "cache")
    profile = OsProfile("host", "azureuser")
    base = BaseImage("Debian", "debian-12", "12", "Linux", "V1", "bookworm")
    cases = [
        ("../escape", profile, next_address(), "not filesystem-safe"),
        ("ok", profile, "10.0.0.4", "not a loopback address"),
        ("ok", profile, "nonsense", "not an IP address"),
        ("ok", OsProfile("host", "root"), next_address(), "admin username 'root'"),
        ("ok", OsProfile("bad_host!", "azureuser"), next_address(), "not a valid hostname"),
    ]
    for key, prof, address, message in cases:
        with pytest.raises(SandboxError, match=message):
            backend.boot(key, source=base, profile=prof, address=address)
    windows = BaseImage("MicrosoftWindowsServer", "WindowsServer", "2022", "Windows", "V2", "")
    with pytest.raises(SandboxError, match="runs Linux VMs only"):
        backend.boot("win", source=windows, profile=profile, address=next_address())
    with pytest.raises(SandboxError, match="does not exist in the sandbox"):
        backend.generalize("never-booted")
    with pytest.raises(SandboxError, match="cannot carry"):
        ChrootBackend(tmp_path / "a,b", tmp_path / "cache")
    assert backend.reap() == []
