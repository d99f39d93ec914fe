"""Captured images as layers shared by reference: the layer store and the backend's image calls
that need no running VM (replicate, remove, reap, damaged images)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from sandbox_helpers import next_address

from imageforge.errors import SandboxError
from imageforge.sandbox.backend import OsProfile
from imageforge.sandbox.machines.chroot import ChrootBackend
from imageforge.sandbox.machines.layers import OPAQUE_XATTR, LayerStore

pytestmark = pytest.mark.sandbox


def whiteout(path: Path) -> None:
    """Mark ``path`` deleted, as overlayfs does in an upper dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def layer_tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def image_of(store: LayerStore, dest: Path, base: Path | None, *trees: Path) -> list[str]:
    """Make ``dest`` an image of ``trees`` (bottom first) over ``base``; return layer ids."""
    dest.mkdir(parents=True)
    layers: list[str] = []
    for tree in trees:
        layers.insert(0, store.add(tree, holder=dest))
    store.write_image(dest, base, layers)
    return layers


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return layer_tree(
        tmp_path / "base",
        {"etc/os-release": "ID=debian\n", "etc/motd": "base motd\n", "var/log/a": "a"},
    )


def test_lookup_follows_whiteouts_and_opaque_dirs(tmp_path: Path, base: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    lower = layer_tree(tmp_path / "l1", {"etc/marker": "1\n", "opt/app/old": "old"})
    upper = layer_tree(tmp_path / "l2", {"etc/marker": "2\n", "opt/app/new": "new"})
    whiteout(upper / "etc/motd")
    os.setxattr(upper / "opt/app", OPAQUE_XATTR, b"y")
    image_dir = tmp_path / "image"
    image_of(store, image_dir, base, lower, upper)
    image = store.read_image(image_dir)

    def text(name: str) -> str | None:
        found = store.lookup(image, name)
        return found.read_text() if found is not None else None

    assert text("etc/marker") == "2\n"  # the top layer wins
    assert text("/etc/os-release") == "ID=debian\n"  # from the base
    assert text("etc/motd") is None  # deleted by a whiteout
    assert text("opt/app/new") == "new"
    assert text("opt/app/old") is None  # hidden by the opaque directory above it
    assert text("var/log/a") == "a"
    assert text("etc/nothing") is None


def test_references_keep_layers_until_the_last_user_goes(tmp_path: Path, base: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    source = tmp_path / "blobs/westeurope/v1"
    (layer,) = image_of(store, source, base, layer_tree(tmp_path / "up", {"etc/x": "x"}))
    assert store.users(layer) == 1
    replica = tmp_path / "blobs/northeurope/v1"
    replica.mkdir(parents=True)
    store.write_image(replica, base, [layer])
    vm_dir = tmp_path / "vms/test"
    vm_dir.mkdir(parents=True)
    store.link(vm_dir, [layer])
    assert store.users(layer) == 3
    for holder in (source, replica):
        shutil.rmtree(holder)
        assert store.sweep() == []
        assert store.path(layer).is_dir()
    shutil.rmtree(vm_dir)
    assert store.sweep() == [layer]
    assert store.layers() == [] and store.users(layer) == 0
    assert sorted(p.name for p in store.root.iterdir()) == [".lock"]


def test_sweep_removes_a_layer_whose_mover_died_before_its_ref(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    orphan = layer_tree(store.root / "0123abcd", {"etc/x": "x"})
    assert store.sweep() == ["0123abcd"]
    assert not orphan.exists()


def test_damaged_and_foreign_images_are_named(tmp_path: Path, base: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    missing = tmp_path / "nowhere"
    with pytest.raises(SandboxError, match=f"image {missing} does not exist"):
        store.read_image(missing)
    old = tmp_path / "old"
    layer_tree(old, {"etc/os-release": "ID=debian\n"})  # a full tree: the old format
    with pytest.raises(SandboxError, match=f"image {old} does not exist"):
        store.read_image(old)
    (old / "image.json").write_text('{"format": "something-else"}')
    with pytest.raises(SandboxError, match="not in the sandbox's image format.*sandbox.reset"):
        store.read_image(old)
    (old / "image.json").write_text("{not json")
    with pytest.raises(SandboxError, match=f"image {old} is damaged: {old}/image.json"):
        store.read_image(old)
    image_dir = tmp_path / "image"
    (layer,) = image_of(store, image_dir, base, layer_tree(tmp_path / "up", {"etc/x": "x"}))
    os.rename(store.path(layer), tmp_path / "stolen")
    with pytest.raises(SandboxError, match=f"image {image_dir} is damaged: layer {layer}"):
        store.read_image(image_dir)
    os.rename(tmp_path / "stolen", store.path(layer))
    os.rename(base, tmp_path / "base-moved")
    with pytest.raises(SandboxError, match="base tree .* is gone .*build the version again"):
        store.read_image(image_dir)


@pytest.fixture
def machines(tmp_path: Path) -> ChrootBackend:
    return ChrootBackend(tmp_path / "state", tmp_path / "cache")


def captured(machines: ChrootBackend, dest: Path, base: Path, files: dict[str, str]) -> str:
    """An image as capture leaves it: one layer over ``base``, held by ``dest``."""
    tree = layer_tree(machines.state_dir / "upper-tmp", files)
    (layer,) = image_of(machines.layers, dest, base, tree)
    return layer


def test_replicas_reference_the_same_layers_and_stay_whole(
    machines: ChrootBackend, tmp_path: Path, base: Path
) -> None:
    source = tmp_path / "blobs/westeurope/v1"
    layer = captured(machines, source, base, {"etc/marker": "built\n"})
    progress: list[int] = []
    replica = tmp_path / "blobs/northeurope/v1"
    replica.mkdir(parents=True)  # the emulator creates the directory first
    machines.replicate(source, replica, progress.append)
    assert progress == [0, 100]
    assert json.loads((replica / "image.json").read_text())["layers"] == [layer]
    assert machines.layers.users(layer) == 2
    machines.remove_image(source)
    assert not source.exists()
    image = machines.layers.read_image(replica)
    marker = machines.layers.lookup(image, "etc/marker")
    assert marker is not None and marker.read_text() == "built\n"
    machines.remove_image(replica)
    assert machines.layers.layers() == []


def test_replicate_refuses_a_missing_source_or_a_used_destination(
    machines: ChrootBackend, tmp_path: Path, base: Path
) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        machines.replicate(tmp_path / "nowhere", tmp_path / "r", lambda percent: None)
    assert not (tmp_path / "r").exists()
    source = tmp_path / "image"
    captured(machines, source, base, {"etc/x": "x"})
    dest = tmp_path / "replica"
    dest.mkdir()
    (dest / "x").touch()
    with pytest.raises(SandboxError, match="not an empty directory"):
        machines.replicate(source, dest, lambda percent: None)
    assert list((machines.state_dir / "partial").iterdir()) == []


def test_parallel_replicas_of_one_image(
    machines: ChrootBackend, tmp_path: Path, base: Path
) -> None:
    source = tmp_path / "image"
    layer = captured(machines, source, base, {"etc/x": "x"})
    threads = [
        threading.Thread(
            target=machines.replicate, args=(source, tmp_path / f"r{n}", lambda percent: None)
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(4):
        assert machines.layers.read_image(tmp_path / f"r{n}").layers == (layer,)
    assert machines.layers.users(layer) == 5
    assert list((machines.state_dir / "partial").iterdir()) == []


def test_reap_removes_partial_images_and_the_layers_only_they_held(
    machines: ChrootBackend, tmp_path: Path, base: Path
) -> None:
    # a capture that died after its layer was referenced by the partial image, before the rename
    partial = tmp_path / "blobs/westeurope/.imageforge-partial-v1-dead"
    layer = captured(machines, partial, base, {"etc/x": "x"})
    (machines.state_dir / "partial" / "dead").write_text(f"{partial}\n")
    kept = tmp_path / "blobs/westeurope/v0"
    other = captured(machines, kept, base, {"etc/y": "y"})
    reaped = machines.reap()
    assert f"partial image {partial}" in reaped and f"unused layer {layer}" in reaped
    assert machines.layers.layers() == [other]
    assert machines.layers.read_image(kept).layers == (other,)


def test_booting_a_layered_image_in_copy_mode_is_refused_cleanly(
    tmp_path: Path, base: Path
) -> None:
    copying = ChrootBackend(tmp_path / "state", tmp_path / "cache", overlay=False)
    image = tmp_path / "image"
    captured(copying, image, base, {"etc/x": "x"})
    with pytest.raises(SandboxError, match="made of 2 overlay layers.*sandbox.reset"):
        copying.boot(
            "copy-vm", source=image, profile=OsProfile("h", "azureuser"), address=next_address()
        )
    assert not (copying.state_dir / "vms" / "copy-vm").exists()
    assert copying.layers.users(copying.layers.read_image(image).layers[0]) == 1
