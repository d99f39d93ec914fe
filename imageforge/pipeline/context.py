"""The context of one run, computed once: which commit, which pipeline run and build, who acts,
how Packer authenticates; how a task prints; which Packer and render profile it uses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageforge import process
from imageforge.packer import Packer
from imageforge.render import Profile, get_profile, profile_for_packer
from imageforge.site import Site


def say(message: str = "") -> None:
    """Print a line of a task's output (prefixed with its image in a parallel build)."""
    prefix = process.console_prefix()
    if prefix:
        message = "\n".join(prefix + line for line in message.split("\n"))
    print(message, flush=True)


def source_commit(root: Path) -> str:
    """The commit being built: Azure DevOps' Build.SourceVersion, else git, else 'unknown'."""
    if os.environ.get("BUILD_SOURCEVERSION"):
        return os.environ["BUILD_SOURCEVERSION"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def actor() -> str:
    """Who is acting: the Azure DevOps requester, else the local user."""
    try:
        local = getpass.getuser()
    except (KeyError, OSError):
        local = "unknown"
    return (
        os.environ.get("BUILD_REQUESTEDFOREMAIL") or os.environ.get("BUILD_REQUESTEDFOR") or local
    )


def use_cli_auth() -> bool:
    """Packer uses the Azure CLI's login unless a service principal secret is in the env."""
    return not (os.environ.get("ARM_CLIENT_ID") and os.environ.get("ARM_CLIENT_SECRET"))


@dataclass(frozen=True)
class RunContext:
    """What every stage of a run records, read once at its start (``RunContext.of``)."""

    commit: str
    pipeline_run: str  # Build.BuildId in Azure DevOps, else "local"
    build_id: str | None  # what the date scheme numbers versions by
    actor: str
    #: Packer uses the Azure CLI's login unless a service principal secret is in the env.
    use_cli_auth: bool

    @classmethod
    def of(cls, root: Path) -> RunContext:
        return cls(
            commit=source_commit(root),
            pipeline_run=os.environ.get("BUILD_BUILDID") or "local",
            build_id=os.environ.get("IMAGEFORGE_BUILD_ID")
            or os.environ.get("BUILD_BUILDID")
            or None,
            actor=actor(),
            use_cli_auth=use_cli_auth(),
        )


def packer_for(site: Site) -> Packer:
    return Packer(binary=site.packer, cwd=site.root)


def resolve_profile(name: str | None, packer: Packer) -> Profile:
    """The render profile asked for, else the one this Packer's version needs."""
    if name:
        return get_profile(name)
    return profile_for_packer(packer.version())


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A pipeline cancelled with SIGTERM cleans up like Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
