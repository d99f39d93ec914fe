"""The smoke test of each replica: before a region's rollout, a VM deployed from the version's
replica in that region runs the suite's ``smoke`` checks (boot, admin login, the image marker,
the agent), in every target region but the build region at once, each VM in its own throw-away
group. On Linux the checks of all regions run in one pytest session (each VM with its own
key), after the VMs came up at once; Windows runs one session per region. The verdicts go onto
the version (``imageforge.smoke.<region>``), where the promote gate
reads them: a region whose replica failed is named and not promoted; the others still can be.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from imageforge import process, reports, verify
from imageforge.azure import evidence, testvm
from imageforge.azure.arm import one_line
from imageforge.azure.clients import Session
from imageforge.azure.records import VersionInfo
from imageforge.azure.throwaway import REACH_TIMEOUT, TestVm
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError, ImageforgeError
from imageforge.hostspec import SharedConnections, SshHost
from imageforge.pipeline.context import new_run_id, say, sigterm_as_interrupt
from imageforge.pipeline.test import run_suite_on, version_on_target
from imageforge.site import Site

MARKER = "smoke"


def _one_region(
    site: Site, session: Session, image: ImageDefinition, version: str, region: str, prefix: str
) -> str:
    """Windows: the verdict of one region's replica, its own suite run over WinRM (never
    raises for what the replica did). Its lines carry the caller's prefix, then the region's."""
    report_dir = reports.report_dir(site.reports_path, image.name, version) / f"smoke-{region}"
    with process.prefixed(f"{prefix}[{region}] "):
        try:
            with testvm.deploy_test_vm(
                session, image, version, run_id=new_run_id(), region=region,
                allowed_source=site.test_allowed_source or None,
                subnet_id=site.test_subnet_id or None, purpose="smoke",
            ) as vm:  # fmt: skip
                say(f"{image.name} {version}: smoke VM {vm.host}:{vm.port} in {region}")
                result = run_suite_on(site, image, version, vm, report_dir, marker=MARKER)
        except ImageforgeError as err:
            verdict = f"error: {one_line(str(err), 200)}"
        else:
            verdict = evidence.smoke_verdict(
                result.passed, result.failed, result.errors, result.failures[:5]
            )
        say(f"{image.name} {version}: smoke test in {region}: {verdict}")
        return verdict


def _linux_regions(
    site: Site, session: Session, image: ImageDefinition, version: str, regions: Sequence[str]
) -> dict[str, str]:
    """Linux: a VM per region, deployed (and later deleted) by a thread each, all at once; the
    smoke checks then run on every VM that came up in one pytest session (one start-up of
    pytest and Testinfra for all regions, each VM with its own key); a verdict per region."""
    with tempfile.TemporaryDirectory(prefix="imageforge-smoke-") as tmp:
        shared = SharedConnections(Path(tmp))
        try:
            verdicts = _hold_all(site, session, image, version, regions, shared)
        finally:
            shared.close()
    result = {r: verdicts.get(r, "error: no smoke check ran") for r in regions}
    for region, verdict in result.items():
        say(f"{image.name} {version}: smoke test in {region}: {verdict}")
    return result


def _hold_all(
    site: Site,
    session: Session,
    image: ImageDefinition,
    version: str,
    regions: Sequence[str],
    shared: SharedConnections,
) -> dict[str, str]:
    """A thread per region deploys its VM, opens its shared SSH connection, says it is ready
    and holds the VM until the checks are done; meanwhile this thread runs the checks of all
    of them. The verdicts of the regions that have one."""
    prefix = process.console_prefix()
    done = threading.Event()
    ready: dict[str, Future[TestVm | None]] = {r: Future() for r in regions}
    verdicts: dict[str, str] = {}

    def hold(region: str) -> None:
        with process.prefixed(f"{prefix}[{region}] "):
            try:
                with testvm.deploy_test_vm(
                    session, image, version, run_id=new_run_id(), region=region,
                    allowed_source=site.test_allowed_source or None,
                    subnet_id=site.test_subnet_id or None, purpose="smoke", wait=False,
                ) as vm:  # fmt: skip
                    if vm.ssh_key_path is not None:  # a Linux test VM always has its key
                        shared.add(  # the OpenSSH login is the reachability check here
                            SshHost(region, vm.host, vm.port, vm.username, vm.ssh_key_path),
                            timeout=REACH_TIMEOUT.get(session.target, 900.0),
                            what=f"smoke VM {vm.host}:{vm.port} in {vm.resource_group}",
                        )
                    say(f"{image.name} {version}: smoke VM {vm.host}:{vm.port} in {region}")
                    ready[region].set_result(vm)
                    done.wait()
            except ImageforgeError as err:
                if ready[region].done():  # the VM was tested; deleting its group failed
                    say(f"{image.name} {version}: smoke VM in {region}: {one_line(str(err))}")
                    return
                verdicts[region] = f"error: {one_line(str(err), 200)}"
                ready[region].set_result(None)
            except BaseException as err:
                if not ready[region].done():
                    ready[region].set_exception(err)
                raise

    with ThreadPoolExecutor(
        max_workers=len(regions), thread_name_prefix="imageforge-smoke"
    ) as pool:
        held = [pool.submit(hold, r) for r in regions]
        try:
            up = [r for r in regions if ready[r].result() is not None]
            if up:
                verdicts.update(_run_checks(site, image, version, shared, prefix))
        finally:
            done.set()
        for future in held:
            future.result()
    return verdicts


def _run_checks(
    site: Site, image: ImageDefinition, version: str, shared: SharedConnections, prefix: str
) -> dict[str, str]:
    report_dir = reports.report_dir(site.reports_path, image.name, version) / "smoke"
    with process.prefixed(f"{prefix}[smoke] "):
        try:
            result, counts = verify.run_suite_on_hosts(
                shared, image_file=image.path, version=version, admin_user=testvm.TEST_ADMIN,
                report_dir=report_dir, marker=MARKER, repo_root=site.root,
            )  # fmt: skip
        except ImageforgeError as err:
            return dict.fromkeys((h.alias for h in shared.hosts), f"error: {one_line(str(err))}")
    verdicts = {}
    for region, c in counts.items():
        if c.total == 0:
            verdicts[region] = f"error: {result.reason or 'no smoke check ran'}"
        else:
            verdicts[region] = evidence.smoke_verdict(c.passed, c.failed, c.errors, c.failures[:5])
    return verdicts


def smoke_test(
    site: Site,
    session: Session,
    image: ImageDefinition,
    info: VersionInfo,
    regions: Sequence[str] | None = None,
) -> tuple[dict[str, str], VersionInfo]:
    """Smoke-test the replicas in ``regions`` (default: every target region but the build
    region), all at once; the verdicts, and the version with them recorded."""
    chosen = list(regions) if regions is not None else evidence.smoke_regions(image)
    if not chosen:
        return {}, info
    if image.os == "linux":
        verdicts = _linux_regions(site, session, image, info.name, chosen)
    else:
        with ThreadPoolExecutor(len(chosen), thread_name_prefix="imageforge-smoke") as pool:
            prefix = process.console_prefix()
            futures = {
                r: pool.submit(_one_region, site, session, image, info.name, r, prefix)
                for r in chosen
            }
            verdicts = {r: f.result() for r, f in futures.items()}
    return verdicts, evidence.record_smoke(session, image, info, verdicts)


def failed(verdicts: dict[str, str]) -> list[str]:
    return [r for r, v in verdicts.items() if not v.startswith("passed")]


def smoke_test_task(
    site: Site, image: ImageDefinition, version: str, *, regions: list[str], target: str | None
) -> bool:
    """`invoke smoke-test`: True when every region's replica passed."""
    allowed = evidence.smoke_regions(image)
    chosen = []
    for name in regions:
        short = image.region(name).name  # a target region of the image, or a one-line error
        if short not in allowed:
            raise ConfigError(
                f"--regions: {short} is the build region of image {image.name}; the full suite "
                f"tested the version there (smoke-tested regions: {', '.join(allowed) or 'none'})"
            )
        chosen.append(short)
    session, info = version_on_target(site, image, version, target)
    with sigterm_as_interrupt():
        verdicts, _ = smoke_test(site, session, image, info, chosen or None)
    if not verdicts:
        say(f"image {image.name} has no target region but its build region: nothing to smoke-test")
    bad = failed(verdicts)
    if bad:
        good = [r for r in verdicts if r not in bad]
        say(
            f"smoke test failed in {', '.join(bad)}"
            + (f"; promote the others with --regions {','.join(good)}" if good else "")
        )
    return not bad
