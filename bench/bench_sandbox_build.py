"""Benchmark of a sandbox build: VM boot to SSH through ARM, capture, and where a build's time goes.

Not a test: run it as root on a machine with Packer and debootstrap, from the repository root::

    .venv/bin/python bench/bench_sandbox_build.py [--warm N] [--skip-build]

Each part starts its own sandbox (a scratch state dir, a free port, the machine's shared rootfs
cache) and resets it at the end. Prints, for the debian-12 image:

- boot to SSH through the emulator (``testvm.sandbox_build_vm``: resource group, network, VM PUT
  and its long-running operation, then a public-key SSH login): cold, the first VM of a fresh
  sandbox (its first boot, with the RSA host key pool possibly still filling), then warm,
  ``--warm`` more VMs (min / median / max);
- capture: ``testvm.capture_version`` of the first VM after Packer provisioned it with the
  rendered debian-12 build (deallocate, generalize, capture the VM's layer, create the version);
- a whole `invoke build --image debian-12 --skip-tests` (sandbox start included): its wall time,
  its phase-timing table, Packer's own build time from packer.log, and the share of the wall
  time spent outside Packer (everything but the table's ``packer`` phase). The table does not
  time the build VM's boot or the version reservation; the gap between the table's total and
  the wall time shows them (with process start-up and the sandbox start).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from e2e_helpers import phase_table  # noqa: E402
from helpers.cli import cli_env, copy_tree, free_port, rootfs_cache, run_invoke  # noqa: E402

from imageforge import tags  # noqa: E402
from imageforge.azure import gallery, testvm  # noqa: E402
from imageforge.config import load_image_file  # noqa: E402
from imageforge.packer import Packer, variables_for  # noqa: E402
from imageforge.pipeline.context import source_commit  # noqa: E402
from imageforge.pipeline.hosts import packer_only  # noqa: E402
from imageforge.pipeline.session import open_session  # noqa: E402
from imageforge.process import SubprocessRunner  # noqa: E402
from imageforge.render import Renderer, profile_for_packer  # noqa: E402
from imageforge.sandbox import control  # noqa: E402
from imageforge.sandbox.control import SandboxSettings  # noqa: E402
from imageforge.site import Site  # noqa: E402

PACKER_DONE = re.compile(r"finished after (?:(\d+) minutes? )?(\d+) seconds? (\d+) milliseconds?")


def settings_in(state_dir: Path) -> SandboxSettings:
    return SandboxSettings(state_dir=state_dir, port=free_port(), cache_dir=rootfs_cache())


def site_for(settings: SandboxSettings, work: Path) -> Site:
    return Site(
        root=REPO,
        build_dir=str(work / "build"),
        reports_dir=str(work / "reports"),
        sandbox={
            "state_dir": str(settings.state_dir),
            "port": settings.port,
            "cache_dir": str(settings.cache_dir),
        },
    )


def boots_and_capture(work: Path, warm: int) -> None:
    """Cold and warm boot to SSH through the emulator, and the capture of a provisioned VM."""
    settings = settings_in(work / "sandbox")
    image = load_image_file(REPO / "images" / "debian-12.pkrvars.hcl", repo_root=REPO)
    try:
        started = time.monotonic()
        control.up(settings)
        print(f"sandbox start (emulator, CA): {time.monotonic() - started:.2f} s")
        site = site_for(settings, work)
        with open_session(site, "sandbox") as session:
            gallery.ensure_gallery(session)
            gallery.ensure_image_definition(session, image)
            # Packer's output goes to packer.log only
            packer = Packer(
                binary=site.packer, cwd=REPO, runner=SubprocessRunner(console=io.StringIO())
            )
            out_dir = site.build_path / image.name
            Renderer(site).render(image, profile_for_packer(packer.version()), out_dir)
            started = time.monotonic()
            with testvm.sandbox_build_vm(session, image, run_id="bench-cold") as vm:
                cold = time.monotonic() - started
                print(f"cold boot to SSH (first VM of a fresh sandbox): {cold:.2f} s")
                variables = variables_for(
                    version="1.0.0",
                    source_commit=source_commit(REPO),
                    pipeline_run="bench",
                    use_azure_cli_auth=True,
                    extra={
                        "sandbox_host": vm.host,
                        "sandbox_port": str(vm.port),
                        "sandbox_username": vm.username,
                        "sandbox_private_key_file": str(vm.ssh_key_path),
                    },
                )
                started = time.monotonic()
                packer.build(
                    out_dir,
                    variables,
                    only=packer_only(image, "sandbox"),
                    manifest=out_dir / "manifest.json",
                    log_path=out_dir / "packer.log",
                    timeout=1800,
                )
                print(f"packer build (all provisioners): {time.monotonic() - started:.2f} s")
                started = time.monotonic()
                testvm.capture_version(session, image, "1.0.0", vm, tags={tags.STAGE: "built"})
                print(f"capture of the debian-12 build VM: {time.monotonic() - started:.2f} s")
            warm_times = []
            for n in range(warm):
                started = time.monotonic()
                with testvm.sandbox_build_vm(session, image, run_id=f"bench-warm-{n}"):
                    warm_times.append(time.monotonic() - started)
            if warm_times:
                print(
                    f"warm boot to SSH ({len(warm_times)} VMs): min {min(warm_times):.2f} s, "
                    f"median {statistics.median(warm_times):.2f} s, max {max(warm_times):.2f} s"
                )
    finally:
        control.reset(settings)


def packer_seconds(log: str) -> float | None:
    """Packer's own "Build '...' finished after ..." time."""
    match = PACKER_DONE.search(log)
    if not match:
        return None
    minutes, seconds, millis = (int(g or 0) for g in match.groups())
    return minutes * 60 + seconds + millis / 1000


