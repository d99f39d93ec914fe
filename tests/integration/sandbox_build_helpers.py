"""Helpers of the sandbox build tests (test_sandbox_build.py, test_sandbox_bad_input.py).

Imported as ``sandbox_build_helpers`` (a unique name). Every sandbox these tests start has its
own state dir under the test's tmp dir and a free port (never the default 8443); all of them
share the machine's debootstrap cache. ``STATE_DIRS`` records each state dir so the session
can check at its end that none of them left a process or a mount behind.

The real ``invoke`` CLI runs in a private copy of the repository with a clean environment
(``helpers.cli``: ``copy_tree``, ``cli_env``, ``run_invoke``); ``as_user`` runs it as another
user (``nobody``) for the not-root checks.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import pytest
from helpers.cli import REPO, CliResult, free_port, rootfs_cache

from imageforge.azure.testvm import TestVm
from imageforge.config import ImageDefinition, load_image_file
from imageforge.sandbox import control
from imageforge.sandbox.control import SandboxSettings
from imageforge.sandbox.machines import vm as vm_module
from imageforge.site import Site

NOBODY = 65534
#: Every sandbox state dir these tests used (checked for leftovers when the session ends).
STATE_DIRS: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def nothing_of_the_sandboxes_left_after_the_session() -> Iterator[None]:
    """When the session ends, no sandbox these tests started has a VM process, an emulator or a
    host mount left (import it into a test module to make it apply there)."""
    yield
    left = {str(d): found for d in dict.fromkeys(STATE_DIRS) if (found := leftovers(d))}
    assert left == {}, f"sandboxes left processes or mounts after the session: {left}"


# -- the CLI ---------------------------------------------------------------------------------


def assert_one_line_error(result: CliResult, *fragments: str) -> str:
    """Non-zero exit, no traceback, exactly one line on stderr starting with ``error: ``,
    containing every fragment; returns that line."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.output, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result
    for fragment in fragments:
        assert fragment in lines[0], result
    return lines[0]


def _blocked_ancestors(path: Path, uid: int) -> list[Path]:
    """Directories on the way to ``path`` that user ``uid`` (no groups) cannot traverse."""
    blocked = []
    for directory in [*reversed(path.parents)]:
        info = directory.stat()
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            blocked.append(directory)
    return blocked


