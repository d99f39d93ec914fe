"""The emulator's settings, fixed for the life of one server process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The subscription the sandbox answers for by default (any GUID-shaped id is accepted).
SANDBOX_SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000005a4d"

BACKENDS = ("inert", "chroot")


@dataclass(frozen=True)
class EmulatorConfig:
    """How one emulator process behaves.

    ``replication_seconds`` is the pace of gallery replication per target region and
    ``lro_seconds`` the least time a long-running operation takes (both may be 0).
    ``page_size`` is the number of items per page of every list answer.
    """

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    backend: str = "inert"
    cache_dir: Path | None = None
    replication_seconds: float = 0.0
    lro_seconds: float = 0.0
    page_size: int = 10
    #: How long an operation-status poll may wait for a nearly finished operation, so a
    #: fast operation is reported done on the first poll instead of after a Retry-After.
    poll_wait_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.replication_seconds < 0 or self.lro_seconds < 0:
            raise ValueError("replication_seconds and lro_seconds must be >= 0")
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")

    @property
    def db_path(self) -> Path:
        return self.state_dir / "arm.sqlite3"

    @property
    def blobs_dir(self) -> Path:
        return self.state_dir / "blobs"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"
