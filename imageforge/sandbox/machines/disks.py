"""A sandbox VM's disk: made from an image when the VM is created, captured into an image.

On an overlay (mode ``overlay``) a VM's disk is its upper dir over the layers of the image it
booted from and that image's base tree, all used in place (nothing is copied); in mode
``copy`` it is a full copy of its image, written in place. vm.json records a disk as its
``base`` tree and its ``layers`` (top first); see layers.py for the store they live in.
"""

from __future__ import annotations

from pathlib import Path

import imageforge.sandbox.machines.vm as vm
from imageforge.errors import SandboxError
from imageforge.sandbox.backend import BaseImage
from imageforge.sandbox.machines.hostkeys import HostKeyPool
from imageforge.sandbox.machines.layers import Image, LayerStore
from imageforge.sandbox.machines.rootfs import RootfsCache
from imageforge.sandbox.machines.tree import remove_tree


class Disks:
    """Makes and captures the disks of the VMs under ``state_dir`` in ``mode``."""

    def __init__(
        self,
        state_dir: Path,
        mode: str,
        *,
        rootfs: RootfsCache,
        layers: LayerStore,
        hostkeys: HostKeyPool,
    ) -> None:
        self.state_dir = state_dir
        self.mode = mode
        self.rootfs = rootfs
        self.layers = layers
        self.hostkeys = hostkeys

    def create(self, paths: vm.VmPaths, source: BaseImage | Path) -> dict:
        """Create the new VM's directory and disk; return its base and layers (for vm.json).

        On an overlay the VM references its image's layers and base tree in place; in copy
        mode it gets a full copy of its image (which must then be a single tree).
        """
        if isinstance(source, BaseImage):
            if source.os_type.lower() != "linux":
                raise SandboxError(
                    f"the sandbox cannot run {source.os_type} image "
                    f"{source.publisher}:{source.offer}:{source.sku}; it runs Linux VMs only"
                )
            disk: dict = {"base": str(self.rootfs.ensure(source.suite)), "layers": []}
            paths.dir.mkdir(parents=True)
        else:
            with self.layers.locked():
                image = self.layers.read_image(Path(source).absolute())
                disk = {
                    "base": str(image.base) if image.base is not None else None,
                    "layers": list(image.layers),
                }
                paths.dir.mkdir(parents=True)
                self.layers.link(paths.dir, image.layers)
        try:
            if self.mode == "overlay":
                for directory in (paths.upper, paths.work, paths.root):
                    directory.mkdir()
            else:
                lowers = self.lowers(disk)
                if len(lowers) != 1:
                    raise SandboxError(
                        f"image {source} is made of {len(lowers)} overlay layers, which this "
                        f"state dir's filesystem cannot mount; reset the sandbox "
                        f"(`invoke sandbox.reset`) so its images are captured as full copies"
                    )
                vm.full_copy(lowers[0], paths.disk, paths.dir)
                paths.root.mkdir()
        except BaseException:
            vm.remove(paths)
            self.layers.sweep()
            raise
        return disk

    def pooled_host_key(self, paths: vm.VmPaths, disk: dict) -> Path | None:
        """A pre-generated RSA host key for a new VM whose disk has none (else None)."""
        if self.layers.lookup(_image(paths.dir, disk), "etc/ssh/ssh_host_rsa_key") is not None:
            return None
        return self.hostkeys.take(paths.dir / "hostkey")

    def lowers(self, disk: dict) -> list[Path]:
        """The overlay lower dirs of a VM's disk (``base``/``layers``), top first."""
        return self.layers.lowers(_image(self.state_dir, disk))

    def capture(self, paths: vm.VmPaths, state: dict, tmp: Path) -> None:
        """Make ``tmp`` an image of the stopped VM's disk; ``state`` is its vm.json.

        On an overlay, the VM's upper dir (everything it wrote) becomes a new layer over the
        layers it booted from, and the VM gets a fresh upper dir over that layer. In copy mode
        a generalized VM's disk becomes the image's only layer; a VM that can run again has
        its disk copied.
        """
        with self.layers.locked():
            if state.get("mode", "overlay") == "overlay":
                layer = self.layers.add(paths.upper, holder=paths.dir)
                paths.upper.mkdir()
                remove_tree(paths.work)
                paths.work.mkdir()
                state["layers"] = [layer, *state.get("layers", [])]
                vm.write_state(paths, state)
                self.layers.write_image(tmp, _base(state), state["layers"])
                return
            disk = paths.disk
            if state.get("status") != "generalized":
                disk = paths.dir / "capture"
                remove_tree(disk)
                vm.full_copy(paths.disk, disk, paths.dir)
            layer = self.layers.add(disk, holder=paths.dir)
            self.layers.write_image(tmp, None, [layer])


def _base(disk: dict) -> Path | None:
    base = disk.get("base")
    return Path(base) if base else None


def _image(path: Path, disk: dict) -> Image:
    """A VM's disk (``base``/``layers`` as vm.json records them) as the layer store sees it."""
    return Image(path, _base(disk), tuple(disk.get("layers", [])))