@contextmanager
def as_user(uid: int, *needed: Path) -> Iterator[list[str]]:
    """An argv prefix that runs a command as ``uid`` (no groups), with every path in ``needed``
    reachable for it.

    A directory on the way to a needed path that the user may not traverse (the interpreter
    of a pyenv under /root, a pytest tmp dir) is shown to the command only, in a private mount
    namespace that dies with it: a world-traversable directory (in a scratch dir under /tmp,
    removed on exit) is bind-mounted over it, holding just the entries on the way,
    bind-mounted from the original. Nothing is mounted on the host.
    """
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    steps: dict[Path, set[str]] = {}
    for path in needed:
        real = path.resolve()
        for directory in _blocked_ancestors(real, uid):
            steps.setdefault(directory, set()).add(real.relative_to(directory).parts[0])
    if not steps:
        yield setpriv
        return
    scratch = Path(tempfile.mkdtemp(prefix="imageforge-views-", dir="/tmp"))
    try:
        script = ["set -e"]
        # deepest first: a view carries the views already mounted below it (--rbind)
        for n, directory in enumerate(sorted(steps, key=lambda d: len(d.parts), reverse=True)):
            view = scratch / f"view-{n}"
            view.mkdir()
            view.chmod(0o755)
            for entry in sorted(steps[directory]):
                source = directory / entry
                (view / entry).mkdir() if source.is_dir() else (view / entry).touch()
                script.append(
                    f"mount --rbind {shlex.quote(str(source))} {shlex.quote(str(view / entry))}"
                )
            script.append(f"mount --rbind {shlex.quote(str(view))} {shlex.quote(str(directory))}")
        script.append(f'exec {shlex.join(setpriv)} "$@"')
        yield [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "\n".join(script),
            "sh",
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- a sandbox of one's own ------------------------------------------------------------------


def emulator_pids(state_dir: Path) -> list[int]:
    """Live emulator processes serving ``state_dir``."""
    wanted = str(state_dir)
    found = []
    for pid in _pids():
        argv = _cmdline(pid)
        if "imageforge.sandbox.emulator" not in argv or "--state-dir" not in argv:
            continue
        given = argv[argv.index("--state-dir") + 1 :][:1]
        if given and os.path.abspath(given[0]) == os.path.abspath(wanted):
            found.append(pid)
    return found


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (a path of one test, say)."""
    return [pid for pid in _pids() if any(text in arg for arg in _cmdline(pid))]


def _pids() -> list[int]:
    own = os.getpid()
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != own:
            try:
                status = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if status.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                pids.append(int(name))
    return pids


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


@dataclass
class Leftovers:
    """What is left of a sandbox: VM processes, emulator processes, host mounts."""

    vm_processes: dict[int, str] = field(default_factory=dict)
    emulators: list[int] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.vm_processes or self.emulators or self.mounts)


def leftovers(state_dir: Path) -> Leftovers:
    """VM processes (their marker names a VM under ``state_dir``), emulators serving it, and
    host mounts that mention it."""
    mounts = [
        line for line in Path("/proc/mounts").read_text().splitlines() if str(state_dir) in line
    ]
    return Leftovers(vm_module.marked_processes(str(state_dir)), emulator_pids(state_dir), mounts)


def settings_for(
    state_dir: Path,
    *,
    port: int | None = None,
    backend: str = "chroot",
    replication_seconds: float = 0.5,
) -> SandboxSettings:
    return SandboxSettings(
        state_dir=state_dir,
        port=port or free_port(),
        backend=backend,
        replication_seconds=replication_seconds,
        cache_dir=rootfs_cache(),
    )


@contextmanager
def own_sandbox(state_dir: Path, **options: Any) -> Iterator[SandboxSettings]:
    """A sandbox started like `invoke sandbox.up` in ``state_dir`` on a free port, reset like
    `invoke sandbox.reset` at the end; on a clean exit nothing of it may be left."""
    settings = settings_for(state_dir, **options)
    STATE_DIRS.append(settings.state_dir)
    try:
        control.up(settings)
        yield settings
    finally:
        control.reset(settings)
    left = leftovers(settings.state_dir)
    assert not left, f"the sandbox in {state_dir} left {left}"


def site_for(settings: SandboxSettings, work: Path, **overrides: Any) -> Site:
    """Site settings of the repository, with build/ and reports/ in ``work``, on ``settings``'
    sandbox."""
    values: dict[str, Any] = {
        "root": REPO,
        "build_dir": str(work / "build"),
        "reports_dir": str(work / "reports"),
        "tags": {"owner": "imageforge-integration-tests"},
        "sandbox": {
            "state_dir": str(settings.state_dir),
            "host": settings.host,
            "port": settings.port,
            "backend": settings.backend,
            "replication_seconds": settings.replication_seconds,
            "lro_seconds": settings.lro_seconds,
            "cache_dir": str(settings.cache_dir),
        },
    }
    values.update(overrides)
    return Site(**values)


_TARGET_REGIONS = re.compile(r"^target_regions = \[\n.*?^\]\n", re.M | re.S)


def image_with_regions(work: Path, name: str, regions: Sequence[str]) -> ImageDefinition:
    """A copy of images/<name>.pkrvars.hcl in ``work`` whose target regions are ``regions``
    (one replica each), loaded with the repository as its root (provisioners, suite)."""
    text = (REPO / "images" / f"{name}.pkrvars.hcl").read_text(encoding="utf-8")
    rows = "".join(
        f'  {{ name = "{r}", replicas = 1, storage_account_type = "Standard_LRS" }},\n'
        for r in regions
    )
    edited, count = _TARGET_REGIONS.subn(f"target_regions = [\n{rows}]\n", text)
    assert count == 1, f"no target_regions block in images/{name}.pkrvars.hcl"
    path = work / "images" / f"{name}.pkrvars.hcl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(edited, encoding="utf-8")
    return load_image_file(path, repo_root=REPO)


# -- inside a VM -----------------------------------------------------------------------------


def ssh_run(vm: TestVm, command: str, *, timeout: float = 60) -> tuple[int, str]:
    """Run ``command`` on ``vm`` over SSH as its admin user with the VM's own key."""
    assert vm.ssh_key_path is not None
    key = paramiko.Ed25519Key.from_private_key_file(str(vm.ssh_key_path))
    with paramiko.SSHClient() as client:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            vm.host,
            port=vm.port,
            username=vm.username,
            pkey=key,
            allow_agent=False,
            look_for_keys=False,
            timeout=15,
        )
        _, stdout, _ = client.exec_command(command, timeout=timeout)
        out = stdout.read().decode()
        return stdout.channel.recv_exit_status(), out


def key_values(text: str) -> dict[str, str]:
    """KEY=VALUE lines (the image marker) as a mapping."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
