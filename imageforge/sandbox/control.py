"""Start, stop, inspect and reset the sandbox's ARM emulator (``invoke sandbox.*``).

``up`` starts the emulator as a daemon (own session, pidfile ``<state>/sandbox.pid``, log
``<state>/emulator.log``) after making sure the local CA exists; it is idempotent. ``down``
stops it, ``status`` reports it, ``reset`` stops it, lets the machine backend reap whatever
is left and wipes the state dir. Expected failures are SandboxError with one-line messages.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageforge.errors import SandboxError
from imageforge.sandbox.emulator.backends import make_backend
from imageforge.sandbox.emulator.certs import ensure_certificates
from imageforge.sandbox.emulator.config import BACKENDS, SANDBOX_SUBSCRIPTION_ID
from imageforge.sandbox.emulator.server import runtime_path
from imageforge.sandbox.harness import (
    AdminClient,
    child_env,
    emulator_command,
    read_runtime,
    wait_until_ready,
)
from imageforge.sandbox.machines.checks import NOT_ROOT

PIDFILE = "sandbox.pid"
LOGFILE = "emulator.log"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
NOT_RUNNING = "the sandbox is not running: start it with `invoke sandbox.up`"
#: Files that mark a directory as a sandbox state dir (reset refuses to wipe anything else).
_MARKERS = ("arm.sqlite3", "tls", PIDFILE, LOGFILE, "blobs")


@dataclass(frozen=True)
class SandboxSettings:
    """Where the sandbox keeps its state and how its emulator runs."""

    state_dir: Path = Path("~/.cache/imageforge/sandbox")
    host: str = "127.0.0.1"
    port: int = 8443
    backend: str = "chroot"
    replication_seconds: float = 2.0
    lro_seconds: float = 0.0
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).expanduser())
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        if self.backend not in BACKENDS:
            raise SandboxError(
                f"sandbox backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}"
            )
        if not 0 <= self.port <= 65535:
            raise SandboxError(f"sandbox port {self.port} is not a TCP port")
        if self.replication_seconds < 0 or self.lro_seconds < 0:
            raise SandboxError("sandbox replication_seconds and lro_seconds must be >= 0")


@dataclass(frozen=True)
class SandboxInfo:
    """A running sandbox emulator."""

    pid: int
    url: str
    ca_path: Path
    subscription_id: str = SANDBOX_SUBSCRIPTION_ID
    already_running: bool = False


@dataclass(frozen=True)
class SandboxStatus:
    running: bool
    state_dir: Path
    info: SandboxInfo | None = None
    resources: dict[str, int] = field(default_factory=dict)
    vms: int = 0
    operations_in_progress: int = 0


@dataclass(frozen=True)
class ResetReport:
    stopped_pid: int | None
    reaped: list[str]
    wiped: Path


def _pidfile(settings: SandboxSettings) -> Path:
    return settings.state_dir / PIDFILE


def _is_emulator(pid: int) -> bool:
    """The pid is alive and is an emulator process (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"imageforge.sandbox.emulator" in cmdline


def _read_pid(settings: SandboxSettings) -> int | None:
    try:
        pid = int(_pidfile(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_emulator(pid) else None


def _info(settings: SandboxSettings, pid: int) -> SandboxInfo | None:
    runtime = read_runtime(runtime_path(settings.state_dir))
    if not runtime or runtime.get("pid") != pid:
        return None
    info = SandboxInfo(pid, runtime["url"], Path(runtime["caPath"]))
    try:
        AdminClient(info.url, info.ca_path).health()
    except (OSError, SandboxError):
        return None
    return info


def running(settings: SandboxSettings) -> SandboxInfo | None:
    """The running emulator of this state dir, if any."""
    pid = _read_pid(settings)
    return _info(settings, pid) if pid else None


def connection(settings: SandboxSettings) -> SandboxInfo:
    """The running emulator, or SandboxError telling how to start it."""
    info = running(settings)
    if info is None:
        raise SandboxError(NOT_RUNNING)
    return info


def check_can_start(settings: SandboxSettings) -> None:
    """SandboxError when this process could not start the emulator (the chroot backend needs
    root): said before anything is written or spawned, rather than by an emulator that exits
    while starting."""
    if settings.backend == "chroot" and os.geteuid() != 0:
        raise SandboxError(NOT_ROOT)


def up(settings: SandboxSettings) -> SandboxInfo:
    """Start the emulator in the background unless it already runs."""
    current = running(settings)
    if current is not None:
        return SandboxInfo(current.pid, current.url, current.ca_path, already_running=True)
    check_can_start(settings)
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    ensure_certificates(state / "tls")
    runtime_path(state).unlink(missing_ok=True)
    log_path = state / LOGFILE
    argv = emulator_command(
        state,
        host=settings.host,
        port=settings.port,
        backend=settings.backend,
        replication_seconds=settings.replication_seconds,
        lro_seconds=settings.lro_seconds,
        cache_dir=settings.cache_dir,
    )
    pid = _spawn_daemon(argv, log_path)
    _pidfile(settings).write_text(f"{pid}\n")
    try:
        handle = wait_until_ready(pid, lambda: _exit_code(pid), state, log_path, START_TIMEOUT)
    except SandboxError as err:
        _stop_pid(pid)
        _pidfile(settings).unlink(missing_ok=True)
        raise SandboxError(f"{err}{_log_hint(log_path)}") from None
    return SandboxInfo(handle.pid, handle.base_url, handle.ca_path)


def _spawn_daemon(argv: list[str], log_path: Path) -> int:
    """Start ``argv`` in its own session, output appended to ``log_path``; return its pid.

    posix_spawn rather than Popen: the daemon is meant to outlive this process, and a Popen
    object dropped while its process runs is reported as a leaked resource.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    return os.posix_spawn(
        argv[0],
        argv,
        child_env(),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), flags, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def _exit_code(pid: int) -> int | None:
    """The exit code of our child ``pid`` if it has exited (reaping it), else None."""
    try:
        finished, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if _alive(pid) else -1
    if finished != pid:
        return None
    return os.waitstatus_to_exitcode(status)


def _log_hint(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()}" if lines else ""


def _stop_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def down(settings: SandboxSettings) -> int | None:
    """Stop the emulator; return its pid, or None if it was not running."""
    pid = _read_pid(settings)
    _pidfile(settings).unlink(missing_ok=True)
    if pid is None:
        return None
    _stop_pid(pid)
    return pid


def status(settings: SandboxSettings) -> SandboxStatus:
    """Is it running, where, and how many resources and VMs it holds."""
    info = running(settings)
    if info is None:
        return SandboxStatus(False, settings.state_dir)
    data: dict[str, Any] = AdminClient(info.url, info.ca_path).call("GET", "/_sandbox/status")
    return SandboxStatus(
        True,
        settings.state_dir,
        info,
        resources=dict(data.get("resources", {})),
        vms=int(data.get("vms", 0)),
        operations_in_progress=int(data.get("operationsInProgress", 0)),
    )


def reset(settings: SandboxSettings) -> ResetReport:
    """Stop the emulator, let the backend reap leftovers, wipe the state dir."""
    state = settings.state_dir
    if state.exists() and any(state.iterdir()):
        if not any((state / marker).exists() for marker in _MARKERS):
            raise SandboxError(
                f"refusing to wipe {state}: it does not look like a sandbox state dir"
            )
    stopped = down(settings)
    backend = make_backend(settings.backend, state, settings.cache_dir)
    reaped = backend.reap()
    try:
        shutil.rmtree(state)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise SandboxError(f"could not wipe the sandbox state dir {state}: {err}") from None
    return ResetReport(stopped, reaped, state)


def publish_base(
    settings: SandboxSettings, publisher: str, offer: str, sku: str, version: str | None = None
) -> dict[str, Any]:
    """A newer version of a sandbox marketplace base (what a platform patch day looks like)."""
    info = connection(settings)
    body = {"publisher": publisher, "offer": offer, "sku": sku}
    if version:
        body["version"] = version
    return AdminClient(info.url, info.ca_path).call(  # type: ignore[no-any-return]
        "POST", "/_sandbox/marketplace", body
    )
