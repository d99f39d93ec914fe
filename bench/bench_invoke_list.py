"""Benchmark of `invoke --list` against `invoke --version`: what loading tasks.py costs.

Not a test (it asserts nothing about time): run it from the repository root::

    .venv/bin/python bench/bench_invoke_list.py [--runs N]

`invoke --version` starts Invoke without loading any tasks; `invoke --list` also imports
tasks.py and builds the task collection. Heavy imports (Azure SDKs, Jinja2, python-hcl2) live
inside the tasks, so the two should cost about the same. The runs alternate between the two
commands (so both see the same machine load) and the figures are medians of wall time,
interpreter start-up included, as a user waits for them. Target: ratio <= 1.3x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVOKE = Path(sys.executable).parent / "invoke"


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args()
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    commands = {"--version": [str(INVOKE), "--version"], "--list": [str(INVOKE), "--list"]}
    for argv in commands.values():  # warm the page cache and .pyc files once
        wall(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            times[name].append(wall(argv))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"invoke startup benchmark: {args.runs} runs each, alternating, median wall time")
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        print(f"  invoke {name:9} median {medians[name] * 1000:6.1f} ms  "
              f"(min {min(ms):6.1f}, max {max(ms):6.1f})")  # fmt: skip
    print(f"  ratio --list / --version: {medians['--list'] / medians['--version']:.2f}x "
          "(target <= 1.3x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
