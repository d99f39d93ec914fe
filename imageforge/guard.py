"""Run one program so that it is interrupted, as by Ctrl-C, when imageforge dies.

    python -m imageforge.guard PROGRAM [ARGS...]

imageforge starts long-running tools (Packer) in a session of their own, so that a timeout or
a Ctrl-C reaches the tool's whole process group exactly once. The price is that a SIGKILL of
imageforge (a cancelled pipeline agent, an OOM kill) would not reach the tool: Packer would go
on holding its build VM and never delete its temporary Azure resources. This guard sits between
the two as the group's leader:

- the kernel sends it SIGTERM when imageforge dies (PR_SET_PDEATHSIG); it then sends SIGINT
  to its group, which is what Packer needs to cancel and clean up (Packer 1.6 ignores a
  SIGINT sent to its own pid only: its panicwrap monitor expects the terminal's group signal);
- it ignores SIGINT itself and relays the program's output, carrying on when nobody reads it
  any more, so the program is never killed by SIGPIPE halfway through its cleanup;
- it exits with the program's exit code.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def _interrupt_group(signum: int, frame: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGINT)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m imageforge.guard PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt_group)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # the program gets the default SIGINT handling back (Popen restores signals)
            restore_signals=True,
        )
    except FileNotFoundError:
        print(f"{argv[0]}: program not found", file=sys.stderr)
        return 127
    if os.getppid() != parent:  # imageforge died before the death signal was armed
        _interrupt_group(signal.SIGTERM, None)
    assert child.stdout is not None
    out = sys.stdout.buffer
    relaying = True
    for line in iter(child.stdout.readline, b""):
        if relaying:
            try:
                out.write(line)
                out.flush()
            except OSError:  # imageforge is gone: keep draining so the program can finish
                relaying = False
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
