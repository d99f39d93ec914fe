"""Captured images as stacks of immutable overlay layers, shared by reference.

A sandbox VM runs on an overlay: every write it makes lands in its upper directory, over
read-only lower layers. Capturing a stopped VM therefore needs no copy at all: its upper
directory *is* the difference between the image it booted from and the image it became, so
capture moves it into the layer store and records the new image as "this layer over the
layers of the image the VM booted from, over a base tree". Replicating an image to another
region, or booting a VM from it, only adds references; no file is copied or linked.

Layout of the store (``<state_dir>/layers/``)::

    <id>/       one layer: a former overlay upper dir (whiteouts and opaque dirs included);
                never written again
    <id>.ref    the layer's reference count: every image and every VM that uses the layer
                holds a hard link to this file, so ``st_nlink - 1`` is its number of users
    .lock       serialises creating references and sweeping

An image directory (the emulator's per-region copy of a gallery version) holds::

    image.json  {"format": FORMAT, "base": "<debootstrapped base tree>" | null,
                 "layers": ["<top id>", ..., "<bottom id>"]}
    refs/<id>   a hard link to ``layers/<id>.ref`` for every layer it uses

Removing an image or a VM directory (``rm -rf``) drops its hard links; ``sweep`` then deletes
every layer nobody links to any more. That keeps Azure's semantics: a region's replica, or a
VM's disk, stays whole when the version is deleted elsewhere, and nothing is leaked: a crash
at any point leaves at worst an unreferenced layer, which the next sweep (or ``reap``) removes.
Base trees live in the rootfs cache (see rootfs.py), which never modifies or deletes them.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imageforge.errors import SandboxError
from imageforge.sandbox.machines.tree import remove_tree

FORMAT = "imageforge-layers/1"
MANIFEST = "image.json"
REFS = "refs"
#: The xattr overlayfs puts on a directory that hides everything below it in lower layers.
OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True)
class Image:
    """What an image directory says it is made of."""

    path: Path
    base: Path | None
    layers: tuple[str, ...]  # top first


class LayerStore:
    """The layers of one sandbox state dir. Thread- and process-safe."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    # -- locking ---------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (re-entrant within a thread; a file lock across processes)."""
        with self._thread_lock:
            if self._depth == 0:
                fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    os.close(self._fd)
                    self._fd = None

    # -- layers ----------------------------------------------------------------------------

    def path(self, layer: str) -> Path:
        return self.root / layer

    def _ref(self, layer: str) -> Path:
        return self.root / f"{layer}.ref"

    def add(self, tree: Path, holder: Path) -> str:
        """Move ``tree`` into the store as a new layer; ``holder`` gets the first reference.

        ``tree`` must be on the store's filesystem (it is renamed, not copied). The caller
        must hold the lock until the layer is referenced by whatever it builds with it.
        """
        layer = uuid.uuid4().hex
        with self.locked():
            ref = self._ref(layer)
            ref.write_text(f"{layer}\n")
            try:
                os.rename(tree, self.path(layer))
            except OSError as err:
                ref.unlink()
                raise SandboxError(f"could not move {tree} into the layer store: {err}") from err
            self.link(holder, [layer])
        return layer

    def link(self, holder: Path, layers: list[str] | tuple[str, ...]) -> None:
        """Give ``holder`` (an image or VM directory) a reference to each of ``layers``."""
        refs = holder / REFS
        with self.locked():
            refs.mkdir(exist_ok=True)
            for layer in layers:
                target = refs / layer
                if target.exists():
                    continue
                try:
                    os.link(self._ref(layer), target)
                except FileNotFoundError as err:
                    raise SandboxError(
                        f"layer {layer} is missing from the layer store {self.root}"
                    ) from err

    def users(self, layer: str) -> int:
        """How many images and VMs reference ``layer`` (0 if it does not exist)."""
        try:
            return os.stat(self._ref(layer)).st_nlink - 1
        except FileNotFoundError:
            return 0

    def layers(self) -> list[str]:
        """Every layer in the store."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def sweep(self) -> list[str]:
        """Delete every layer no image or VM references; return their ids."""
        removed: list[str] = []
        with self.locked():
            for entry in sorted(self.root.iterdir()):
                if entry.name.endswith(".ref"):
                    layer = entry.name[: -len(".ref")]
                    if entry.stat().st_nlink > 1:
                        continue
                    remove_tree(self.path(layer))
                    entry.unlink()
                    removed.append(layer)
                elif entry.is_dir() and not self._ref(entry.name).exists():
                    remove_tree(entry)  # moved in by a process that died before its ref
                    removed.append(entry.name)
        return removed

    # -- images ----------------------------------------------------------------------------

    def write_image(
        self, dest: Path, base: Path | None, layers: list[str] | tuple[str, ...]
    ) -> None:
        """Make the empty directory ``dest`` an image of ``layers`` (top first) over ``base``."""
        with self.locked():
            self.link(dest, layers)
            manifest = {
                "format": FORMAT,
                "base": str(base) if base is not None else None,
                "layers": list(layers),
            }
            tmp = dest / f".{MANIFEST}.tmp"
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
            os.replace(tmp, dest / MANIFEST)

    def read_image(self, path: Path) -> Image:
        """The image at ``path``; SandboxError naming the path when it is not a whole image."""
        manifest = path / MANIFEST
        try:
            data = json.loads(manifest.read_text())
        except FileNotFoundError:
            raise SandboxError(f"image {path} does not exist in this region's store") from None
        except (OSError, ValueError) as err:
            raise SandboxError(f"image {path} is damaged: {manifest}: {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SandboxError(
                f"image {path} is not in the sandbox's image format {FORMAT} "
                "(an older sandbox wrote it; run `invoke sandbox.reset`)"
            )
        layers = data.get("layers")
        base = data.get("base")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise SandboxError(f"image {path} is damaged: {manifest}: 'layers' is not a list")
        for layer in layers:
            if not (path / REFS / layer).exists() or not self.path(layer).is_dir():
                raise SandboxError(f"image {path} is damaged: layer {layer} is missing")
        base_path = Path(base) if isinstance(base, str) else None
        if base_path is not None and not base_path.is_dir():
            raise SandboxError(
                f"image {path} was captured over the base tree {base_path}, which is gone "
                "(the rootfs cache was cleared); build the version again"
            )
        if base_path is None and not layers:
            raise SandboxError(f"image {path} is damaged: {manifest}: it has no layers")
        return Image(path, base_path, tuple(layers))

    def lowers(self, image: Image) -> list[Path]:
        """The overlay lower dirs of ``image``, top first."""
        lowers = [self.path(layer) for layer in image.layers]
        if image.base is not None:
            lowers.append(image.base)
        return lowers

    def lookup(self, image: Image, relative: str) -> Path | None:
        """The file that ``relative`` names in ``image``'s merged tree, as overlayfs sees it.

        Returns the path of the topmost layer's entry, or None when the name does not
        exist (a whiteout or an opaque directory in a higher layer hides it). Symbolic links
        in the middle of ``relative`` are not followed.
        """
        parts = Path(relative.lstrip("/")).parts
        for lower in self.lowers(image):
            for depth in range(1, len(parts) + 1):
                entry = lower.joinpath(*parts[:depth])
                try:
                    info = os.lstat(entry)
                except FileNotFoundError:
                    break
                if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                    return None  # a whiteout: deleted in this layer
                if depth == len(parts):
                    return entry
                if not stat.S_ISDIR(info.st_mode):
                    return None  # a file here hides any directory of that name below
            for depth in range(len(parts) - 1, 0, -1):
                if _opaque(lower.joinpath(*parts[:depth])):
                    return None
        return None


def _opaque(directory: Path) -> bool:
    try:
        return os.getxattr(directory, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
