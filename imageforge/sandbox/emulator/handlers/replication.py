"""The background work of a gallery image version: capture, replicate, remove copies.

One worker runs per version operation (create, or an update that adds/removes regions). It
captures the source VM into the source region's store (``<state>/blobs/<region>/<blob>/``),
then replicates into each pending target region in turn through ``backend.replicate``. Every
region takes at least ``replication_seconds``: state ``Replicating`` with a growing progress
(details ``Queued`` while it waits its turn), then ``Completed`` (or ``Failed`` with details).
The version's provisioningState becomes Succeeded when every region completed, Failed when
one failed. After a restart, unfinished workers are resumed from the state file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imageforge.errors import SandboxError
from imageforge.sandbox.emulator import regions
from imageforge.sandbox.emulator.armerrors import ArmError
from imageforge.sandbox.emulator.context import Emulator
from imageforge.sandbox.emulator.handlers import common
from imageforge.sandbox.emulator.lro import IN_PROGRESS, Abandoned
from imageforge.sandbox.emulator.store import Resource

VERSION_TYPE = "Microsoft.Compute/galleries/images/versions"
QUEUED = {"state": "Replicating", "progress": 0, "details": "Queued"}
_TICK = 0.2


class _Gone(Exception):
    """The version was deleted while its worker ran."""


def pending_region() -> dict[str, Any]:
    return dict(QUEUED)


def status(res: Resource) -> dict[str, Any]:
    """The version's replicationStatus, in target region order."""
    internal = res.internal.get("regions", {})
    summary = []
    for target in res.properties.get("publishingProfile", {}).get("targetRegions", []):
        short = regions.normalize(target["name"])
        entry = internal.get(short, {"state": "Unknown", "progress": 0, "details": ""})
        summary.append(
            {
                "region": regions.display_name(short),
                "state": entry["state"],
                "details": entry.get("details", ""),
                "progress": entry.get("progress", 0),
            }
        )
    states = {item["state"] for item in summary}
    if "Failed" in states:
        aggregated = "Failed"
    elif states <= {"Completed"}:
        aggregated = "Completed"
    else:
        aggregated = "InProgress"
    return {"aggregatedState": aggregated, "summary": summary}


def worker(em: Emulator, version_id: str) -> Callable[[str], None]:
    def work(op_id: str) -> None:
        try:
            _run(em, version_id, op_id)
        except _Gone:
            return

    return work


def on_failure(em: Emulator, version_id: str) -> Callable[[dict[str, Any]], None]:
    """Failed operation: the version is Failed, unfinished regions say why."""

    def handle(error: dict[str, Any]) -> None:
        with em.store.lock:
            res = em.store.get(version_id)
            if res is None:
                return
            res.properties["provisioningState"] = "Failed"
            for entry in res.internal.get("regions", {}).values():
                if entry["state"] not in ("Completed", "Failed"):
                    entry.update(state="Failed", details=error.get("message", ""))
            em.store.put(res)

    return handle


def _update(em: Emulator, version_id: str, change: Callable[[Resource], None]) -> Resource:
    with em.store.lock:
        res = em.store.get(version_id)
        if res is None:
            raise _Gone
        change(res)
        return em.store.put(res)


def _set_region(em: Emulator, version_id: str, region: str, **fields: Any) -> None:
    def change(res: Resource) -> None:
        res.internal.setdefault("regions", {}).setdefault(region, dict(QUEUED)).update(fields)

    _update(em, version_id, change)


def _run(em: Emulator, version_id: str, op_id: str) -> None:
    res = em.store.get(version_id)
    if res is None:
        raise _Gone
    internal = res.internal
    blob = internal["blob"]
    for region in internal.get("remove", []):
        em.backend.remove_image(em.blob_dir(region, blob))

    def forget_removed(r: Resource) -> None:
        r.internal["remove"] = []

    res = _update(em, version_id, forget_removed)
    source_region = internal["sourceRegion"]
    order = [
        regions.normalize(t["name"]) for t in res.properties["publishingProfile"]["targetRegions"]
    ]
    order.sort(key=lambda r: r != source_region)
    pending = [r for r in order if res.internal["regions"].get(r, {}).get("state") != "Completed"]
    for index, region in enumerate(pending):
        remaining = len(pending) - index - 1
        if region == source_region:
            action = _capture_action(em, res, region)
        else:
            action = _replicate_action(em, res, region)
        _paced(em, version_id, op_id, region, action, remaining)
        if region == source_region and _state(em, version_id, region) == "Failed":
            for later in pending[index + 1 :]:
                _set_region(
                    em,
                    version_id,
                    later,
                    state="Failed",
                    details="The source image "
                    "could not be captured, so there is nothing to replicate.",
                )
            break
    final = _update(em, version_id, _settle)
    failed = [
        regions.display_name(r)
        for r, e in final.internal["regions"].items()
        if e["state"] == "Failed"
    ]
    if failed:
        raise ArmError(
            500,
            "ReplicationFailed",
            f"Replication of gallery image version '{final.body['name']}' failed in "
            f"{', '.join(failed)}; see replicationStatus for details.",
        )


