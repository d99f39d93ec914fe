"""The sandbox's machines: Debian root filesystems run as chroots in their own namespaces.

``ChrootBackend`` (chroot.py) implements ``imageforge.sandbox.backend.MachineBackend``; see
chroot.py (the contract), disks.py (a VM's disk), vm.py (one VM), vminit.py (a VM's init),
rootfs.py (the debootstrap cache), layers.py (captured images), checks.py (what is refused
up front), partial.py (half-written images) and tree.py (removing trees). The package exports
nothing: import from those modules.
"""
