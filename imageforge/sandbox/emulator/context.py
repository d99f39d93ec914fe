"""``Emulator``: the state one server process shares between its handlers.

Configuration, the SQLite store, long-running operations, faults, request stats, the machine
backend, and the loopback addresses VMs get. It knows nothing of the handlers: the app gives it
``read_resource`` and the server resumes interrupted work (``handlers.restart``).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from pathlib import Path

from imageforge.sandbox.backend import SANDBOX_SSH_PORT, MachineBackend
from imageforge.sandbox.emulator.config import EmulatorConfig
from imageforge.sandbox.emulator.faults import Faults
from imageforge.sandbox.emulator.lro import Operations
from imageforge.sandbox.emulator.messages import ArmResponse
from imageforge.sandbox.emulator.stats import RequestStats
from imageforge.sandbox.emulator.store import Store

_ADDRESSES_PER_BLOCK = 250
#: 127.100.0.0 - 127.254.255.255: 155 * 256 blocks of 250 addresses.
_ADDRESS_SPACE = 155 * 256 * _ADDRESSES_PER_BLOCK


def _listening(address: str, port: int) -> bool:
    """Whether something already accepts connections on address:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((address, port)) == 0


def _no_reader(resource_id: str, api_version: str, base_url: str) -> ArmResponse:
    raise RuntimeError("the emulator's app has not set read_resource")


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
        #: GET of a resource by id, as a client would see it; set by the app, which owns the
        #: route table (a Location monitor ends with the resource, see handlers.operations).
        self.read_resource: Callable[[str, str, str], ArmResponse] = _no_reader

    def blob_dir(self, region: str, blob_id: str) -> Path:
        """Where a captured image lives in one region's store."""
        return self.config.blobs_dir / region / blob_id

    def allocate_address(self) -> str:
        """A loopback address no other VM of this sandbox ever had, and none other answers on.

        Several sandboxes (state dirs) can run on one host. Each numbers its VMs from its own
        starting block (derived from its state dir), and an address where something already
        listens on the SSH port is skipped, so a VM of one never answers for a VM of another.
        """
        for _ in range(1000):
            n = self.store.next_value("vm-address") - 1 + self._address_offset
            block, host = divmod(n % _ADDRESS_SPACE, _ADDRESSES_PER_BLOCK)
            second, third = divmod(block, 256)
            address = f"127.{100 + second}.{third}.{host + 2}"
            if not _listening(address, SANDBOX_SSH_PORT):
                return address
        raise RuntimeError("the sandbox found no free loopback address for a VM")

    @property
    def _address_offset(self) -> int:
        digest = hashlib.sha256(str(self.config.state_dir.resolve()).encode()).digest()
        blocks = _ADDRESS_SPACE // _ADDRESSES_PER_BLOCK
        return (int.from_bytes(digest[:4], "big") % blocks) * _ADDRESSES_PER_BLOCK

    def shutdown(self) -> None:
        self.ops.stopping.set()
