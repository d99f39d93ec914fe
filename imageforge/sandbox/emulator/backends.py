"""Build the ``MachineBackend`` an emulator runs with, by name.

``inert`` is imageforge.sandbox.backend.InertBackend (ARM bookkeeping only); ``chroot`` is
imageforge.sandbox.machines.chroot.ChrootBackend (chroots, overlay layers and a host key pool).
"""

from __future__ import annotations

from pathlib import Path

from imageforge.sandbox.backend import InertBackend, MachineBackend
from imageforge.sandbox.machines.chroot import ChrootBackend
from imageforge.sandbox.machines.hostkeys import SIZE

DEFAULT_CACHE_DIR = Path("~/.cache/imageforge/rootfs")


def make_backend(name: str, state_dir: Path, cache_dir: Path | None = None) -> MachineBackend:
    if name == "inert":
        return InertBackend()
    if name == "chroot":
        cache = (cache_dir or DEFAULT_CACHE_DIR).expanduser()
        return ChrootBackend(state_dir, cache, host_key_pool=SIZE)
    raise ValueError(f"unknown sandbox backend {name!r}: use inert or chroot")
