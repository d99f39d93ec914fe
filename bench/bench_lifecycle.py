"""Benchmark of the gallery lifecycle: ARM requests and wall time of replicate + promote.

Not a test: run it from the repository root::

    .venv/bin/python bench/bench_lifecycle.py [--pace SECONDS] [--regions N]

Starts a sandbox emulator (inert machines, replication pace ``--pace``, default 0), creates a
gallery image definition and a tested version published in its build region (not counted),
then measures ``replication.replicate`` to N target regions (default 3) followed by
``promotion.promote``: the ARM requests the emulator counted (by method and route, with how
many were operation polls and how many read the replication status) and the wall time.
The target is fewer than 30 requests with no busy polling: with a pace above zero the request
count must stay about the same, because polls wait for Retry-After and the status reads back
off (imageforge.azure.replication.POLL_FIRST .. POLL_MAX).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from imageforge import tags  # noqa: E402
from imageforge.azure import gallery, promotion, replication  # noqa: E402
from imageforge.azure.clients import session_for_emulator  # noqa: E402
from imageforge.config import TargetRegion, load_image_file  # noqa: E402
from imageforge.sandbox.harness import running_emulator  # noqa: E402
from imageforge.site import Site  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("westeurope", "northeurope", "swedencentral", "uksouth", "francecentral", "eastus")
BUDGET = 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", type=float, default=0.0, help="replication seconds per region")
    parser.add_argument("--regions", type=int, default=3, help="target regions (1..6)")
    args = parser.parse_args()
    regions = REGIONS[: max(1, min(args.regions, len(REGIONS)))]

    image = load_image_file(ROOT / "images" / "debian-12.pkrvars.hcl", repo_root=ROOT)
    image = dataclasses.replace(
        image,
        target_regions=tuple(TargetRegion(r, 1, "Standard_LRS") for r in regions),
    )
    site = Site(root=ROOT, resource_group="rg-bench", gallery="bench", location=regions[0])
    with tempfile.TemporaryDirectory(prefix="imageforge-bench-") as state:
        with running_emulator(Path(state), replication_seconds=args.pace) as arm:
            with session_for_emulator(arm, site) as session:
                gallery.ensure_image_definition(session, image)
                session.compute.gallery_image_versions.begin_create_or_update(
                    site.resource_group, site.gallery, image.gallery_image.name, "1.0.0",
                    {
                        "location": site.location,
                        "tags": {
                            tags.IMAGE: image.name, tags.STAGE: "tested",
                            tags.TESTS_PASSED: "10", tags.TESTS_FAILED: "0",
                        },
                        "properties": {
                            "publishingProfile": {"excludeFromLatest": True},
                            "storageProfile": {"source": {"id": (
                                f"/subscriptions/{session.subscription_id}/resourceGroups/"
                                f"{site.resource_group}/providers/Microsoft.Compute/images/base"
                            )}},
                        },
                    },
                ).result()  # fmt: skip
                arm.reset_stats()
                started = time.perf_counter()
                replicated = replication.replicate(session, image, "1.0.0")
                replicate_seconds = time.perf_counter() - started
                arm_after_replicate = arm.stats()["total"]
                promoted = promotion.promote(session, image, "1.0.0", actor="bench")
                seconds = time.perf_counter() - started
                stats = arm.stats()

    log = stats["log"]
    polls = sum(1 for e in log if "/operations/" in e["route"] or "Operations/" in e["route"])
    status_reads = sum(
        1 for e in log if e["method"] == "GET" and e["route"].endswith("{galleryImageVersionName}")
    )
    routes = Counter(f"{e['method']} {_short(e['route'])}" for e in log)
    total = stats["total"]
    print(f"replicate to {len(regions)} regions + promote (replication pace {args.pace:g}s):")
    print(f"  ARM requests: {total} (replicate {arm_after_replicate}, promote "
          f"{total - arm_after_replicate}); budget < {BUDGET}: "
          f"{'ok' if total < BUDGET else 'OVER BUDGET'}")  # fmt: skip
    print(f"  operation polls: {polls}, version reads: {status_reads}, "
          f"throttled: {stats['throttled']}, failed: {stats['failed']}")  # fmt: skip
    print(f"  wall time: {seconds:.2f}s (replicate {replicate_seconds:.2f}s)")
    print(f"  regions: {', '.join(f'{r} {s}' for r, s in replicated.regions.items())}")
    print(f"  {promoted.message}")
    for route, count in routes.most_common():
        print(f"    {count:3d}  {route}")
    return 0 if total < BUDGET else 1


def _short(route: str) -> str:
    return route.replace("/subscriptions/{subscriptionId}", "").replace(
        "/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute", ""
    )


if __name__ == "__main__":
    sys.exit(main())
