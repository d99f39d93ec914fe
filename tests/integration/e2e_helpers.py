"""Helpers of the end-to-end tests: a private copy of the repository with its own sandbox.

Imported as ``e2e_helpers`` (a unique name). Each test module makes one ``E2eSandbox``: a copy
of what the tasks need (tasks.py, pyproject.toml, images/, templates/, builders/, provisioners/,
tests/image/) in a temporary directory, so build/ and reports/ are written there; its own
sandbox state dir and a free port (never the default 8443); the machine's shared debootstrap
cache. The real ``invoke`` CLI runs in the copy with a clean environment (no Azure, pipeline or
INVOKE_* settings from the developer's shell). ``reset()`` stops the sandbox and wipes its state;
``leftovers()`` says what a run left: throw-away resource groups, VM processes, mounts.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.cli import INVOKE, CliResult, cli_env, copy_tree, free_port, rootfs_cache, run_invoke

from imageforge import tags
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition, load_image_file
from imageforge.pipeline.session import open_session
from imageforge.sandbox.control import SandboxSettings
from imageforge.sandbox.harness import AdminClient
from imageforge.sandbox.machines import vm as vm_module
from imageforge.site import Site

PHASE_ROW = re.compile(
    r"^(?P<phase>[a-zA-Z/ ]+?)\s+(?P<seconds>\d+\.\d\d)(?:\s+(?P<share>[\d.]+%))?$"
)


@dataclass
class Leftovers:
    """What a sandbox holds that a finished run should not have left."""

    groups: list[str] = field(default_factory=list)  # throw-away resource groups
    processes: list[int] = field(default_factory=list)  # VM processes of this state dir
    mounts: list[str] = field(default_factory=list)  # host mounts mentioning the state dir
    vms: int = 0  # VMs the emulator knows

    @property
    def empty(self) -> bool:
        return not (self.groups or self.processes or self.mounts or self.vms)


class E2eSandbox:
    """A private copy of the repository with its own sandbox (state dir, port)."""

    def __init__(self, root: Path, *, extra_env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.repo = copy_tree(root / "repo")
        self.state_dir = root / "sandbox-state"
        self.home = root / "home"
        self.home.mkdir(exist_ok=True)
        self.port = free_port()
        self.extra_env = dict(extra_env or {})

    # -- running the CLI --------------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment pointing the copy at its own sandbox and the shared cache."""
        return cli_env(self.home, self.state_dir, self.port, {**self.extra_env, **(extra or {})})

    def invoke(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
    ) -> CliResult:
        """Run the real `invoke` CLI in the copy and wait for it."""
        return run_invoke(self.repo, *args, env=self.env(env), timeout=timeout)

    def start(
        self, *args: str, log_path: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `invoke` in its own process group, output (both streams) into ``log_path``."""
        with log_path.open("wb") as log:
            return subprocess.Popen(
                [str(INVOKE), *args],
                cwd=self.repo,
                env=self.env(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def reset(self) -> CliResult:
        """`invoke sandbox.reset`: stop the emulator, reap leftovers, wipe the state dir."""
        return self.invoke("sandbox.reset", timeout=120)

    def close(self) -> None:
        """Reset the sandbox; fail when that leaves a VM process, a mount or the state dir."""
        reset = self.reset()
        assert reset.returncode == 0, reset.tail()
        left = self.leftovers()
        assert left.empty, f"`invoke sandbox.reset` left {left}"
        assert not self.state_dir.exists(), "`invoke sandbox.reset` did not wipe the state dir"

    # -- looking inside ---------------------------------------------------------------------

    def site(self) -> Site:
        return Site(
            root=self.repo,
            sandbox={
                "state_dir": str(self.state_dir),
                "port": self.port,
                "cache_dir": str(rootfs_cache()),
            },
        )

    def settings(self) -> SandboxSettings:
        return SandboxSettings(state_dir=self.state_dir, port=self.port, cache_dir=rootfs_cache())

    def session(self) -> Session:
        """An SDK session against this sandbox (it must be running)."""
        return open_session(self.site(), "sandbox")

    def image(self, name: str) -> ImageDefinition:
        return load_image_file(self.repo / "images" / f"{name}.pkrvars.hcl", repo_root=self.repo)

    def admin(self) -> AdminClient | None:
        from imageforge.sandbox import control

        info = control.running(self.settings())
        return AdminClient(info.url, info.ca_path) if info else None

    def throwaway_groups(self, purpose: str | None = None) -> list[str]:
        """Resource groups imageforge made for a build or test VM (optionally one purpose)."""
        with self.session() as session:
            found = []
            for group in session.resource.resource_groups.list():
                group_tags = group.tags or {}
                if tags.PURPOSE not in group_tags:
                    continue
                if purpose is None or group_tags[tags.PURPOSE] == purpose:
                    found.append(str(group.name))
            return sorted(found)

    def vm_processes(self) -> list[int]:
        return sorted(vm_module.marked_processes(str(self.state_dir)))

    def mounts(self) -> list[str]:
        text = Path("/proc/mounts").read_text()
        return [line for line in text.splitlines() if str(self.state_dir) in line]

    def leftovers(self) -> Leftovers:
        """Throw-away groups and VMs (when the emulator runs), VM processes and mounts."""
        found = Leftovers(processes=self.vm_processes(), mounts=self.mounts())
        admin = self.admin()
        if admin is not None:
            found.groups = self.throwaway_groups()
            found.vms = int(admin.call("GET", "/_sandbox/status").get("vms", 0))
        return found

    def settled_leftovers(self, timeout: float) -> Leftovers:
        """The leftovers once there are none, or what is still there after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.leftovers()
            if found.empty or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def version_tags(self, image: str, version: str) -> dict[str, str]:
        from imageforge.azure import gallery

        with self.session() as session:
            return dict(gallery.get_version(session, self.image(image), version).tags)

    def add_faults(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        admin = self.admin()
        assert admin is not None, "the sandbox is not running"
        return list(admin.call("POST", "/_sandbox/faults", {"rules": rules})["rules"])

    def faults(self) -> list[dict[str, Any]]:
        admin = self.admin()
        assert admin is not None, "the sandbox is not running"
        return list(admin.call("GET", "/_sandbox/faults")["rules"])

    def clear_faults(self) -> None:
        admin = self.admin()
        if admin is not None:
            admin.call("DELETE", "/_sandbox/faults")


@contextlib.contextmanager
def module_sandbox(root: Path, **kwargs: Any) -> Iterator[E2eSandbox]:
    """An E2eSandbox that is reset (and checked empty) when the block ends, however it ends."""
    sandbox = E2eSandbox(root, **kwargs)
    try:
        yield sandbox
    finally:
        sandbox.close()


# -- build output ----------------------------------------------------------------------------


_IMAGE_PREFIX = re.compile(r"^\[(?P<image>[A-Za-z0-9._-]+)\] ")


def of_image(output: str, image: str) -> str:
    """What a parallel build printed for ``image`` (its "[image] " lines, without the prefix)
    and the lines no image owns (the summary, the versions tables)."""
    kept = []
    for line in output.splitlines():
        match = _IMAGE_PREFIX.match(line)
        if match is None:
            kept.append(line)
        elif match["image"] == image:
            kept.append(line[match.end() :])
    return "\n".join(kept) + "\n"


def built_version(output: str, image: str) -> str:
    """The version a build reserved ("<image>: building version X.Y.Z on ...")."""
    match = re.search(rf"^{re.escape(image)}: building version (\d+\.\d+\.\d+) ", output, re.M)
    assert match, f"no 'building version' line for {image} in the output"
    return match.group(1)


def phase_table(output: str) -> dict[str, float]:
    """The phase-timing table a build prints: phase -> seconds (with "total")."""
    lines = output.splitlines()
    try:
        start = next(
            i for i, line in enumerate(lines) if re.match(r"^phase\s+seconds\s+share$", line)
        )
    except StopIteration:
        raise AssertionError("no phase-timing table in the output") from None
    table: dict[str, float] = {}
    for line in lines[start + 1 :]:
        match = PHASE_ROW.match(line.strip())
        if not match:
            break
        table[match.group("phase").strip()] = float(match.group("seconds"))
    return table


# -- JUnit -----------------------------------------------------------------------------------


def _plain_name(name: str) -> str:
    """A Testinfra test name without its host id: test_x[ssh://h-foo] -> test_x[foo]."""
    match = re.fullmatch(r"(?P<func>[^\[]+)\[(?P<params>.*)\]", name)
    if not match:
        return name
    params = re.sub(r"(?:^|-)?(?:ssh|paramiko|local|winrm)://[^-\]]*(?:-|$)", "-", match["params"])
    params = params.strip("-")
    return f"{match['func']}[{params}]" if params else match["func"]


def junit_outcomes(path: Path) -> dict[str, str]:
    """test name (host id removed) -> passed | failed | error | skipped, from a JUnit file."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        if case.find("error") is not None:
            outcome = "error"
        elif case.find("failure") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        outcomes[_plain_name(case.get("name", "?"))] = outcome
    return outcomes


def not_passed(outcomes: Mapping[str, str]) -> dict[str, str]:
    return {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}


# -- processes -------------------------------------------------------------------------------


def kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group of ``proc`` (as Ctrl-C or a CI agent's kill would)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


# -- `invoke versions` -----------------------------------------------------------------------

VERSION_COLUMNS = ("version", "stage", "tests", "regions", "latest", "published", "end of life")


def versions_rows(output: str) -> dict[str, dict[str, Any]]:
    """The rows of the versions table in ``output``: version -> column -> text, with
    ``regions`` as region -> replication state."""
    lines = output.splitlines()
    try:
        at = next(
            i
            for i, line in enumerate(lines)
            if re.match(r"^\s*version\s+stage\s+tests\s+regions\s+latest\s+published", line)
        )
    except StopIteration:
        raise AssertionError("no versions table in the output") from None
    header = lines[at]
    starts = [header.index(name) for name in VERSION_COLUMNS]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    rows: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in lines[at + 2 :]:  # skip the rule under the header
        if not line.strip():
            break
        cells = {
            name: line[a:b].strip() for name, (a, b) in zip(VERSION_COLUMNS, bounds, strict=True)
        }
        if cells["version"]:
            current = {**cells, "regions": {}}
            rows[cells["version"]] = current
        elif current is None:
            break
        if cells["regions"]:
            region, _, state = cells["regions"].partition(" ")
            current["regions"][region] = state.strip()
    return rows
