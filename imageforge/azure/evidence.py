"""A version's test evidence: written by the test stage, read by the promote gate.

``record_test_result`` writes the Testinfra summary (``imageforge.tests-*``, the report's digest
and place) onto the version. ``gate_problems`` is the promote gate: stage ``tested`` or
``replicated``; tests-passed > 0, tests-failed == 0 and tests-errors == 0; replication Completed
in every target region of the image file; and in each region promoted other than the build
region, a passing smoke test of that region's replica (``imageforge.smoke.<region>``, written
by ``record_smoke``), so a broken replica is never made latest there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from imageforge import regions as region_names
from imageforge import tags
from imageforge.azure.clients import Session
from imageforge.azure.gallery import read_version, tag_version
from imageforge.azure.records import VersionInfo
from imageforge.config import ImageDefinition
from imageforge.kinds import Stage

#: A version in one of these provisioning states has an operation running on it.
BUSY = ("Creating", "Updating", "Deleting")
#: Why a preview is never promoted, whatever the override: Azure cannot change a version's
#: replicationMode, so a shallow version stays in its build region with one replica.
PREVIEW_REFUSED = (
    "it is a preview (shallow replication: Azure cannot replicate it further); "
    "build it again without --preview"
)


def record_test_result(
    session: Session,
    image: ImageDefinition,
    version: str | VersionInfo,
    *,
    passed: int,
    failed: int,
    errors: int,
    digest: str,
    tested_at: str,
    report: str | None = None,
) -> VersionInfo:
    """Write the Testinfra summary onto the version; returns the version afterwards.

    Stage ``tested`` when something passed and nothing failed or errored, else ``failed``. A
    promoted or revoked version keeps its stage (the evidence tags still change).
    """
    info = read_version(session, image, version)
    verdict: Stage = "tested" if passed > 0 and failed == 0 and errors == 0 else "failed"
    stage = info.stage if info.stage in ("promoted", "revoked") else verdict
    updates: dict[str, object] = {
        tags.STAGE: stage,
        tags.TESTS_PASSED: passed,
        tags.TESTS_FAILED: failed,
        tags.TESTS_ERRORS: errors,
        tags.REPORT_DIGEST: digest or None,
        tags.TESTED_AT: tested_at,
        tags.REPORT: report,
    }
    return tag_version(session, image, info, updates)


def gate_problems(
    image: ImageDefinition, info: VersionInfo, regions: Iterable[str] | None = None
) -> list[str]:
    """Why ``info`` may not be promoted in ``regions`` (default: all its image's target
    regions); empty when it passes the gate."""
    problems = []
    if info.is_preview:
        problems.append(PREVIEW_REFUSED)
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
    problems += smoke_problems(image, info, regions)
    return problems


# the smoke test of each replica -----------------------------------------------------------


def smoke_tag(region: str) -> str:
    return tags.SMOKE_PREFIX + region_names.normalize(region)


def smoke_regions(image: ImageDefinition) -> list[str]:
    """The regions whose replica a smoke test checks: every target region but the build
    region, where the full suite ran on the version itself."""
    build = region_names.normalize(image.build.region)
    return [r.name for r in image.target_regions if r.name != build]


def smoke_verdict(passed: int, failed: int, errors: int, failures: Iterable[str] = ()) -> str:
    """A region's tag value: ``passed N of N`` or ``failed F of N: names``."""
    total = passed + failed + errors
    if passed > 0 and failed == 0 and errors == 0:
        return f"passed {passed} of {total}"
    names = ", ".join(failures)
    return f"failed {failed + errors} of {total}" + (f": {names}" if names else "")


def record_smoke(
    session: Session, image: ImageDefinition, info: VersionInfo, verdicts: Mapping[str, str]
) -> VersionInfo:
    """Write each region's smoke verdict onto the version (one Tags API merge)."""
    updates: dict[str, object] = {smoke_tag(r): v for r, v in verdicts.items()}
    return tag_version(session, image, info, updates)


def smoke_problems(
    image: ImageDefinition, info: VersionInfo, regions: Iterable[str] | None = None
) -> list[str]:
    """The regions (of ``regions``, default all) whose replica has no passing smoke test."""
    chosen = [region_names.normalize(r) for r in regions] if regions is not None else None
    # a region not replicated to is the gate's problem already ("not replicated to ...")
    replicated = {r.region for r in info.region_status if r.state == "Completed"}
    check = [r for r in smoke_regions(image) if (chosen is None or r in chosen) and r in replicated]
    failed = [r for r in check if info.tags.get(smoke_tag(r), "").startswith(("failed", "error"))]
    missing = [r for r in check if smoke_tag(r) not in info.tags]
    problems = []
    if failed:
        problems.append(f"smoke test failed in {', '.join(failed)}")
    if missing:
        problems.append(f"no smoke test of the replica in {', '.join(missing)} (invoke smoke-test)")
    return problems
