"""Replication of a version to its image's target regions, followed to its end.

``replicate`` PATCHes ``publishingProfile.targetRegions`` when the version's differ from the
image file (or to retry regions that failed), and reads ``$expand=ReplicationStatus`` at growing
intervals until the operation ends. Progress goes to a ``Progress`` the caller hands in (the
CLI's is a rich bar per region: imageforge/pipeline/show.py); nothing here prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from imageforge import tags
from imageforge.azure.arm import arm_call, error_message, one_line
from imageforge.azure.clients import Session
from imageforge.azure.evidence import BUSY
from imageforge.azure.gallery import begin_update, get_version, read_version, tag_version
from imageforge.azure.records import VersionInfo
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, GateError
from imageforge.kinds import Stage

log = logging.getLogger("imageforge.azure")

#: Stages a successful replication may turn into ``replicated`` (never promoted, revoked, failed).
_REPLICABLE_STAGES: tuple[Stage, ...] = ("", "built", "tested", "replicated")
#: First and longest wait between two looks at a replicating version.
POLL_FIRST = 1.0
POLL_MAX = 15.0


class Progress(Protocol):
    """Where ``replicate`` shows each look at the version (its per-region states)."""

    def show(self, info: VersionInfo) -> None: ...


def _unseen(info: VersionInfo) -> None:
    return None


@dataclass(frozen=True)
class ReplicationResult:
    image: str
    version: str
    regions: Mapping[str, str]
    changed: bool
    stage: str
    seconds: float
    info: VersionInfo | None = None

    @property
    def message(self) -> str:
        where = ", ".join(sorted(self.regions))
        if not self.changed:
            return f"image {self.image} version {self.version} is already replicated to {where}"
        return (
            f"replicated image {self.image} version {self.version} to {where} "
            f"in {self.seconds:.0f}s (stage {self.stage})"
        )


def wanted_targets(image: ImageDefinition, info: VersionInfo) -> list[dict[str, Any]]:
    """publishingProfile.targetRegions as the image file says (the version's own region is
    always kept: Azure publishes from there); per-region excludeFromLatest is preserved."""
    targets: list[dict[str, Any]] = [
        {
            "name": r.name,
            "regionalReplicaCount": r.replicas,
            "storageAccountType": r.storage_account_type,
        }
        for r in image.target_regions
    ]
    names = {t["name"] for t in targets}
    if info.location and info.location not in names:
        own = info.target(info.location)
        targets.insert(
            0,
            {
                "name": info.location,
                "regionalReplicaCount": own.replicas if own else 1,
                "storageAccountType": own.storage_account_type if own else "Standard_LRS",
            },
        )
    for target in targets:
        current = info.target(target["name"])
        target["excludeFromLatest"] = current.exclude_from_latest if current else False
    return targets


def _same_targets(wanted: list[dict[str, Any]], info: VersionInfo) -> bool:
    have = {(t.region, t.replicas, t.storage_account_type.lower()) for t in info.targets}
    want = {
        (t["name"], t["regionalReplicaCount"], str(t["storageAccountType"]).lower()) for t in wanted
    }
    return have == want


def replicate(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    *,
    timeout: float = 3600,
    progress: Progress | None = None,
    poll_first: float = POLL_FIRST,
    poll_max: float = POLL_MAX,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplicationResult:
    """Replicate a version to the image's target regions and follow it to the end.

    A version already Updating (another run's PATCH, or the build's own publish) is followed
    first; only then are its target regions compared with the image file, because that
    operation may have been asked for other regions. targetRegions are PATCHed when they
    differ, or to retry regions whose replication failed or never completed. Progress is read
    with ``$expand=ReplicationStatus`` at growing intervals (``poll_first`` up to ``poll_max``
    seconds), all of it bounded by ``timeout``. A failed region is named, tagged
    (``imageforge.replication-failed``) and leaves the stage as it was; success tags the
    version ``replicated`` unless it is already promoted.
    """
    started = time.monotonic()
    info = read_version(session, image, version)
    show = progress.show if progress is not None else _unseen
    follow = _Follower(session, image, info.name, started + timeout, timeout, poll_first, poll_max)
    label = follow.label
    if info.is_preview:
        raise GateError(
            f"{label} is a preview (shallow replication): its regions cannot change, so it is "
            "not replicated; build it again without --preview"
        )
    changed = False
    lro_error: Exception | None = None
    show(info)
    if info.provisioning_state in BUSY:
        log.info("%s is %s already: following it", label, info.provisioning_state.lower())
        info, _ = follow(info, None, show, sleep)
        changed = True
    wanted = wanted_targets(image, info)
    complete = bool(info.region_status) and all(r.state == "Completed" for r in info.region_status)
    if not _same_targets(wanted, info) or info.failed_regions() or not complete:
        body: dict[str, Any] = {"publishingProfile": {"targetRegions": wanted}}
        wanted_names = {t["name"] for t in wanted}
        removed = [t.region for t in info.targets if t.region not in wanted_names]
        if removed:
            # The spec leaves open whether a removal needs this flag (its description:
            # "whether or not removing this Gallery Image Version from replicated regions
            # is allowed"); asking for it with the removal is right either way.
            body["safetyProfile"] = {"allowDeletionOfReplicatedLocations": True}
            log.info("%s: removing %s", label, ", ".join(removed))
        with arm_call(f"replicating {label}", where=session.where):
            poller = begin_update(session, image, info.name, {"properties": body})
        info, lro_error = follow(info, poller, show, sleep)
        changed = True
    if not changed:
        return _replicated(session, image, info, changed=False, seconds=0.0)
    failed = info.failed_regions()
    if failed:
        names = ", ".join(r.region for r in failed)
        why = "; ".join(f"{r.region}: {one_line(r.details, 80)}" for r in failed if r.details)
        tag_version(session, image, info, {tags.REPLICATION_FAILED: names})
        raise AzureError(
            f"replication of {label} failed in {names}"
            + (f" ({why})" if why else "")
            + f"; it stays {info.stage or 'unstaged'} and cannot be promoted; run "
            "`invoke replicate` again to retry the failed regions"
        )
    if lro_error is not None:
        raise AzureError(f"replicating {label}: {error_message(lro_error)}")
    incomplete = [r.region for r in info.region_status if r.state != "Completed"]
    if incomplete:
        raise AzureError(
            f"replication of {label} ended with regions not completed: {', '.join(incomplete)}"
        )
    if not _same_targets(wanted_targets(image, info), info):
        raise AzureError(
            f"replication of {label} ended with target regions "
            f"{', '.join(t.region for t in info.targets)}, not those of {image.path.name}; "
            "another run may have changed them: run `invoke replicate` again"
        )
    return _replicated(session, image, info, changed=True, seconds=time.monotonic() - started)


@dataclass
class _Follower:
    """Follows one replication operation (ours through its poller, or another run's by the
    version's provisioningState) to its end, within the replicate call's deadline."""

    session: Session
    image: ImageDefinition
    version: str
    deadline: float
    timeout: float
    poll_first: float
    poll_max: float

    @property
    def label(self) -> str:
        return f"image {self.image.name} version {self.version}"

    def __call__(
        self,
        info: VersionInfo,
        poller: Any,
        show: Callable[[VersionInfo], None],
        sleep: Callable[[float], None],
    ) -> tuple[VersionInfo, Exception | None]:
        lro_error: Exception | None = None
        interval = self.poll_first
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                pending = [r.region for r in info.region_status if r.state != "Completed"]
                raise AzureError(
                    f"replication of {self.label} did not finish within {self.timeout:.0f}s "
                    f"(still replicating: {', '.join(pending) or 'unknown'}); run "
                    "`invoke replicate` again to keep following it"
                )
            if poller is not None:
                try:
                    poller.wait(min(interval, remaining))
                except Exception as err:  # noqa: BLE001 - judged by the version's state below
                    lro_error = err
                done = poller.done()
            else:
                sleep(min(interval, remaining))
                done = False
            info = get_version(self.session, self.image, self.version)
            show(info)
            if poller is not None and done:
                return info, lro_error
            if poller is None and info.provisioning_state not in BUSY:
                return info, None
            interval = min(interval * 1.5, self.poll_max)


def _replicated(
    session: Session, image: ImageDefinition, info: VersionInfo, *, changed: bool, seconds: float
) -> ReplicationResult:
    updates: dict[str, object] = {}
    if info.stage in _REPLICABLE_STAGES and info.stage != "replicated":
        updates[tags.STAGE] = "replicated"
    if tags.REPLICATION_FAILED in info.tags:
        updates[tags.REPLICATION_FAILED] = None
    stage = str(updates.get(tags.STAGE, info.stage))
    if updates:
        info = tag_version(session, image, info, updates)
    return ReplicationResult(
        image.name, info.name, dict(info.regions), changed, stage or "unstaged", seconds, info
    )
