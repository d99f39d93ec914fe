"""``Emulator``: the state one server process shares between its handlers."""

from __future__ import annotations

import logging
from pathlib import Path

from imageforge.sandbox.backend import MachineBackend
from imageforge.sandbox.emulator.config import EmulatorConfig
from imageforge.sandbox.emulator.faults import Faults
from imageforge.sandbox.emulator.lro import Operations
from imageforge.sandbox.emulator.stats import RequestStats
from imageforge.sandbox.emulator.store import Store

log = logging.getLogger("imageforge.sandbox.emulator")

_ADDRESSES_PER_BLOCK = 250


class Emulator:
    """Configuration, ARM state, operations, faults, stats and the machine backend."""

    def __init__(self, config: EmulatorConfig, backend: MachineBackend) -> None:
        self.config = config
        self.backend = backend
        self.store = Store(config.db_path)
        self.ops = Operations(
            self.store,
            lro_seconds=config.lro_seconds,
            poll_wait_seconds=config.poll_wait_seconds,
        )
        self.faults = Faults()
        self.stats = RequestStats()

    def blob_dir(self, region: str, blob_id: str) -> Path:
        """Where a captured image lives in one region's store."""
        return self.config.blobs_dir / region / blob_id

    def allocate_address(self) -> str:
        """A loopback address no other VM of this sandbox ever had (127.100.0.2, ...)."""
        n = self.store.next_value("vm-address") - 1
        block, host = divmod(n, _ADDRESSES_PER_BLOCK)
        second, third = divmod(block, 256)
        if second > 154:
            raise RuntimeError("the sandbox ran out of loopback addresses")
        return f"127.{100 + second}.{third}.{host + 2}"

    def startup(self) -> None:
        """Resume what a restart interrupted: replication continues, other work fails."""
        from imageforge.sandbox.emulator.handlers import common, replication

        resumed = replication.resume_all(self)
        for op in self.ops.recover(resumed):
            common.mark_failed(self, op.get("resourceId", ""))
        log.info("emulator state at %s ready", self.config.state_dir)

    def shutdown(self) -> None:
        self.ops.stopping.set()
