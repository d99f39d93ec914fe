"""Benchmark of a sandbox build: VM boot to SSH through ARM, capture, and where a build's time goes.

Not a test: run it as root on a machine with Packer and debootstrap, from the repository root::

    .venv/bin/python bench/bench_sandbox_build.py [--warm N] [--skip-build]

Each part starts its own sandbox (a scratch state dir, a free port, the machine's shared rootfs
cache) and resets it at the end. Prints, for the debian-12 image:

- boot to SSH through the emulator (``testvm.sandbox_build_vm``: resource group, network, VM PUT
  and its long-running operation, then a public-key SSH login): cold, the first VM of a fresh
  sandbox (its snapshot of the base image and first boot), then warm, ``--warm`` more VMs
  (min / median / max);
- capture: ``testvm.capture_version`` of the first VM after Packer provisioned it with the
  rendered debian-12 build (deallocate, generalize, copy the root filesystem, create the version);
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imageforge import pipeline, tags  # noqa: E402
from imageforge.azure import gallery, testvm  # noqa: E402
from imageforge.azure.clients import open_session  # noqa: E402
from imageforge.config import Site, load_image_file  # noqa: E402
from imageforge.packer import Packer, variables_for  # noqa: E402
from imageforge.process import SubprocessRunner  # noqa: E402
from imageforge.render import Renderer, profile_for_packer  # noqa: E402
from imageforge.sandbox import control  # noqa: E402
from imageforge.sandbox.control import SandboxSettings  # noqa: E402

INVOKE = Path(sys.executable).parent / "invoke"
TREE = (
    "tasks.py",
    "pyproject.toml",
    "images",
    "templates",
    "builders",
    "provisioners",
    "tests/image",
)
CACHE = Path(os.environ.get("IMAGEFORGE_ROOTFS_CACHE", Path.home() / ".cache/imageforge/rootfs"))
PHASE_ROW = re.compile(r"^(?P<phase>[a-z/ A-Z]+?)\s+(?P<seconds>\d+\.\d\d)(\s+[\d.]+%)?$")
PACKER_DONE = re.compile(r"finished after (?:(\d+) minutes? )?(\d+) seconds? (\d+) milliseconds?")


def free_port() -> int:
    """A free port that is not the sandbox's default 8443."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 8443:
            return port


def settings_in(state_dir: Path) -> SandboxSettings:
    return SandboxSettings(state_dir=state_dir, port=free_port(), cache_dir=CACHE)


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
                    source_commit=pipeline.source_commit(REPO),
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
                    only=pipeline.packer_only(image, "sandbox"),
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


def copy_tree(dest: Path) -> Path:
    for rel in TREE:
        src, target = REPO / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    return dest


def phase_table(output: str) -> dict[str, float]:
    """The phase-timing table `invoke build` prints: phase -> seconds (and "total")."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^phase\s+seconds\s+share$", line))
    table: dict[str, float] = {}
    for line in lines[start + 1 :]:
        match = PHASE_ROW.match(line.strip())
        if not match:
            break
        table[match["phase"].strip()] = float(match["seconds"])
    return table


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
    port = free_port()
    (work / "home").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARM_", "AZURE_", "INVOKE_", "BUILD_", "IMAGEFORGE_", "PACKER_"))
    }
    env.update(
        HOME=str(work / "home"),
        CHECKPOINT_DISABLE="1",
        INVOKE_IMAGEFORGE_SANDBOX_STATE_DIR=str(state_dir),
        INVOKE_IMAGEFORGE_SANDBOX_PORT=str(port),
        INVOKE_IMAGEFORGE_SANDBOX_CACHE_DIR=str(CACHE),
    )
    argv = [str(INVOKE), "build", "--image", "debian-12", "--skip-tests"]
    try:
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
    finally:
        subprocess.run(
            [str(INVOKE), "sandbox.reset"], cwd=repo, env=env, capture_output=True, check=False
        )
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
