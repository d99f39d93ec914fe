"""Benchmark of the sandbox's machines (ChrootBackend): boot-to-SSH and capture times.

Not a test: run it as root on a machine with debootstrap, from the repository root::

    .venv/bin/python bench/bench_sandbox_vm.py [--cold-rootfs] [--cache DIR]

Prints, for the debian-12 base image:

- base image: the debootstrap build time when ``--cold-rootfs`` (a throw-away cache, so it is
  a real cold build; downloaded packages are cached by the regular cache's ``debs/`` only) or
  when the regular cache lacks it, otherwise that it was cached;
- cold boot: first boot of a new VM to an SSH banner, including first-boot provisioning (admin
  user, host keys), twice: with the RSA host key made at boot (the baseline: no key pool) and
  with one taken from the backend's pool of keys made ahead of time (as the emulator runs it);
- warm boot: the same VM started again after a stop (no first boot);
- capture and replicate of the generalized VM (both by reference: no file is copied), boot
  from the replica, delete, and the disk the base, the VM, the layer store, the image and its
  replica use (``du`` in one run, so hard links count once).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imageforge.sandbox.backend import MARKETPLACE, OsProfile  # noqa: E402
from imageforge.sandbox.machines.chroot import ChrootBackend  # noqa: E402
from imageforge.sandbox.machines.rootfs import RootfsCache  # noqa: E402

DEFAULT_CACHE = Path(
    os.environ.get("IMAGEFORGE_ROOTFS_CACHE", Path.home() / ".cache/imageforge/rootfs")
)


def disk_use(*paths: Path) -> list[str]:
    """``du -sh`` of ``paths`` in one run: shared hard links count for the first path only."""
    result = subprocess.run(
        ["du", "-sh", *[str(p) for p in paths]], capture_output=True, text=True, check=True
    )
    return [line.split("\t")[0] for line in result.stdout.splitlines()]


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="base image cache")
    parser.add_argument(
        "--cold-rootfs", action="store_true", help="also time a debootstrap into an empty cache"
    )
    args = parser.parse_args()
    base = MARKETPLACE[0]
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-") as scratch:
        work = Path(scratch)
        if args.cold_rootfs:
            started = time.monotonic()
            RootfsCache(work / "cold-cache").ensure(base.suite)
            print(f"base image (cold debootstrap): {time.monotonic() - started:.1f} s")
        backend = ChrootBackend(work / "state", args.cache, host_key_pool=2)
        cached = backend.rootfs.path(base.suite).exists()
        started = time.monotonic()
        base_dir = backend.base_image_dir(base)
        if cached:
            print(f"base image: cached at {base_dir}")
        else:
            print(f"base image (debootstrap): {time.monotonic() - started:.1f} s")
        profile = OsProfile("bench", "azureuser")
        deadline = time.monotonic() + 60
        while backend.hostkeys.ready() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        no_pool = ChrootBackend(work / "state", args.cache)
        try:
            started = time.monotonic()
            no_pool.boot("bench-0", source=base, profile=profile, address="127.99.0.4")
            print(
                f"cold boot to SSH, RSA host key made at boot (baseline): "
                f"{time.monotonic() - started:.2f} s"
            )
            no_pool.delete("bench-0")
            started = time.monotonic()
            backend.boot("bench", source=base, profile=profile, address="127.99.0.2")
            print(
                f"cold boot to SSH, RSA host key from the pool: {time.monotonic() - started:.2f} s"
            )
            backend.stop("bench")
            started = time.monotonic()
            backend.boot("bench", source=base, profile=profile, address="127.99.0.2")
            print(f"warm boot to SSH (restart): {time.monotonic() - started:.2f} s")
            started = time.monotonic()
            backend.generalize("bench")
            print(f"generalize (stop): {time.monotonic() - started:.2f} s")
            image = work / "blobs/region-a/image"
            started = time.monotonic()
            backend.capture("bench", image)
            print(f"capture of the debian-12 VM: {time.monotonic() - started:.3f} s")
            progress: list[int] = []
            replica = work / "blobs/region-b/image"
            started = time.monotonic()
            backend.replicate(image, replica, progress.append)
            print(f"replicate (by reference): {time.monotonic() - started:.3f} s")
            vm_dir = backend.state_dir / "vms/bench"
            uses = disk_use(base_dir, vm_dir, backend.layers.root, image, replica)
            print(
                "disk: base {}, VM {}, layer store {}, captured image {}, replica {}".format(*uses)
            )
            started = time.monotonic()
            backend.boot("bench-2", source=replica, profile=profile, address="127.99.0.3")
            print(f"boot to SSH from the captured image: {time.monotonic() - started:.2f} s")
            started = time.monotonic()
            backend.delete("bench-2")
            print(f"delete: {time.monotonic() - started:.2f} s")
        finally:
            for key in ("bench-0", "bench", "bench-2"):
                if (backend.state_dir / "vms" / key).exists():
                    backend.delete(key)
            backend.shutdown()
            backend.reap()
    return 0


if __name__ == "__main__":
    sys.exit(main())