def _state(em: Emulator, version_id: str, region: str) -> str:
    res = em.store.get(version_id)
    if res is None:
        raise _Gone
    return str(res.internal["regions"].get(region, {}).get("state", "Unknown"))


def _settle(res: Resource) -> None:
    failed = any(e["state"] == "Failed" for e in res.internal["regions"].values())
    res.properties["provisioningState"] = "Failed" if failed else "Succeeded"


Action = Callable[[Callable[[int], None]], None] | None


def _capture_action(em: Emulator, res: Resource, region: str) -> Action:
    source = res.internal["source"]
    dest = em.blob_dir(region, res.internal["blob"])
    if source["kind"] == "vm":

        def capture(report: Callable[[int], None]) -> None:
            _fresh_dir(dest)
            em.backend.capture(source["vmKey"], dest)
            report(100)

        return capture
    if source["kind"] in ("version", "managed-image") and source.get("blob"):
        src = em.blob_dir(region, source["blob"])

        def copy(report: Callable[[int], None]) -> None:
            _fresh_dir(dest)
            em.backend.replicate(src, dest, report)

        return copy
    return None  # a managed image recorded from a disk: nothing to copy in the sandbox


def _replicate_action(em: Emulator, res: Resource, region: str) -> Action:
    if not res.internal.get("captured", True):
        return None
    blob = res.internal["blob"]
    src = em.blob_dir(res.internal["sourceRegion"], blob)
    dest = em.blob_dir(region, blob)

    def replicate(report: Callable[[int], None]) -> None:
        _fresh_dir(dest)
        em.backend.replicate(src, dest, report)

    return replicate


def _fresh_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _paced(
    em: Emulator, version_id: str, op_id: str, region: str, action: Action, remaining: int
) -> None:
    pace = em.config.replication_seconds
    start = time.monotonic()

    def time_pct() -> int:
        return 100 if pace <= 0 else min(100, int((time.monotonic() - start) / pace * 100))

    def estimate() -> float:
        return max(0.0, pace - (time.monotonic() - start)) + pace * remaining

    def report(pct: int) -> None:
        _set_region(em, version_id, region, progress=min(99, pct, time_pct()))

    _set_region(em, version_id, region, state="Replicating", progress=0, details="")
    em.ops.set_estimate(op_id, estimate())
    rule = em.faults.region_fails(region)
    try:
        if rule is not None:
            where = regions.display_name(region)
            raise SandboxError(
                rule.message or f"Replication to region '{where}' failed (injected fault)."
            )
        if action is not None:
            action(report)
    except (SandboxError, OSError) as err:
        _set_region(em, version_id, region, state="Failed", details=str(err))
        return
    while time_pct() < 100:
        if em.ops.stopping.wait(min(_TICK, estimate())):
            raise Abandoned
        _set_region(em, version_id, region, progress=min(99, time_pct()))
        em.ops.set_estimate(op_id, estimate())
    _set_region(em, version_id, region, state="Completed", progress=100, details="")


def resume_all(em: Emulator) -> set[str]:
    """Restart the workers of versions whose operation was running at shutdown."""
    resumed: set[str] = set()
    for res in em.store.resources(VERSION_TYPE):
        op_id = res.internal.get("op")
        if not op_id or res.properties.get("provisioningState") not in common.TRANSITIONAL:
            continue
        op = em.store.get_operation(op_id)
        if op is None or op["status"] != IN_PROGRESS:
            continue
        if res.properties["provisioningState"] == "Deleting":
            continue
        em.ops.run(op_id, worker(em, res.id), on_failure(em, res.id))
        resumed.add(op_id.lower())
    return resumed
