"""The test stage: a throw-away VM from the exact new version, the Testinfra suite against
it, and the evidence written onto the version; `invoke test-image`, `verify` and `diff`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from imageforge import inventory, reports, verify
from imageforge.azure import evidence, gallery, testvm
from imageforge.azure.clients import Session
from imageforge.azure.records import VersionInfo
from imageforge.azure.throwaway import TestVm
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError
from imageforge.junit import SuiteResult
from imageforge.kinds import OS_TYPES
from imageforge.pipeline.context import new_run_id, say, sigterm_as_interrupt
from imageforge.pipeline.sandbox import sandbox_images
from imageforge.pipeline.session import open_session
from imageforge.pipeline.timings import Timings
from imageforge.pipeline.validate import rel
from imageforge.site import Site
from imageforge.versions import Version


def test_version(
    site: Site,
    session: Session,
    image: ImageDefinition,
    info: VersionInfo,
    *,
    timings: Timings | None = None,
    region: str | None = None,
    vm_size: str | None = None,
) -> tuple[SuiteResult, VersionInfo]:
    """Deploy a VM from the exact version, run the suite, write the evidence onto the version;
    the suite's result and the version as it is afterwards."""
    timings = timings or Timings()
    version = info.name
    report_dir = reports.report_dir(site.reports_path, image.name, version)
    run_id = new_run_id()
    vm_started = time.perf_counter()
    suite_seconds = 0.0
    with testvm.deploy_test_vm(
        session,
        image,
        version,
        run_id=run_id,
        region=region,
        vm_size=vm_size,
        allowed_source=site.test_allowed_source or None,
        subnet_id=site.test_subnet_id or None,
    ) as vm:
        say(f"{image.name} {version}: test VM {vm.host}:{vm.port} in {vm.resource_group}")
        suite_started = time.perf_counter()
        result = run_suite_on(site, image, version, vm, report_dir, collect_inventory=True)
        suite_seconds = time.perf_counter() - suite_started
    timings.add("testinfra", suite_seconds)
    timings.add("test VM", time.perf_counter() - vm_started - suite_seconds)
    recorded = evidence.record_test_result(
        session,
        image,
        info,
        passed=result.passed,
        failed=result.failed,
        errors=result.errors,
        digest=result.digest or "",
        tested_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        report=rel(site, report_dir),
    )
    return result, recorded


def run_suite_on(
    site: Site,
    image: ImageDefinition,
    version: str,
    vm: TestVm,
    report_dir: Path,
    *,
    collect_inventory: bool = False,
    marker: str | None = None,
) -> SuiteResult:
    """The image's suite (or its ``marker`` checks) against a test VM, with the VM's own
    credential: its key over SSH, or its password and pinned certificate over WinRM."""
    if image.os == "linux":
        spec = f"ssh://{vm.username}@{vm.host}:{vm.port}"
        return verify.run_suite(
            spec, os=image.os, image_file=image.path, version=version,
            admin_user=vm.username, report_dir=report_dir, repo_root=site.root,
            collect_inventory=collect_inventory, marker=marker, ssh_identity=vm.ssh_key_path,
        )  # fmt: skip
    return verify.run_suite(
        f"winrm://{vm.username}@{vm.host}:{vm.port}", os=image.os, image_file=image.path,
        version=version, admin_user=vm.username, report_dir=report_dir, repo_root=site.root,
        collect_inventory=collect_inventory, marker=marker, winrm_password=vm.password,
        winrm_certificate=vm.winrm_certificate,
    )  # fmt: skip


def test_image_task(
    site: Site,
    image: ImageDefinition,
    version: str,
    *,
    target: str | None,
    region: str | None = None,
    vm_size: str | None = None,
) -> bool:
    session, info = version_on_target(site, image, version, target)
    with sigterm_as_interrupt():
        result, _ = test_version(site, session, image, info, region=region, vm_size=vm_size)
    return bool(result.ok)


def version_on_target(
    site: Site, image: ImageDefinition, version: str, target: str | None
) -> tuple[Session, VersionInfo]:
    """The session of ``--target`` and the version a task tests there (the sandbox refuses
    an image it cannot boot first)."""
    Version.parse(version, where="--version")
    target_name, _ = site.resolve_target(target)
    if target_name == "sandbox":
        sandbox_images([image], [image.name], image.os)
    session = open_session(site, target_name)
    return session, gallery.get_version(session, image, version)


def verify_task(
    site: Site,
    *,
    host: str,
    os_name: str,
    image: ImageDefinition,
    version: str,
    admin_user: str,
    ssh_identity: str | None,
) -> int:
    if os_name not in OS_TYPES:
        raise ConfigError(f"unknown --os {os_name!r}: expected linux or windows")
    if image.os != os_name:
        raise ConfigError(f"image {image.name} is a {image.os} image, not {os_name}")
    if not host:
        raise ConfigError("--host is required (e.g. ssh://azureuser@10.0.0.4)")
    if version:
        Version.parse(version, where="--version")
    report_dir = reports.report_dir(site.reports_path, image.name, version or "adhoc")
    result = verify.run_suite(
        host,
        os=os_name,
        image_file=image.path,
        version=version,
        admin_user=admin_user,
        report_dir=report_dir,
        ssh_identity=Path(ssh_identity) if ssh_identity else None,
        collect_inventory=True,
        repo_root=site.root,
    )
    say(result.summary_line(image.name, version or "-"))
    return int(result.exit_code)


def diff_task(site: Site, image: ImageDefinition, a: str, b: str) -> None:
    for label, value in (("--old", a), ("--new", b)):
        Version.parse(value, where=label)
    say(inventory.diff_versions(site.reports_path, image.name, a, b))
