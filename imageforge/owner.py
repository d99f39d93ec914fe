"""Which process made a resource, and whether it is provably gone.

A throw-away resource group is tagged ``imageforge.owner = <machine>:<boot>:<pid>:<start>``:
this machine's id (/etc/machine-id), the current boot (/proc/sys/kernel/random/boot_id), the
process id and the process's start time in clock ticks since boot (field 22 of
/proc/<pid>/stat, which tells a reused process id from the original). ``invoke cleanup``
reclaims a group at once when its owner is provably dead:

- same machine and boot, and no process with that id, or one that started at another time;
- same machine, another boot: every process of the old boot is gone.

Anything else (another machine, a tag it cannot read) proves nothing, and the group waits for
its ``imageforge.expires`` as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int, proc: Path = PROC) -> str:
    stat = _read(proc / str(pid) / "stat")
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    rest = stat.rpartition(")")[2].split()
    return rest[19] if len(rest) > 19 else ""


@dataclass(frozen=True)
class Owner:
    machine: str
    boot: str
    pid: int
    start: str

    def tag(self) -> str:
        return f"{self.machine}:{self.boot}:{self.pid}:{self.start}"

    @classmethod
    def parse(cls, value: str) -> Owner | None:
        parts = value.split(":")
        if len(parts) != 4 or not parts[2].isdigit() or not all(parts):
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])


def current(proc: Path = PROC, etc: Path = Path("/etc")) -> Owner | None:
    """This process as an owner, or None where the machine cannot say (no /proc, no id)."""
    machine = _read(etc / "machine-id")
    boot = _read(proc / "sys/kernel/random/boot_id")
    pid = os.getpid()
    start = _start_ticks(pid, proc)
    if not (machine and boot and start):
        return None
    return Owner(machine, boot.replace("-", ""), pid, start)


def provably_dead(value: str, here: Owner | None = None, proc: Path = PROC) -> bool:
    """Whether the owner tag ``value`` names a process that cannot be running any more."""
    owner = Owner.parse(value)
    me = here if here is not None else current(proc)
    if owner is None or me is None or owner.machine != me.machine:
        return False
    if owner.boot != me.boot:
        return True
    return _start_ticks(owner.pid, proc) != owner.start
