"""Images written under a temporary name next to their destination, journaled for reap.

A capture or a replica is written into ``<dest's dir>/.imageforge-partial-<name>-<token>/``
and renamed to its destination once whole, so a gallery never sees half an image. While it
is written, the journal entry ``<state>/partial/<token>`` names the temporary directory:
``reap`` finds and removes what a crashed run left half written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imageforge.errors import SandboxError
from imageforge.sandbox.machines.tree import remove_tree

#: Prefix of temporary directories next to a capture or replica being written.
PARTIAL_PREFIX = ".imageforge-partial-"


class PartialImages:
    """The journal of images being written, in ``journal_dir`` (created if missing)."""

    def __init__(self, journal_dir: Path) -> None:
        self.journal_dir = journal_dir
        journal_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def writing(self, dest: Path) -> Iterator[Path]:
        """A temporary directory next to ``dest``, journaled for reap, renamed to ``dest``."""
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise SandboxError(f"image destination {dest} exists and is not an empty directory")
        dest.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        tmp = dest.parent / f"{PARTIAL_PREFIX}{dest.name}-{token}"
        journal = self.journal_dir / token
        journal.write_text(f"{tmp}\n")
        tmp.mkdir()
        try:
            yield tmp
            if dest.exists():
                dest.rmdir()
            os.rename(tmp, dest)
        finally:
            if tmp.exists():
                remove_tree(tmp)
            journal.unlink(missing_ok=True)

    def reap(self) -> list[str]:
        """Remove the images a crashed run left half written; return what was removed."""
        reaped: list[str] = []
        for journal in sorted(self.journal_dir.glob("*")):
            target = Path(journal.read_text().strip())
            if target.name.startswith(PARTIAL_PREFIX):
                remove_tree(target)
                reaped.append(f"partial image {target}")
            journal.unlink()
        return reaped
