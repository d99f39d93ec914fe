"""Benchmark of the whole pipeline: `invoke build --image debian-12 --promote` on a fresh sandbox,
wall time by phase, and the wrapper's own share (one image: bench_parallel_builds.py times two).

Not a test: run it as root on a machine with Packer and debootstrap, from the repository root::

    .venv/bin/python bench/bench_e2e.py [--runs N] [--replication-seconds S]

Each run copies what the tasks need into a temporary directory (as tests/integration does,
through tests/integration/e2e_helpers.py), starts from an empty sandbox state dir on a free
port, and runs the real CLI there; the rootfs cache is warmed first (not timed), so debootstrap
costs nothing. Output lines are time-stamped as they arrive, which places what the build's own
phase-timing table does not cover (CLI start-up, sandbox start, the versions table at the end;
"other" is the rest). The sandbox is reset after each run.

Figures (seconds and share of the wall time):

- the build's phase-timing table (render, validate, packer, capture/publish, test VM,
  testinfra, replicate, promote) and, from the time stamps, what lies outside it;
- external work: Packer provisioning (the `packer` phase: the Packer process), Testinfra (the
  `testinfra` phase: the suite's pytest process and the inventory), debootstrap (0: warm);
- the wrapper's own share: everything else (rendering, validation, ARM calls, the sandbox's
  VMs, capture, replication, promotion, start-up). Target: under 10 % of the wall time. It is
  split into the phases that are mostly ARM and machine work (build VM, capture/publish, test
  VM, replicate) and the rest, which is imageforge's own Python and start-up.

``--replication-seconds`` is the sandbox's simulated replication pace per region (default 0:
the figure is the wrapper's, not a simulated wait; the sandbox's own default is 2).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from e2e_helpers import E2eSandbox, phase_table  # noqa: E402
from helpers.cli import INVOKE, rootfs_cache  # noqa: E402

from imageforge.pipeline.timings import PHASES  # noqa: E402

IMAGE = "debian-12"
EXTERNAL = ("packer", "testinfra")
#: Phases whose time is mostly ARM and machine work (VM boots, captures, copies into region
#: stores): the sandbox's on the sandbox, Azure's on the real target.
MACHINERY = ("build VM", "capture/publish", "test VM", "replicate")
TARGET_SHARE = 0.10


@dataclass
class Run:
    wall: float
    returncode: int
    phases: dict[str, float]
    outside: dict[str, float] = field(default_factory=dict)
    packer_build: float | None = None  # Packer's own "finished after"
    pytest_session: float | None = None  # pytest's own "N passed in X s"
    version: str = ""
    arm: dict[str, float] = field(default_factory=dict)  # the emulator's request counters
    slowest: list[tuple[str, float]] = field(default_factory=list)  # ARM routes by time

    @property
    def external(self) -> float:
        return sum(self.phases.get(name, 0.0) for name in EXTERNAL)

    @property
    def wrapper(self) -> float:
        return self.wall - self.external


def warm_cache() -> float:
    """Make sure the base root filesystem is cached; seconds it took (0 when it was)."""
    from imageforge.sandbox.backend import MARKETPLACE
    from imageforge.sandbox.machines.chroot import ChrootBackend

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-warm-") as state:
        ChrootBackend(Path(state), rootfs_cache()).base_image_dir(MARKETPLACE[0])
    return time.monotonic() - started


def stamped_run(box: E2eSandbox, *args: str) -> tuple[int, float, list[tuple[float, str]]]:
    """Run `invoke ARGS` in the copy; (exit code, wall seconds, [(seconds since start, line)])."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(INVOKE), *args],
        cwd=box.repo,
        env=box.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    lines = []
    with proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
        returncode = proc.wait()
    return returncode, time.monotonic() - started, lines


def first(lines: list[tuple[float, str]], pattern: str, after: float = 0.0) -> float | None:
    regex = re.compile(pattern)
    return next((t for t, line in lines if t >= after and regex.search(line)), None)


def span(start: float | None, end: float | None) -> float:
    return max(0.0, end - start) if start is not None and end is not None else 0.0


