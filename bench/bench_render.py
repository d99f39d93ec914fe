"""Benchmark of rendering: every shipped image, both profiles, cold and warm.

Not a test (it asserts nothing about time): run it from the repository root::

    .venv/bin/python bench/bench_render.py [--runs N]

Prints, per profile, the median (and min/max) over N runs of:

- first run: a fresh process with empty caches (python-hcl2 loads its parser, Jinja compiles);
- cold: a fresh Python process (the content-keyed caches of imageforge.cache filled by an
  earlier render, as on any machine that rendered before) that imports imageforge.config
  and imageforge.render (and with them Jinja2 and python-hcl2), loads every
  images/*.pkrvars.hcl and renders them all into a temporary build folder, timed inside the
  process from before the first import (interpreter start-up itself is not included), with
  the share of imports, loading and rendering;
- warm: the same in this process after a first render, with one Renderer (templates compiled
  once) and the image definitions loaded again each run, as `invoke render` does per call.

The target is < 100 ms for all images (cold).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLD = """
import json, sys, tempfile, time
started = time.perf_counter()
from pathlib import Path
from imageforge.config import select_images
from imageforge.site import Site
from imageforge.render import PROFILES, Renderer
imported = time.perf_counter()
root = Path(sys.argv[1])
site = Site(root=root)
with tempfile.TemporaryDirectory() as out:
    images = select_images(site.images_path)
    loaded = time.perf_counter()
    renderer = Renderer(site)
    for image in images:
        renderer.render(image, PROFILES[sys.argv[2]], Path(out) / image.name)
    done = time.perf_counter()
print(json.dumps({
    "total": done - started,
    "imports": imported - started,
    "load": loaded - imported,
    "render": done - loaded,
    "images": len(images),
}))
"""


def cold(profile: str, cache: str | None = None) -> dict[str, float]:
    env = dict(os.environ)
    if cache is not None:
        env["IMAGEFORGE_CACHE_DIR"] = cache
    proc = subprocess.run(
        [sys.executable, "-c", COLD, str(ROOT), profile],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=env,
    )
    return json.loads(proc.stdout)


def warm(profile: str, runs: int) -> list[float]:
    from imageforge.config import select_images
    from imageforge.render import PROFILES, Renderer
    from imageforge.site import Site

    site = Site(root=ROOT)
    renderer = Renderer(site)
    times = []
    with tempfile.TemporaryDirectory() as out:
        for run in range(runs + 1):
            started = time.perf_counter()
            for image in select_images(site.images_path):
                renderer.render(image, PROFILES[profile], Path(out) / f"{run}" / image.name)
            if run:  # the first run compiles the templates
                times.append(time.perf_counter() - started)
    return times


def summary(times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"median {statistics.median(ms):7.1f} ms  (min {min(ms):6.1f}, max {max(ms):6.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per figure (default 10)")
    args = parser.parse_args()
    print(f"render benchmark: {args.runs} runs each, Python {sys.version.split()[0]}")
    for profile in ("builtin", "plugin"):
        with tempfile.TemporaryDirectory() as empty:
            first = [cold(profile, cache=f"{empty}/{run}") for run in range(args.runs)]
        cold(profile)  # fills the user's cache, as any earlier render would have
        results = [cold(profile) for _ in range(args.runs)]
        count = int(results[0]["images"])
        print(f"{profile} profile, {count} images:")
        label = "first run (empty caches, parser built)"
        print(f"  {label:42} {summary([r['total'] for r in first])}")
        for key, label in (
            ("total", "cold total (imports + load + render)"),
            ("imports", "  of which imports (jinja2, hcl2, lark)"),
            ("load", "  of which loading the image definitions"),
            ("render", "  of which rendering (templates compiled)"),
        ):
            print(f"  {label:42} {summary([r[key] for r in results])}")
        print(
            f"  {'warm (load + render, templates compiled)':42} {summary(warm(profile, args.runs))}"
        )
    print("target: < 100 ms for all images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
