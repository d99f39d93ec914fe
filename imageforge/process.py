"""The one way imageforge runs programs: argv lists, never shell strings.

Output streams line by line to the console and to a log file, with known secret values
replaced by ``***`` on both. A timeout first sends SIGINT to the program's process group (what
Ctrl-C does, so Packer can delete its temporary Azure resources), waits a grace period, then
kills the group. Ctrl-C in imageforge itself is forwarded the same way.

Callers get a ``ProcessRunner``; tests inject a recording one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from imageforge.errors import ToolError

#: Environment variables whose values never reach a console or a log.
SECRET_ENV = (
    "ARM_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "ARM_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
    "ARM_OIDC_TOKEN",
    "ARM_OIDC_REQUEST_TOKEN",
    "AZURE_FEDERATED_TOKEN",
    "SYSTEM_ACCESSTOKEN",
    "IMAGEFORGE_WINRM_PASSWORD",
)


#: What each line a program prints is prefixed with on the console (not in its log), per thread:
#: parallel builds name their image this way (``prefixed``).
_local = threading.local()
#: Process groups started and not yet finished, so a Ctrl-C in the main thread can stop the ones
#: that worker threads run (``interrupt_all``).
_running: set[subprocess.Popen[str]] = set()
_running_lock = threading.Lock()


def console_prefix() -> str:
    return str(getattr(_local, "prefix", ""))


@contextmanager
def prefixed(prefix: str) -> Iterator[None]:
    """Within the block, this thread's console lines (programs' and ``say``'s) get ``prefix``."""
    previous = console_prefix()
    _local.prefix = prefix
    try:
        yield
    finally:
        _local.prefix = previous


def interrupt_all() -> None:
    """SIGINT to every process group still running (what Ctrl-C does to a foreground one)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass


@dataclass
class Completed:
    argv: tuple[str, ...]
    returncode: int
    output: str = ""
    log_path: Path | None = None
    timed_out: bool = False
    interrupted: bool = False
    duration: float = 0.0


class ProcessRunner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        timeout: float | None = None,
        echo: bool = True,
    ) -> Completed: ...


def _findable(program: str, cwd: Path | None) -> bool:
    if os.sep in program:
        path = Path(cwd or ".") / program
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(program) is not None


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """The secret values present in ``env`` (or os.environ), longest first."""
    source = os.environ if env is None else env
    values = {source[k] for k in SECRET_ENV if source.get(k) and len(source[k]) >= 4}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


@dataclass
class SubprocessRunner:
    """Runs programs for real. ``grace`` is how long SIGINT gets before SIGKILL."""

    grace: float = 120.0
    console: TextIO | None = None
    guard: bool = True
    on_start: Callable[[subprocess.Popen[str]], None] | None = field(default=None, repr=False)

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        timeout: float | None = None,
        echo: bool = True,
    ) -> Completed:
        argv = tuple(str(a) for a in argv)
        if not _findable(argv[0], cwd):
            raise ToolError(f"{argv[0]}: program not found")
        # the guard interrupts the program if imageforge itself is killed (see imageforge.guard)
        command = (sys.executable, "-m", "imageforge.guard", *argv) if self.guard else argv
        full_env = dict(os.environ if env is None else env)
        secrets = secret_values(full_env)
        console = self.console or sys.stdout
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "w", encoding="utf-8") if log_path else None  # noqa: SIM115
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
            )
        except FileNotFoundError:
            if log:
                log.close()
            raise ToolError(f"{argv[0]}: program not found") from None
        if self.on_start:
            self.on_start(proc)
        with _running_lock:
            _running.add(proc)
        lines: list[str] = []
        prefix = console_prefix()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = redact(line, secrets)
                lines.append(line)
                if log:
                    log.write(line)
                    log.flush()
                if echo:
                    console.write(prefix + line if prefix else line)
                    console.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = interrupted = False
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._stop(proc)
        except KeyboardInterrupt:
            interrupted = True
            self._stop(proc)
        with _running_lock:
            _running.discard(proc)
        reader.join(timeout=10)
        if proc.stdout is not None and not reader.is_alive():
            proc.stdout.close()  # else a grandchild still holds the pipe: leave it to the reader
        if log:
            log.close()
        result = Completed(
            argv,
            proc.returncode if proc.returncode is not None else -9,
            "".join(lines),
            log_path,
            timed_out,
            interrupted,
            time.monotonic() - started,
        )
        if interrupted:
            raise KeyboardInterrupt
        return result

    def _stop(self, proc: subprocess.Popen[str]) -> None:
        """SIGINT to the group, then SIGKILL after the grace period."""
        for sig, wait in ((signal.SIGINT, self.grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
            except KeyboardInterrupt:
                continue  # a second Ctrl-C: go straight to SIGKILL


def run_checked(
    runner: ProcessRunner, argv: Sequence[str], *, what: str, **kwargs: object
) -> Completed:
    """Run and raise ToolError naming ``what`` and the log when the program fails."""
    result = runner(argv, **kwargs)  # type: ignore[arg-type]
    if result.timed_out:
        raise ToolError(f"{what} timed out and was stopped", log=_log(result))
    if result.returncode != 0:
        last = next((ln for ln in reversed(result.output.splitlines()) if ln.strip()), "")
        detail = f": {last.strip()}" if last and not result.log_path else ""
        raise ToolError(f"{what} failed (exit {result.returncode}){detail}", log=_log(result))
    return result


def _log(result: Completed) -> str | None:
    return str(result.log_path) if result.log_path else None
