"""What a restart of the emulator does with the operations the old process left running.

The state file survives a restart, its background threads do not. Gallery image versions
whose replication was under way resume where their regions' progress says
(``replication.resume_all``); every other operation still InProgress is failed, and its
resource, if it was Creating/Updating/Deleting, becomes Failed.
"""

from __future__ import annotations

import logging

from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common, replication

log = logging.getLogger("imageforge.sandbox.emulator")


def resume_interrupted(em: Emulator) -> None:
    """Resume what a restart interrupted: replication continues, other work fails."""
    resumed = replication.resume_all(em)
    for op in em.ops.recover(resumed):
        mark_failed(em, op.get("resourceId", ""))
    log.info("emulator state at %s ready", em.config.state_dir)


def mark_failed(em: Emulator, resource_id: str) -> None:
    """A resource whose operation died: transitional states become Failed."""
    if not resource_id:
        return
    with em.store.lock:
        found = em.store.get(resource_id)
        if found is not None and found.properties.get("provisioningState") in common.TRANSITIONAL:
            found.properties["provisioningState"] = "Failed"
            em.store.put(found)