def one_run(replication_seconds: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-e2e-") as scratch:
        box = E2eSandbox(
            Path(scratch),
            extra_env={"INVOKE_IMAGEFORGE_SANDBOX_REPLICATION_SECONDS": str(replication_seconds)},
        )
        stats: dict = {}
        try:
            code, wall, lines = stamped_run(box, "build", "--image", IMAGE, "--promote")
            admin = box.admin()
            stats = admin.call("GET", "/_sandbox/stats") if admin else {}
        finally:
            box.reset()
        text = "\n".join(line for _, line in lines)
        if code != 0:
            print(text[-4000:])
            raise SystemExit(f"bench_e2e: the build failed (exit {code})")
        run = Run(wall=wall, returncode=code, phases=phase_table(text))
        log = stats.get("log", [])
        run.arm = {
            "requests": int(stats.get("total", 0)),
            "operation polls": sum(
                1 for e in log if re.search(r"operations/|operationresults/", e["path"], re.I)
            ),
            "seconds inside the emulator": sum(e["ms"] for e in log) / 1000,
        }
        by_route: dict[str, float] = {}
        for entry in log:
            route = f"{entry['method']} {entry['route'].rsplit('/providers/', 1)[-1]}"
            by_route[route] = by_route.get(route, 0.0) + entry["ms"] / 1000
        run.slowest = sorted(by_route.items(), key=lambda item: -item[1])[:5]
        match = re.search(rf"^{IMAGE}: building version (\S+) ", text, re.M)
        run.version = match.group(1) if match else "?"
        # what the phase table does not cover, placed by the time stamps
        target = first(lines, r"^target: ")
        sandbox_from = first(lines, r"^starting the sandbox")
        sandbox_to = first(lines, r"^sandbox running at")
        table_end = first(lines, r"^total\s+\d")
        run.outside = {
            "CLI start-up": target or 0.0,
            "sandbox start": span(sandbox_from, sandbox_to),
            "versions table, exit": span(table_end, wall),
        }
        accounted = run.phases.get("total", 0.0) + sum(run.outside.values())
        run.outside["other"] = max(0.0, wall - accounted)
        match = re.search(r"finished after ([\d.]+ \w+(?: [\d.]+ \w+)*)", text)
        if match:
            run.packer_build = _packer_duration(match.group(1))
        match = re.search(r"=+ \d+ passed in ([\d.]+)s", text)
        if match:
            run.pytest_session = float(match.group(1))
        return run


def _packer_duration(text: str) -> float:
    units = {"minutes": 60.0, "minute": 60.0, "seconds": 1.0, "second": 1.0,
             "milliseconds": 1e-3, "millisecond": 1e-3, "microseconds": 1e-6,
             "microsecond": 1e-6}  # fmt: skip
    parts = re.findall(r"([\d.]+) (\w+)", text)
    return sum(float(n) * units.get(unit, 0.0) for n, unit in parts)


def report(run: Run, label: str) -> None:
    wall = run.wall
    print(f"\n{label}: wall {wall:.2f} s, exit {run.returncode}, {IMAGE} {run.version}")
    print(f"  {'part':<24}{'seconds':>9}{'share':>8}  kind")
    rows: list[tuple[str, float, str]] = [("CLI start-up", run.outside["CLI start-up"], "outside")]
    for name in PHASES:  # the sandbox starts after validation, before the first ARM call
        kind = "external" if name in EXTERNAL else "wrapper"
        rows.append((name, run.phases.get(name, 0.0), kind))
        if name == "validate":
            rows.append(("sandbox start", run.outside["sandbox start"], "outside"))
    rows.append(("versions table, exit", run.outside["versions table, exit"], "outside"))
    rows.append(("other", run.outside["other"], "outside"))
    for name, seconds, kind in rows:
        print(f"  {name:<24}{seconds:9.2f}{seconds / wall:8.1%}  {kind}")
    print(f"  {'wall':<24}{wall:9.2f}")
    if run.packer_build is not None:
        print(f"  (Packer's own build time {run.packer_build:.2f} s of the packer phase)")
    if run.pytest_session is not None:
        print(f"  (pytest's own session {run.pytest_session:.2f} s of the testinfra phase)")
    if run.arm:
        print(
            f"  ARM: {run.arm['requests']:.0f} requests ({run.arm['operation polls']:.0f} "
            f"operation polls), {run.arm['seconds inside the emulator']:.2f} s inside the "
            "emulator (VM boots, captures, copies happen there or in its background work)"
        )
        for route, seconds in run.slowest:
            print(f"    {seconds:6.2f} s  {route}")
    share = run.wrapper / wall
    verdict = "within" if share < TARGET_SHARE else "above"
    print(
        f"  external (Packer {run.phases.get('packer', 0):.2f} s, Testinfra "
        f"{run.phases.get('testinfra', 0):.2f} s, debootstrap 0 s): {run.external:.2f} s "
        f"({run.external / wall:.1%})"
    )
    print(
        f"  wrapper's own share: {run.wrapper:.2f} s = {share:.1%} of the wall time "
        f"({verdict} the {TARGET_SHARE:.0%} target)"
    )
    machinery = sum(run.phases.get(name, 0.0) for name in MACHINERY)
    rest = run.wrapper - machinery
    print(
        f"    of which VMs, capture and replication ({', '.join(MACHINERY)}): "
        f"{machinery:.2f} s ({machinery / wall:.1%}); the rest (rendering, validation, "
        f"reservation, promotion, start-up, output): {rest:.2f} s ({rest / wall:.1%})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="builds to time (default 1)")
    parser.add_argument(
        "--replication-seconds",
        type=float,
        default=0.0,
        help="sandbox replication pace per region (default 0; the sandbox's default is 2)",
    )
    args = parser.parse_args()
    warm = warm_cache()
    cache = f"warmed in {warm:.1f} s, not timed" if warm > 5 else "warm"
    print(
        f"bench_e2e: invoke build --image {IMAGE} --promote on a fresh sandbox; rootfs cache "
        f"{rootfs_cache()} ({cache}); replication pace {args.replication_seconds:g} s/region"
    )
    runs = []
    for index in range(max(1, args.runs)):
        run = one_run(args.replication_seconds)
        runs.append(run)
        report(run, f"run {index + 1}")
    if len(runs) > 1:
        walls = [r.wall for r in runs]
        shares = [r.wrapper / r.wall for r in runs]
        print(
            f"\nmedian of {len(runs)} runs: wall {statistics.median(walls):.2f} s, wrapper's "
            f"share {statistics.median(shares):.1%} (min {min(shares):.1%}, max {max(shares):.1%})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
