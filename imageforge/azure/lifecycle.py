"""What happens to a version after it is built: test evidence, replicate, promote, roll back,
deprecate, prune; the versions table; and the janitor for resource groups runs left behind.

Every step reads the version from the gallery (its tags are the state), changes what it must
with one PATCH (an ARM long-running operation, polled by azure-core's ARM polling), and writes
its tags with the Tags API (Merge/Delete of the named keys only). Each is idempotent: a re-run
finishes what an interrupted run started and says when there is nothing to do.

The promote gate (``gate_problems``): stage ``tested`` or ``replicated``; tests-passed > 0,
tests-failed == 0 and tests-errors == 0 (written by ``record_test_result``); replication
Completed in every target region of the image file. ``force`` skips the gate only with a
reason, and records both (``imageforge.override``, ``imageforge.reason``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imageforge import regions as region_names
from imageforge import tags
from imageforge.azure.arm import arm_call, as_json, one_line
from imageforge.azure.clients import Session
from imageforge.azure.gallery import (
    REPLICATION_FAILED,
    REPORT,
    TESTS_ERRORS,
    ReplicationStatus,
    VersionInfo,
    get_version,
    latest_of,
    list_versions,
    set_version_tags,
    version_info,
)
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError, GateError

log = logging.getLogger("imageforge.azure")

BUSY = ("Creating", "Updating", "Deleting")
#: Stages a successful replication may turn into ``replicated`` (never promoted, revoked, failed).
_REPLICABLE_STAGES = ("", "built", "tested", "replicated")
#: First and longest wait between two looks at a replicating version.
POLL_FIRST = 1.0
POLL_MAX = 15.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(image: ImageDefinition, version: str) -> str:
    return f"image {image.name} version {version}"


def _console(console: Any) -> Any:
    if console is not None:
        return console
    from rich.console import Console

    return Console(stderr=True)


def _begin_update(
    session: Session, image: ImageDefinition, version: str, body: dict[str, Any]
) -> Any:
    """Start a PATCH of the version. GalleryRP's GalleryImageVersionUpdate reuses the version's
    properties model, whose only required member is ``storageProfile`` (GalleryRP.json,
    stable/2025-03-03 and 2025-12-03); its example GalleryImageVersion_Update_WithoutSourceId
    sends it empty, which changes nothing. So every PATCH carries ``storageProfile: {}``."""
    site = session.site
    props = dict(body.get("properties") or {})
    props.setdefault("storageProfile", {})
    return session.compute.gallery_image_versions.begin_update(
        site.resource_group,
        site.gallery,
        image.gallery_image.name,
        version,
        {**body, "properties": props},
    )


def _patch(
    session: Session, image: ImageDefinition, version: str, body: dict[str, Any]
) -> VersionInfo:
    """PATCH a version and wait for the operation (ARM polling); the version afterwards."""
    with arm_call(f"updating {_label(image, version)}", where=session.where):
        return version_info(as_json(_begin_update(session, image, version, body).result()))


# test evidence ----------------------------------------------------------------------------


def record_test_result(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    passed: int,
    failed: int,
    errors: int,
    digest: str,
    tested_at: str,
    report: str | None = None,
) -> str:
    """Write the Testinfra summary onto the version; returns its stage afterwards.

    Stage ``tested`` when something passed and nothing failed or errored, else ``failed``. A
    promoted or revoked version keeps its stage (the evidence tags still change).
    """
    info = get_version(session, image, version)
    verdict = "tested" if passed > 0 and failed == 0 and errors == 0 else "failed"
    stage = info.stage if info.stage in ("promoted", "revoked") else verdict
    updates: dict[str, object] = {
        tags.STAGE: stage,
        tags.TESTS_PASSED: passed,
        tags.TESTS_FAILED: failed,
        TESTS_ERRORS: errors,
        tags.REPORT_DIGEST: digest or None,
        tags.TESTED_AT: tested_at,
        REPORT: report,
    }
    set_version_tags(session, image, info, updates)
    return stage


# replicate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicationResult:
    image: str
    version: str
    regions: Mapping[str, str]
    changed: bool
    stage: str
    seconds: float

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
    targets = [
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


class _Display:
    """A rich progress bar per region (rendered once at the end when not on a terminal)."""

    def __init__(self, console: Any, label: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("[bold]{task.fields[region]:<20}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[state]}"),
            console=console,
            transient=False,
        )
        self.label = label
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, info: VersionInfo) -> None:
        for status in info.region_status:
            state = status.state + (f": {one_line(status.details, 60)}" if status.details else "")
            done = 100 if status.state == "Completed" else status.progress
            if status.region not in self.tasks:
                self.tasks[status.region] = self.progress.add_task(
                    self.label, total=100, region=status.region, state=state
                )
            self.progress.update(self.tasks[status.region], completed=done, state=state)


def replicate(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    timeout: float = 3600,
    console: Any = None,
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
    follow = _Follower(session, image, version, started + timeout, timeout, poll_first, poll_max)
    label = follow.label
    info = get_version(session, image, version)
    changed = False
    lro_error: Exception | None = None
    with _Display(_console(console), label) as display:
        display.show(info)
        if info.provisioning_state in BUSY:
            log.info("%s is %s already: following it", label, info.provisioning_state.lower())
            info, _ = follow(info, None, display, sleep)
            changed = True
        wanted = wanted_targets(image, info)
        complete = bool(info.region_status) and all(
            r.state == "Completed" for r in info.region_status
        )
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
                poller = _begin_update(session, image, version, {"properties": body})
            info, lro_error = follow(info, poller, display, sleep)
            changed = True
    if not changed:
        return _replicated(session, image, info, changed=False, seconds=0.0)
    failed = info.failed_regions()
    if failed:
        names = ", ".join(r.region for r in failed)
        why = "; ".join(f"{r.region}: {one_line(r.details, 80)}" for r in failed if r.details)
        set_version_tags(session, image, info, {REPLICATION_FAILED: names})
        raise AzureError(
            f"replication of {label} failed in {names}"
            + (f" ({why})" if why else "")
            + f"; it stays {info.stage or 'unstaged'} and cannot be promoted; run "
            "`invoke replicate` again to retry the failed regions"
        )
    if lro_error is not None:
        from imageforge.azure.arm import error_message

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
        return _label(self.image, self.version)

    def __call__(
        self, info: VersionInfo, poller: Any, display: _Display, sleep: Callable[[float], None]
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
            display.show(info)
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
    if REPLICATION_FAILED in info.tags:
        updates[REPLICATION_FAILED] = None
    stage = str(updates.get(tags.STAGE, info.stage))
    if updates:
        set_version_tags(session, image, info, updates)
    return ReplicationResult(
        image.name, info.name, dict(info.regions), changed, stage or "unstaged", seconds
    )


# promote ----------------------------------------------------------------------------------


def check_reason(reason: str | None) -> None:
    """Refuse a reason that still holds Azure DevOps macro syntax: ``$(System.AccessToken)``
    typed as a pipeline's free-text parameter is expanded by the agent before any script sees
    it, so a reason with ``$(`` has either been through that already or would be next time;
    either way it does not belong in a tag everyone can read."""
    if reason and "$(" in reason:
        raise ConfigError(
            "--reason contains '$(', which Azure DevOps expands as a macro (a secret such as "
            "$(System.AccessToken) would land in the version's tags): write it without '$('"
        )


@dataclass(frozen=True)
class PromoteResult:
    image: str
    version: str
    changed: bool
    message: str
    regions: tuple[str, ...] | None = None
    forced: bool = False
    problems: tuple[str, ...] = ()


def gate_problems(image: ImageDefinition, info: VersionInfo) -> list[str]:
    """Why ``info`` may not be promoted (empty when it passes the gate)."""
    problems = []
    if info.stage not in ("tested", "replicated", "promoted"):
        problems.append(f"stage is {info.stage or 'unset'}, not tested or replicated")
    if not (info.tests_passed or 0) > 0:
        problems.append("no passing test result is recorded")
    if info.tests_failed:
        problems.append(f"{info.tests_failed} test(s) failed")
    if info.tests_errors:
        problems.append(f"{info.tests_errors} test error(s)")
    if info.provisioning_state in BUSY:
        problems.append(f"it is {info.provisioning_state.lower()} (replication in progress)")
    states = {r.region: r.state for r in info.region_status}
    failed = [r.name for r in image.target_regions if states.get(r.name) == "Failed"]
    missing = [r.name for r in image.target_regions if r.name not in states]
    pending = [
        r.name
        for r in image.target_regions
        if states.get(r.name) not in (None, "Failed", "Completed")
    ]
    if failed:
        problems.append(f"replication failed in {', '.join(failed)}")
    if missing:
        problems.append(f"not replicated to {', '.join(missing)}")
    if pending:
        problems.append(f"still replicating to {', '.join(pending)}")
    return problems


def _check_regions(image: ImageDefinition, regions: Iterable[str]) -> list[str]:
    checked = []
    for name in regions:
        if not region_names.is_region(name):
            known = ", ".join(r.name for r in image.target_regions)
            raise ConfigError(
                f"--regions: {name!r} is not an Azure region (target regions of image "
                f"{image.name}: {known})"
            )
        checked.append(image.region(name).name)
    return list(dict.fromkeys(checked))


def promote(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    regions: list[str] | None = None,
    force: bool = False,
    reason: str | None = None,
    actor: str,
) -> PromoteResult:
    """Make the version eligible for "latest" (all target regions, or ``regions`` for a
    staged rollout, added to the regions promoted before), after the gate."""
    label = _label(image, version)
    check_reason(reason)
    if force and not (reason and reason.strip()):
        raise ConfigError("--force needs --reason: the override and its reason are recorded")
    chosen = _check_regions(image, regions) if regions else None
    info = get_version(session, image, version)
    problems = gate_problems(image, info)
    if problems and not force:
        raise GateError(f"promote refused for {label}: {'; '.join(problems)}")
    names = [t.region for t in info.targets]
    if chosen is None:
        latest_regions = set(names)
    else:
        before = (
            set()
            if info.exclude_from_latest
            else {t.region for t in info.targets if not t.exclude_from_latest}
        )
        latest_regions = before | set(chosen)
    per_region_ok = all((t.region in latest_regions) != t.exclude_from_latest for t in info.targets)
    shown = (
        "all target regions"
        if latest_regions >= set(names)
        else ", ".join(r for r in names if r in latest_regions)
    )
    if info.stage == "promoted" and not info.exclude_from_latest and per_region_ok:
        by = info.tags.get(tags.PROMOTED_BY, "?")
        at = info.tags.get(tags.PROMOTED_AT, "?")
        return PromoteResult(
            image.name,
            info.name,
            False,
            f"{label} is already promoted ({shown}; by {by} at {at}); nothing changed",
            tuple(sorted(latest_regions)),
        )
    publishing: dict[str, Any] = {"excludeFromLatest": False}
    if not per_region_ok:
        publishing["targetRegions"] = [
            {
                "name": t.region,
                "regionalReplicaCount": t.replicas,
                "storageAccountType": t.storage_account_type,
                "excludeFromLatest": t.region not in latest_regions,
            }
            for t in info.targets
        ]
    if info.exclude_from_latest or "targetRegions" in publishing:
        info = _patch(session, image, info.name, {"properties": {"publishingProfile": publishing}})
    updates: dict[str, object] = {
        tags.STAGE: "promoted",
        tags.PROMOTED_BY: actor,
        tags.PROMOTED_AT: _stamp(_now()),
        tags.PROMOTED_REGIONS: "all"
        if latest_regions >= set(names)
        else ",".join(sorted(latest_regions)),
        tags.REASON: reason.strip() if reason and reason.strip() else None,
        tags.OVERRIDE: ("gate skipped: " + "; ".join(problems)) if force and problems else None,
    }
    set_version_tags(session, image, info, updates)
    suffix = f" (override: {'; '.join(problems)})" if force and problems else ""
    return PromoteResult(
        image.name,
        info.name,
        True,
        f"promoted {label} to latest in {shown}{suffix}",
        tuple(sorted(latest_regions)),
        forced=bool(force and problems),
        problems=tuple(problems),
    )


# rollback ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackResult:
    latest_now: str | None
    image: str = ""
    version: str = ""
    changed: bool = True
    message: str = ""


def rollback(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    actor: str,
    reason: str | None = None,
) -> RollbackResult:
    """Exclude the version from latest again (stage ``revoked``); Azure's "latest" falls back
    to the highest other version not excluded. Refused when no other promoted version would
    remain."""
    label = _label(image, version)
    check_reason(reason)
    info = get_version(session, image, version)
    versions = list_versions(session, image)
    others = [
        v
        for v in versions
        if v.name != info.name and v.stage == "promoted" and not v.exclude_from_latest
    ]
    fallback = latest_of(others)
    excluded = info.exclude_from_latest and all(t.exclude_from_latest for t in info.targets)
    if excluded and info.stage == "revoked":
        return RollbackResult(
            fallback.name if fallback else None,
            image.name,
            info.name,
            False,
            f"{label} is already rolled back; nothing changed",
        )
    if not info.exclude_from_latest and fallback is None:
        raise GateError(
            f"rollback refused: no other promoted version of {image.name} to fall back to "
            f"({info.name} would leave no latest)"
        )
    if not excluded:
        # Both levels: GalleryRP's spec does not say whether the version's excludeFromLatest or
        # a region's wins, and with every flag set no reading of it keeps this version latest.
        info = _patch(
            session,
            image,
            info.name,
            {"properties": {"publishingProfile": _excluded_everywhere(info)}},
        )
    set_version_tags(
        session,
        image,
        info,
        {
            tags.STAGE: "revoked",
            tags.REVOKED_BY: actor,
            tags.REVOKED_AT: _stamp(_now()),
            tags.REASON: reason.strip() if reason and reason.strip() else None,
        },
    )
    after = [v for v in versions if v.name != info.name] + [info]
    latest = latest_of(after)
    latest_now = latest.name if latest else None
    return RollbackResult(
        latest_now,
        image.name,
        info.name,
        True,
        f"rolled back {label}: latest is now {latest_now or 'none'}",
    )


def _excluded_everywhere(info: VersionInfo) -> dict[str, Any]:
    """A publishingProfile update that excludes the version from latest at both levels."""
    return {
        "excludeFromLatest": True,
        "targetRegions": [
            {
                "name": t.region,
                "regionalReplicaCount": t.replicas,
                "storageAccountType": t.storage_account_type,
                "excludeFromLatest": True,
            }
            for t in info.targets
        ],
    }


# deprecate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeprecateResult:
    image: str
    version: str
    end_of_life: dt.date
    changed: bool
    message: str


def deprecate(
    session: Session, image: ImageDefinition, version: str, *, end_of_life: dt.date
) -> DeprecateResult:
    """Set the version's endOfLifeDate (midnight UTC of ``end_of_life``)."""
    label = _label(image, version)
    info = get_version(session, image, version)
    if info.end_of_life_date is not None and info.end_of_life_date.date() == end_of_life:
        return DeprecateResult(
            image.name, info.name, end_of_life, False,
            f"{label} already reaches end of life on {end_of_life.isoformat()}; nothing changed",
        )  # fmt: skip
    stamp = f"{end_of_life.isoformat()}T00:00:00+00:00"
    _patch(
        session, image, info.name, {"properties": {"publishingProfile": {"endOfLifeDate": stamp}}}
    )
    return DeprecateResult(
        image.name, info.name, end_of_life, True,
        f"{label} reaches end of life on {end_of_life.isoformat()}",
    )  # fmt: skip


# prune ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    candidates: list[str]
    deleted: list[str]
    image: str = ""
    kept: list[str] = field(default_factory=list)
    message: str = ""


def prune_plan(
    versions: list[VersionInfo], *, keep: int, days: int, now: dt.datetime
) -> tuple[list[VersionInfo], list[VersionInfo]]:
    """(candidates, kept): keep the newest ``keep`` promoted versions, anything younger than
    ``days`` (or of unknown age), anything busy, and never the current latest."""
    latest = latest_of(versions)
    promoted = sorted((v for v in versions if v.stage == "promoted"), key=lambda v: v.version)
    keep_names = {v.name for v in promoted[len(promoted) - keep :]} if keep > 0 else set()
    if latest is not None:
        keep_names.add(latest.name)
    cutoff = now - dt.timedelta(days=days)
    for v in versions:
        if v.published_date is None or v.published_date > cutoff:
            keep_names.add(v.name)
        if v.provisioning_state in BUSY:
            keep_names.add(v.name)
    candidates = [v for v in versions if v.name not in keep_names]
    kept = [v for v in versions if v.name in keep_names]
    return candidates, kept


def prune(
    session: Session,
    image: ImageDefinition,
    *,
    keep: int = 3,
    days: int = 30,
    yes: bool = False,
    now: dt.datetime | None = None,
) -> PruneResult:
    """List (and with ``yes`` delete) the versions the retention policy lets go."""
    if keep < 0 or days < 0:
        raise ConfigError("prune: --keep and --days must be >= 0")
    moment = now or _now()
    versions = list_versions(session, image)
    candidates, kept = prune_plan(versions, keep=keep, days=days, now=moment)
    names = [v.name for v in candidates]
    policy = f"keep {keep} newest promoted, anything younger than {days} days, and latest"
    if not candidates:
        return PruneResult(
            [], [], image.name, [v.name for v in kept],
            f"nothing to prune for image {image.name} ({policy})",
        )  # fmt: skip
    if not yes:
        return PruneResult(
            names, [], image.name, [v.name for v in kept],
            f"would delete {len(names)} version(s) of image {image.name}: {', '.join(names)} "
            "(run again with --yes to delete)",
        )  # fmt: skip
    site = session.site
    ops = []
    with arm_call(f"deleting versions of image {image.name}", where=session.where):
        for name in names:
            ops.append(
                (
                    name,
                    session.compute.gallery_image_versions.begin_delete(
                        site.resource_group, site.gallery, image.gallery_image.name, name
                    ),
                )
            )
    deleted, failures = [], []
    for name, poller in ops:
        try:
            with arm_call(f"deleting {_label(image, name)}", where=session.where):
                poller.result()
            deleted.append(name)
        except AzureError as err:
            failures.append(str(err))
    if failures:
        raise AzureError(
            f"prune deleted {len(deleted)} of {len(names)} version(s); {failures[0]}"
            + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        )
    return PruneResult(
        names, deleted, image.name, [v.name for v in kept],
        f"deleted {len(deleted)} version(s) of image {image.name}: {', '.join(deleted)}",
    )  # fmt: skip


# versions table ---------------------------------------------------------------------------


def versions_table(session: Session, image: ImageDefinition) -> list[VersionInfo]:
    """Every version with its replication status, newest first."""
    return list(reversed(list_versions(session, image, status=True)))


def _fmt_date(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


def render_versions(image_name: str, rows: list[VersionInfo], console: Any = None) -> None:
    """Print the versions table (rich)."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"{image_name}: gallery image versions",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("version", no_wrap=True)
    table.add_column("stage")
    table.add_column("tests")
    table.add_column("regions", min_width=12)
    table.add_column("latest")
    table.add_column("published")
    table.add_column("end of life")
    for row in rows:
        regions = "\n".join(f"{region} {state}" for region, state in row.regions.items())
        table.add_row(
            row.name,
            row.stage or "-",
            row.test_summary,
            regions or "-",
            "yes" if row.is_latest else ("excluded" if row.exclude_from_latest else "no"),
            _fmt_date(row.published_date),
            _fmt_date(row.end_of_life_date),
        )
    out = console if console is not None else _console_stdout()
    if not rows:
        out.print(f"{image_name}: no versions in the gallery")
        return
    out.print(table)


def _console_stdout() -> Any:
    """stdout; wide when it is not a terminal (a CI log should not wrap the table)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


# cleanup ----------------------------------------------------------------------------------


def expired(group_tags: Mapping[str, str], now: dt.datetime) -> bool:
    """Whether a resource group's ``imageforge.expires`` lies in the past (garbled: no)."""
    raw = group_tags.get(tags.EXPIRES, "")
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when <= now


def cleanup(session: Session, *, now: dt.datetime | None = None, console: Any = None) -> list[str]:
    """Delete the resource groups imageforge created (tag ``imageforge.created-by``) that have
    expired (``imageforge.expires``) or whose creating process is provably dead
    (``imageforge.owner``, see ``imageforge.owner``: a killed run on this machine), at once;
    returns their names."""
    from imageforge import owner

    me = owner.current()
    moment = now or _now()
    site = session.site
    api = session.resource.resource_groups
    with arm_call("listing imageforge resource groups", where=session.where):
        groups = [as_json(g) for g in api.list(filter=f"tagName eq '{tags.CREATED_BY}'")]
    doomed = []
    why: dict[str, str] = {}
    for group in groups:
        name = str(group.get("name", ""))
        group_tags = dict(group.get("tags") or {})
        state = (group.get("properties") or {}).get("provisioningState")
        if name.lower() == site.resource_group.lower() or tags.EXPIRES not in group_tags:
            continue
        if state == "Deleting":
            continue
        dead = owner.provably_dead(group_tags.get(tags.OWNER, ""), me)
        if not (expired(group_tags, moment) or dead):
            continue
        doomed.append(name)
        why[name] = "expired" if expired(group_tags, moment) else "its run's process is gone"
    pollers = []
    for name in doomed:
        with arm_call(f"deleting resource group {name}", where=session.where):
            pollers.append((name, api.begin_delete(name)))
    deleted = []
    for name, poller in pollers:
        with arm_call(f"deleting resource group {name}", where=session.where):
            poller.result()
        deleted.append(name)
        if console is not None:
            console.print(f"deleted resource group {name} ({why[name]})")
    return deleted


def replication_summary(status: ReplicationStatus) -> str:
    return ", ".join(f"{r.region} {r.state}" for r in status.regions) or "no regions"
