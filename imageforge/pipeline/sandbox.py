"""The sandbox as the pipeline sees it: its settings (one reader of them), which images it can
build, starting it for a build, and what `invoke sandbox.status` and `sandbox.reset` print.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError, SandboxError
from imageforge.pipeline.context import say
from imageforge.sandbox import control
from imageforge.sandbox.backend import find_base_image
from imageforge.sandbox.control import ResetReport, SandboxSettings, SandboxStatus
from imageforge.site import Site


def sandbox_settings(site: Site) -> SandboxSettings:
    """SandboxSettings from the site's ``sandbox`` mapping; an unknown key is an error naming
    it (a typo must not silently run the sandbox somewhere else)."""
    values = dict(site.sandbox or {})
    known = {f.name for f in dataclasses.fields(SandboxSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError("unknown sandbox setting", key=f"imageforge.sandbox.{unknown[0]}")
    return SandboxSettings(**{k: v for k, v in values.items() if v is not None})


def sandbox_to_start(site: Site) -> SandboxSettings | None:
    """The settings of the sandbox a build has to start, or None when it is running. What would
    keep it from starting (not being root) is said here, before anything is written."""
    settings = sandbox_settings(site)
    if control.running(settings) is not None:
        return None
    control.check_can_start(settings)
    return settings


def start_sandbox(settings: SandboxSettings) -> None:
    """Start the sandbox (as `invoke sandbox.up`) and wait until it answers."""
    say(f"starting the sandbox (state in {settings.state_dir}) ...")
    info = control.up(settings)
    say(f"sandbox running at {info.url}")


def sandbox_images(
    images: list[ImageDefinition],
    names: Sequence[str],
    os_name: str,
    note: Callable[[str], None] = say,
) -> list[ImageDefinition]:
    """The images the sandbox can build. Asked for by name (or --os windows), a Windows image or
    a base the sandbox marketplace lacks is an error; picked by --os, it is skipped with a note."""
    kept = []
    for image in images:
        try:
            if image.os == "windows":
                raise SandboxError(
                    f"{image.name}: Windows cannot run in the sandbox (its VMs are Linux chroots); "
                    "build it with --target azure (the sandbox covers Windows by render and "
                    "validate)"
                )
            base = image.base_image
            try:
                find_base_image(base.publisher, base.offer, base.sku)
            except SandboxError as exc:
                raise SandboxError(f"{image.name}: {exc}") from None
        except SandboxError as exc:
            if names or (os_name == "windows" and image.os == "windows"):
                raise
            note(f"note: skipping {exc}")
            continue
        kept.append(image)
    return kept


def describe_sandbox(status: SandboxStatus) -> str:
    if not status.running:
        return f"sandbox: not running (state {status.state_dir}); start it with `invoke sandbox.up`"
    info = status.info
    assert info is not None  # running
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(status.resources.items())) or "empty"
    return (
        f"sandbox: running at {info.url} (pid {info.pid})\n"
        f"  CA certificate: {info.ca_path}\n"
        f"  state: {status.state_dir}\n"
        f"  resources: {counts}; VMs running: {status.vms}; "
        f"operations in progress: {status.operations_in_progress}"
    )


def describe_reset(report: ResetReport) -> str:
    if report.stopped_pid:
        stopped = f"stopped emulator pid {report.stopped_pid}"
    else:
        stopped = "emulator was not running"
    reaped = ", ".join(report.reaped) if report.reaped else "nothing"
    return f"sandbox reset: {stopped}; reaped {reaped}; wiped {report.wiped}"
