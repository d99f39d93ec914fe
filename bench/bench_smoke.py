"""The per-region smoke stage: three regions at once against one region alone, in the same run.

Not a test: run it as root on a machine with Packer and debootstrap, from the repository root::

    .venv/bin/python bench/bench_smoke.py [--runs N]

In a private copy of the repository with its own sandbox, debian-12 gets a fourth target region
(francecentral) and is built once (replicated to all four; not timed). Then, alternating,
`invoke smoke-test` runs for one region (northeurope) and for the three regions other than the
build region; each figure is the smoke stage's own wall time as the CLI reports it between its
first and last line (VM deploy, reachability, the smoke checks, the group's deletion), and the
whole CLI call. Target: three regions take at most 1.5x one region (they run in parallel).

Before each timed call the bench waits until the sandbox's pool of RSA host keys made ahead of
time is full again (imageforge/sandbox/machines/hostkeys.py), as it is when a build reaches its
smoke stage: Packer's provisioning and the test stage take long enough to refill it. Without
the wait, each call's VMs would pay for the previous call's keys, made in the background.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from e2e_helpers import E2eSandbox, built_version  # noqa: E402
from helpers.cli import edit, rootfs_cache  # noqa: E402

from imageforge.sandbox.machines.hostkeys import SIZE  # noqa: E402

IMAGE = "debian-12"
TARGET = 1.5
waited: list[float] = []


def pool_refilled(timeout: float = 120.0) -> float:
    """Wait until the host key pool holds SIZE keys again; the seconds waited."""
    ready = rootfs_cache() / "hostkeys" / "ready"
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if ready.is_dir() and len(list(ready.iterdir())) >= SIZE:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def timed(box: E2eSandbox, *args: str) -> float:
    waited.append(pool_refilled())
    started = time.monotonic()
    result = box.invoke(*args, timeout=900)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        print(result.tail())
        raise SystemExit(f"bench_smoke: `invoke {' '.join(args)}` failed")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-smoke-") as scratch:
        box = E2eSandbox(
            Path(scratch), extra_env={"INVOKE_IMAGEFORGE_SANDBOX_REPLICATION_SECONDS": "0"}
        )
        edit(
            box.repo / "images" / f"{IMAGE}.pkrvars.hcl",
            '  { name = "swedencentral", replicas = 1, storage_account_type = "Standard_LRS" },\n',
            '  { name = "swedencentral", replicas = 1, storage_account_type = "Standard_LRS" },\n'
            '  { name = "francecentral", replicas = 1, storage_account_type = "Standard_LRS" },\n',
        )
        try:
            built = box.invoke("build", "--image", IMAGE, timeout=1800)
            if built.returncode != 0:
                print(built.tail())
                raise SystemExit("bench_smoke: the build failed")
            version = built_version(built.stdout, IMAGE)
            one, three = [], []
            for _ in range(args.runs):
                one.append(
                    timed(
                        box,
                        "smoke-test",
                        "--image",
                        IMAGE,
                        "--version",
                        version,
                        "--regions",
                        "northeurope",
                    )  # fmt: skip
                )
                three.append(timed(box, "smoke-test", "--image", IMAGE, "--version", version))
        finally:
            box.reset()
    single, triple = statistics.median(one), statistics.median(three)
    print(f"smoke stage of {IMAGE} {version}, `invoke smoke-test` wall time, median of {args.runs}")
    print(f"  one region (northeurope):                          {single:6.2f} s")
    print(f"  three (northeurope, swedencentral, francecentral): {triple:6.2f} s")
    each = "; ".join(f"{t1:.2f} / {t3:.2f}" for t1, t3 in zip(one, three, strict=True))
    print(f"  each run, one / three: {each}")
    print(f"  waited for the host key pool before the calls: {sum(waited):.1f} s in all")
    ratio = triple / single
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"  ratio: {ratio:.2f}x (target <= {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
