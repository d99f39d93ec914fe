"""Benchmark of parallel builds: debian-12 and debian-12-hardened together against each alone.

Not a test: run it as root on a machine with Packer and debootstrap, from the repository root::

    .venv/bin/python bench/bench_parallel_builds.py [--runs N]

Each run uses one fresh sandbox (as tests/integration does) with a warm rootfs cache and
replication at pace 0, warms it with one untimed build, and times the real CLI, each build to a
promoted version:

- ``invoke build --image debian-12 --promote`` alone,
- ``invoke build --image debian-12-hardened --promote`` alone,
- ``invoke build --image debian-12 --image debian-12-hardened --promote``: both at once.

It prints the three wall times, and the together figure against the slower alone one. Target:
together at most 1.3x the slower alone. A machine with fewer cores than images builds fewer at
once (the build says so), and the figure then shows it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from e2e_helpers import E2eSandbox  # noqa: E402

IMAGES = ("debian-12", "debian-12-hardened")
TARGET = 1.3


def timed(box: E2eSandbox, *args: str) -> float:
    started = time.monotonic()
    result = box.invoke(*args, timeout=1200)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"bench_parallel_builds: {' '.join(args)} failed\n{result.tail()}")
    return seconds


def one_run() -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-parallel-") as scratch:
        box = E2eSandbox(
            Path(scratch), extra_env={"INVOKE_IMAGEFORGE_SANDBOX_REPLICATION_SECONDS": "0"}
        )
        try:
            timed(box, "sandbox.up")  # not timed below: every build finds it running
            # warm-up, not counted: a fresh sandbox's first VM pays for its host key pool
            timed(box, "build", "--image", IMAGES[0], "--skip-tests")
            alone = [timed(box, "build", "--image", name, "--promote") for name in IMAGES]
            both = ["--image", IMAGES[0], "--image", IMAGES[1]]
            together = timed(box, "build", *both, "--promote")
        finally:
            box.reset()
    return alone[0], alone[1], together


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(f"bench_parallel_builds: {os.cpu_count()} cores; each build ends promoted")
    print(f"{'run':>3}  {IMAGES[0]:>10}  {IMAGES[1]:>18}  {'together':>9}  ratio")
    for index in range(1, args.runs + 1):
        first, second, together = one_run()
        ratio = together / max(first, second)
        print(
            f"{index:>3}  {first:>9.1f}s  {second:>17.1f}s  {together:>8.1f}s  {ratio:.2f}x"
            f"  (target <= {TARGET}x the slower alone)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
