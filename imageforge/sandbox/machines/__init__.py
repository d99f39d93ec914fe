"""The sandbox's machines: Debian root filesystems run as chroots in their own namespaces.

``ChrootBackend`` (chroot.py) implements ``imageforge.sandbox.backend.MachineBackend``; see
chroot.py (the contract), disks.py (a VM's disk), vm.py (one VM), vminit.py (a VM's init),
rootfs.py (the debootstrap cache), layers.py (captured images) and tree.py (copying images).
Import from those modules: no module of this package imports the package itself.
"""

# Kept only for the benchmarks that still write `from imageforge.sandbox.machines import
# ChrootBackend` (bench/bench_e2e.py, bench/bench_sandbox_vm.py); once they import
# imageforge.sandbox.machines.chroot, this re-export goes.
from imageforge.sandbox.machines.chroot import ChrootBackend

__all__ = ["ChrootBackend"]
