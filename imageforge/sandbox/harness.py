"""Run the ARM emulator in a child process for tests: ``running_emulator()``.

    with running_emulator(tmp_path / "sandbox") as arm:
        client = ComputeManagementClient(credential, arm.subscription_id,
                                         base_url=arm.base_url, connection_verify=arm.ca_path)
        arm.set_faults([{"kind": "throttle", "method": "GET", "path": "/versions/", "count": 3}])

The child is a real HTTPS server (so tests exercise TLS, the SDK's pipeline and the
long-running-operation polling as against Azure). It is stopped with SIGTERM on exit (SIGKILL
if it does not stop in time), so no process outlives the block.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageforge.errors import SandboxError
from imageforge.sandbox.emulator.config import SANDBOX_SUBSCRIPTION_ID
from imageforge.sandbox.emulator.server import runtime_path

#: The token admin helpers send; the emulator accepts any non-empty bearer token.
ADMIN_TOKEN = "sandbox"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class AdminClient:
    """Plain HTTPS calls to the emulator's ``/_sandbox/`` API, verified against its CA."""

    def __init__(self, base_url: str, ca_path: Path) -> None:
        self.base_url = base_url
        self._context = ssl.create_default_context(cafile=str(ca_path))

    def call(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise SandboxError(
                f"sandbox admin call {method} {path} failed: {err.code} {detail}"
            ) from None
        return json.loads(raw) if raw else None

    def health(self, timeout: float = 2.0) -> dict[str, Any]:
        return self.call("GET", "/_sandbox/health", timeout=timeout)  # type: ignore[no-any-return]


@dataclass
class EmulatorHandle:
    """A running emulator: where it listens, what to trust, and its admin helpers."""

    base_url: str
    ca_path: Path
    state_dir: Path
    pid: int
    subscription_id: str = SANDBOX_SUBSCRIPTION_ID

    @property
    def admin(self) -> AdminClient:
        return AdminClient(self.base_url, self.ca_path)

    def set_faults(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add fault rules (see imageforge.sandbox.emulator.faults); returns them with ids."""
        return self.admin.call("POST", "/_sandbox/faults", {"rules": rules})["rules"]  # type: ignore[no-any-return]

    def faults(self) -> list[dict[str, Any]]:
        return self.admin.call("GET", "/_sandbox/faults")["rules"]  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        self.admin.call("DELETE", "/_sandbox/faults")

    def stats(self) -> dict[str, Any]:
        return self.admin.call("GET", "/_sandbox/stats")  # type: ignore[no-any-return]

    def reset_stats(self) -> None:
        self.admin.call("DELETE", "/_sandbox/stats")

    def status(self) -> dict[str, Any]:
        return self.admin.call("GET", "/_sandbox/status")  # type: ignore[no-any-return]


def emulator_command(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    backend: str = "inert",
    replication_seconds: float = 0.0,
    lro_seconds: float = 0.0,
    page_size: int = 10,
    cache_dir: Path | None = None,
) -> list[str]:
    """The argv that starts an emulator process."""
    argv = [
        sys.executable, "-m", "imageforge.sandbox.emulator",
        "--state-dir", str(state_dir), "--host", host, "--port", str(port),
        "--backend", backend, "--replication-seconds", str(replication_seconds),
        "--lro-seconds", str(lro_seconds), "--page-size", str(page_size),
    ]  # fmt: skip
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    return argv


def child_env() -> dict[str, str]:
    """The environment of an emulator process: ours, with this imageforge importable."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def wait_until_ready(
    pid: int,
    exit_code: Callable[[], int | None],
    state_dir: Path,
    log_path: Path,
    timeout: float,
) -> EmulatorHandle:
    """Wait for process ``pid``'s runtime file and a healthy answer.

    ``exit_code`` returns the process's exit code once it has exited (else None); an exit
    while starting is a SandboxError naming the log.
    """
    deadline = time.monotonic() + timeout
    runtime = runtime_path(state_dir)
    while time.monotonic() < deadline:
        code = exit_code()
        if code is not None:
            raise SandboxError(
                f"the sandbox emulator exited with code {code} while starting (log: {log_path})"
            )
        info = read_runtime(runtime)
        if info and info.get("pid") == pid:
            handle = EmulatorHandle(info["url"], Path(info["caPath"]), state_dir, pid)
            try:
                handle.admin.health(timeout=2.0)
                return handle
            except (OSError, SandboxError):
                pass
        time.sleep(0.05)
    raise SandboxError(
        f"the sandbox emulator did not start within {timeout:.0f}s (log: {log_path})"
    )


def read_runtime(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


@contextmanager
def running_emulator(
    state_dir: Path,
    *,
    backend: str = "inert",
    replication_seconds: float = 0.0,
    lro_seconds: float = 0.0,
    port: int = 0,
    page_size: int = 10,
    cache_dir: Path | None = None,
) -> Iterator[EmulatorHandle]:
    """Start an emulator over ``state_dir`` in a child process; stop it on exit.

    ``cache_dir`` is the chroot backend's base-image cache (default: the emulator's own)."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    runtime_path(state_dir).unlink(missing_ok=True)
    log_path = state_dir / "emulator.log"
    argv = emulator_command(
        state_dir,
        port=port,
        backend=backend,
        replication_seconds=replication_seconds,
        lro_seconds=lro_seconds,
        page_size=page_size,
        cache_dir=cache_dir,
    )
    env = child_env()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield wait_until_ready(process.pid, process.poll, state_dir, log_path, START_TIMEOUT)
    finally:
        stop_process(process)