def whole_build(work: Path) -> None:
    """`invoke build --image debian-12 --skip-tests` in a copy of the repository."""
    repo = copy_tree(work / "repo")
    state_dir = work / "sandbox"
    (work / "home").mkdir()
    env = cli_env(work / "home", state_dir, free_port())
    try:
        proc = run_invoke(
            repo, "build", "--image", "debian-12", "--skip-tests", env=env, timeout=None
        )
        wall = proc.seconds
    finally:
        run_invoke(repo, "sandbox.reset", env=env, timeout=None)
    if proc.returncode != 0:
        print(f"invoke build failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}")
        return
    table = phase_table(proc.stdout)
    total = table.pop("total")
    print(f"invoke build --image debian-12 --skip-tests: {wall:.2f} s wall")
    for phase, seconds in table.items():
        print(f"  {phase:<16} {seconds:7.2f} s  {seconds / wall:6.1%} of wall")
    print(
        f"  {'(not in table)':<16} {wall - total:7.2f} s  {(wall - total) / wall:6.1%} of wall"
        "  sandbox start, build VM boot, version reservation, process start-up"
    )
    own = packer_seconds((repo / "build" / "debian-12" / "packer.log").read_text())
    if own is not None:
        print(f"  Packer's own build time (packer.log): {own:.2f} s")
    outside = wall - table.get("packer", 0.0)
    print(
        f"share outside Packer's provisioning: {outside / wall:.1%} of the wall time "
        f"({outside:.2f} s); of the table's total: {(total - table.get('packer', 0.0)) / total:.1%}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="warm boots to time (default 3)")
    parser.add_argument("--skip-build", action="store_true", help="skip the whole invoke build")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_sandbox_build.py: the sandbox needs root", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-build-") as scratch:
        work = Path(scratch)
        (work / "boots").mkdir()
        boots_and_capture(work / "boots", args.warm)
        if not args.skip_build:
            (work / "build").mkdir()
            whole_build(work / "build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
