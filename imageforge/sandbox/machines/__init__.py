"""The sandbox's machines: Debian root filesystems run as chroots in their own namespaces.

``ChrootBackend`` implements ``imageforge.sandbox.backend.MachineBackend``; see chroot.py
(the contract), vm.py (one VM), vminit.py (a VM's init), rootfs.py (the debootstrap cache)
and tree.py (copying images).
"""

from imageforge.sandbox.machines.chroot import NOT_ROOT, ChrootBackend

__all__ = ["NOT_ROOT", "ChrootBackend"]
