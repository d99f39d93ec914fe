"""replicate, promote, rollback, deprecate, prune, versions table, test evidence and cleanup,
through the SDK against the emulator (faults injected through its admin API)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
from collections.abc import Iterator

import pytest
from azure_helpers import evidence_tags, load_image, methods, new_session, publish, requests_since
from rich.console import Console

from imageforge import tags
from imageforge.azure import evidence, gallery, janitor, promotion, replication, retention
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError, GateError
from imageforge.pipeline import release, show
from imageforge.sandbox.harness import EmulatorHandle, running_emulator

TARGETS = {"westeurope": "Completed", "northeurope": "Completed", "swedencentral": "Completed"}


def _tested(session: Session, image: ImageDefinition, version: str, **kw) -> None:  # type: ignore[no-untyped-def]
    publish(session, image, version, stage="tested", extra_tags=evidence_tags(**kw))


def _ready(session: Session, image: ImageDefinition, version: str) -> None:
    """A tested version replicated to every target region."""
    _tested(session, image, version)
    replication.replicate(session, image, version)


def _version_patches(log: list[dict], version: str) -> list[dict]:  # type: ignore[type-arg]
    """PATCHes of the version itself (not of its tags)."""
    return [e for e in methods(log, "PATCH") if e["path"].endswith(f"/versions/{version}")]


def _publishing(session: Session, image: ImageDefinition, version: str) -> dict:  # type: ignore[type-arg]
    site = session.site
    got = session.compute.gallery_image_versions.get(
        site.resource_group, site.gallery, image.gallery_image.name, version
    )
    return got.as_dict()["properties"]["publishingProfile"]


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path_factory.mktemp("paced"), replication_seconds=0.6) as handle:
        yield handle


# test evidence ----------------------------------------------------------------------------


def test_record_test_result_sets_stage_and_evidence(session, defined):
    publish(session, defined, "1.0.0")
    stage = evidence.record_test_result(
        session, defined, "1.0.0", passed=14, failed=0, errors=0, digest="sha256:ab",
        tested_at="2026-11-22T01:00:00Z", report="reports/debian-12/1.0.0",
    ).stage  # fmt: skip
    assert stage == "tested"
    info = gallery.get_version(session, defined, "1.0.0")
    assert (info.tests_passed, info.tests_failed, info.tests_errors) == (14, 0, 0)
    assert info.tags[tags.REPORT_DIGEST] == "sha256:ab"
    assert info.tags[tags.TESTED_AT] == "2026-11-22T01:00:00Z"
    assert info.tags[tags.REPORT] == "reports/debian-12/1.0.0"
    assert info.test_summary == "14 passed, 0 failed"
    assert (
        evidence.record_test_result(
            session, defined, "1.0.0", passed=14, failed=0, errors=1, digest="d", tested_at="t"
        ).stage
        == "failed"
    )
    assert (
        evidence.record_test_result(
            session, defined, "1.0.0", passed=0, failed=0, errors=0, digest="d", tested_at="t"
        ).stage
        == "failed"
    )
    gallery.set_version_tags(session, defined, "1.0.0", {tags.STAGE: "promoted"})
    assert (
        evidence.record_test_result(
            session, defined, "1.0.0", passed=1, failed=3, errors=0, digest="d", tested_at="t"
        ).stage
        == "promoted"
    )
    assert gallery.get_version(session, defined, "1.0.0").tests_failed == 3


# replicate --------------------------------------------------------------------------------


def test_replicate_to_every_target_region_then_nothing_to_do(arm, session, defined):
    _tested(session, defined, "1.0.0")
    result = replication.replicate(session, defined, "1.0.0")
    assert result.changed and result.regions == TARGETS
    assert result.stage == "replicated"
    assert "replicated image debian-12 version 1.0.0 to northeurope" in result.message
    publishing = _publishing(session, defined, "1.0.0")
    targets = {t["name"]: t for t in publishing["targetRegions"]}
    assert targets["North Europe"]["regionalReplicaCount"] == 2
    assert targets["North Europe"]["storageAccountType"] == "Standard_ZRS"
    assert publishing["excludeFromLatest"] is True
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.stage == "replicated" and tags.REPLICATION_FAILED not in info.tags
    arm.reset_stats()
    again = replication.replicate(session, defined, "1.0.0")
    assert not again.changed
    assert again.message == (
        "image debian-12 version 1.0.0 is already replicated to northeurope, swedencentral, "
        "westeurope"
    )
    assert methods(requests_since(arm), "PATCH") == []


def test_replicate_shows_progress_and_does_not_busy_poll(paced):
    with new_session(paced) as session:
        image = load_image()
        gallery.ensure_image_definition(session, image)
        _tested(session, image, "1.0.0")
        out = Console(file=io.StringIO(), width=120)
        paced.reset_stats()
        started = time.monotonic()
        with show.ReplicationProgress(out, "image debian-12 version 1.0.0") as progress:
            result = replication.replicate(
                session, image, "1.0.0", progress=progress, poll_first=0.5
            )
        elapsed = time.monotonic() - started
    assert result.regions == TARGETS
    assert elapsed >= 2 * 0.6  # two more regions at 0.6 s each
    text = out.file.getvalue()
    for region in ("westeurope", "northeurope", "swedencentral"):
        assert region in text
    assert "Completed" in text
    log = requests_since(paced)
    status_reads = [e for e in methods(log, "GET", "/versions/1.0.0") if "caps" not in e["path"]]
    assert len(status_reads) <= elapsed / 0.5 + 3, status_reads
    assert len(log) < 20, [(e["method"], e["path"]) for e in log]


def test_replication_timeout_then_a_rerun_follows_without_patching(tmp_path):
    with running_emulator(tmp_path / "slow", replication_seconds=1.0) as slow:
        with new_session(slow) as session:
            image = load_image()
            gallery.ensure_image_definition(session, image)
            _tested(session, image, "1.0.0")
            with pytest.raises(AzureError) as caught:
                replication.replicate(session, image, "1.0.0", timeout=1)
            message = str(caught.value)
            assert "\n" not in message
            assert (
                "replication of image debian-12 version 1.0.0 did not finish within 1s" in message
            )
            assert "run `invoke replicate` again" in message
            slow.reset_stats()
            result = replication.replicate(session, image, "1.0.0", timeout=60, poll_first=0.5)
            assert result.regions == TARGETS
            assert _version_patches(requests_since(slow), "1.0.0") == []


def test_replicate_follows_a_running_update_then_adds_the_regions_it_left_out(paced):
    """Another run's PATCH asked for two of the three regions: replicate waits for it, sees
    swedencentral missing and PATCHes, instead of tagging the version replicated."""
    with new_session(paced) as session:
        image = load_image()
        gallery.ensure_image_definition(session, image)
        _tested(session, image, "1.0.0")
        site = session.site
        session.compute.gallery_image_versions.begin_update(
            site.resource_group, site.gallery, image.gallery_image.name, "1.0.0",
            {"properties": {"storageProfile": {}, "publishingProfile": {"targetRegions": [
                {"name": "westeurope"}, {"name": "northeurope"}]}}},
        )  # fmt: skip
        assert gallery.get_version(session, image, "1.0.0").provisioning_state == "Updating"
        paced.reset_stats()
        result = replication.replicate(session, image, "1.0.0", poll_first=0.3)
        assert result.regions == TARGETS and result.stage == "replicated"
        assert len(_version_patches(requests_since(paced), "1.0.0")) == 1
        info = gallery.get_version(session, image, "1.0.0")
        assert {t.region: t.replicas for t in info.targets} == {
            "westeurope": 1, "northeurope": 2, "swedencentral": 1}  # fmt: skip


def test_replicate_can_drop_a_region_of_a_version_that_protects_its_replicas(arm, session, defined):
    """A region left out of the image file is removed with the safety flag in the same PATCH
    (a version created with allowDeletionOfReplicatedLocations false refuses it otherwise)."""
    site = session.site
    publish(session, defined, "1.0.0", stage="tested", extra_tags=evidence_tags(),
            regions=["westeurope", "northeurope", "swedencentral", "eastus"])  # fmt: skip
    session.compute.gallery_image_versions.begin_update(
        site.resource_group, site.gallery, defined.gallery_image.name, "1.0.0",
        {"properties": {"storageProfile": {},
                        "safetyProfile": {"allowDeletionOfReplicatedLocations": False}}},
    ).result()  # fmt: skip
    result = replication.replicate(session, defined, "1.0.0")
    assert result.regions == TARGETS
    info = gallery.get_version(session, defined, "1.0.0")
    assert sorted(t.region for t in info.targets) == sorted(TARGETS)


def test_a_failed_region_is_named_blocks_promotion_and_a_rerun_resumes(arm, session, defined):
    _tested(session, defined, "1.0.0")
    arm.set_faults([{"kind": "region_failure", "region": "northeurope",
                     "message": "disk quota exceeded in North Europe"}])  # fmt: skip
    with pytest.raises(AzureError) as caught:
        replication.replicate(session, defined, "1.0.0")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("replication of image debian-12 version 1.0.0 failed in northeurope")
    assert "disk quota exceeded" in message
    assert "it stays tested and cannot be promoted" in message
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.stage == "tested"
    assert info.tags[tags.REPLICATION_FAILED] == "northeurope"
    assert info.regions["northeurope"] == "Failed"
    with pytest.raises(GateError, match="replication failed in northeurope"):
        promotion.promote(session, defined, "1.0.0", actor="rm@example.com")
    arm.reset_stats()
    result = replication.replicate(session, defined, "1.0.0")
    assert result.regions == TARGETS and result.stage == "replicated"
    assert len(_version_patches(requests_since(arm), "1.0.0")) == 1
    assert tags.REPLICATION_FAILED not in gallery.get_version(session, defined, "1.0.0").tags


def test_replication_whose_operation_fails_is_reported_and_stays_unpromotable(
    arm, session, defined
):
    _tested(session, defined, "1.0.0")
    arm.set_faults([{"kind": "lro_failed", "method": "PATCH", "path": "/versions/1.0.0$",
                     "message": "Replication aborted by the platform."}])  # fmt: skip
    with pytest.raises(AzureError, match="failed in northeurope, swedencentral"):
        replication.replicate(session, defined, "1.0.0")
    with pytest.raises(GateError, match="promote refused for image debian-12 version 1.0.0"):
        promotion.promote(session, defined, "1.0.0", actor="rm")
    assert replication.replicate(session, defined, "1.0.0").regions == TARGETS


def test_replicate_and_promote_ride_out_throttling_and_5xx(arm, session, defined):
    _tested(session, defined, "1.0.0")
    arm.reset_stats()
    arm.set_faults(
        [
            {"kind": "throttle", "method": "GET", "path": "/versions/1.0.0$", "count": 4},
            {"kind": "throttle", "method": "PATCH", "path": "/versions/1.0.0$", "count": 1},
            {"kind": "error", "status": 503, "method": "GET", "path": "capsOperations",
             "count": 2},
            {"kind": "throttle", "method": "PATCH", "path": "/tags/default$", "count": 1},
        ]
    )  # fmt: skip
    replication.replicate(session, defined, "1.0.0")
    promoted = promotion.promote(session, defined, "1.0.0", actor="rm")
    assert promoted.changed
    stats = arm.stats()
    assert stats["throttled"] == 6  # 4 in a row on one GET: more than azure-core's default 3
    assert all(rule["remaining"] == 0 for rule in arm.faults())
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.stage == "promoted" and not info.exclude_from_latest


def test_a_persistent_server_error_fails_in_one_line_and_changes_nothing(arm, defined):
    with new_session(arm, client_options={"retry_total": 2, "retry_status": 2}) as session:
        gallery.ensure_image_definition(session, defined)
        _ready(session, defined, "1.0.0")
        arm.set_faults([{"kind": "error", "status": 500, "method": "PATCH",
                         "path": "/versions/1.0.0$", "count": None}])  # fmt: skip
        with pytest.raises(AzureError) as caught:
            promotion.promote(session, defined, "1.0.0", actor="rm")
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("updating image debian-12 version 1.0.0: InternalServerError:")
        arm.clear_faults()
        info = gallery.get_version(session, defined, "1.0.0")
        assert info.stage == "replicated" and info.exclude_from_latest
        assert promotion.promote(session, defined, "1.0.0", actor="rm").changed


# promote ----------------------------------------------------------------------------------


def test_promote_refuses_untested_failed_and_partly_replicated(session, defined):
    publish(session, defined, "1.0.0")  # built, untested
    with pytest.raises(GateError) as caught:
        promotion.promote(session, defined, "1.0.0", actor="rm")
    assert str(caught.value) == (
        "promote refused for image debian-12 version 1.0.0: stage is built, not tested or "
        "replicated; no passing test result is recorded; not replicated to northeurope, "
        "swedencentral"
    )
    publish(session, defined, "1.0.1", stage="failed", extra_tags=evidence_tags(10, 2))
    with pytest.raises(GateError, match="stage is failed, .*2 test\\(s\\) failed"):
        promotion.promote(session, defined, "1.0.1", actor="rm")
    _tested(session, defined, "1.0.2")
    with pytest.raises(GateError, match="not replicated to northeurope, swedencentral$"):
        promotion.promote(session, defined, "1.0.2", actor="rm")
    assert _publishing(session, defined, "1.0.2")["excludeFromLatest"] is True


def test_promote_then_promote_again_changes_nothing(arm, session, defined):
    _ready(session, defined, "1.0.0")
    result = promotion.promote(session, defined, "1.0.0", actor="rm@example.com", reason="CAB-7")
    assert result.changed and not result.forced
    assert (
        result.message == "promoted image debian-12 version 1.0.0 to latest in all target regions"
    )
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.stage == "promoted" and not info.exclude_from_latest and info.is_latest is False
    assert info.tags[tags.PROMOTED_BY] == "rm@example.com"
    assert info.tags[tags.REASON] == "CAB-7"
    assert info.tags[tags.PROMOTED_REGIONS] == "all"
    assert dt.datetime.fromisoformat(info.tags[tags.PROMOTED_AT].replace("Z", "+00:00"))
    assert [v.name for v in gallery.list_versions(session, defined) if v.is_latest] == ["1.0.0"]
    arm.reset_stats()
    again = promotion.promote(session, defined, "1.0.0", actor="someone-else")
    assert not again.changed
    assert again.message.startswith("image debian-12 version 1.0.0 is already promoted")
    assert "by rm@example.com" in again.message
    log = requests_since(arm)
    assert methods(log, "PATCH") == [] and methods(log, "PUT") == []


def test_force_needs_a_reason_and_is_recorded(session, defined):
    publish(session, defined, "1.0.0")
    with pytest.raises(ConfigError, match="--force needs --reason"):
        promotion.promote(session, defined, "1.0.0", force=True, actor="rm")
    result = promotion.promote(
        session, defined, "1.0.0", force=True, reason="hotfix for CVE-2026-1", actor="rm"
    )
    assert result.changed and result.forced
    assert "override: stage is built" in result.message
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.tags[tags.OVERRIDE].startswith("gate skipped: stage is built")
    assert info.tags[tags.REASON] == "hotfix for CVE-2026-1"
    assert not info.exclude_from_latest and info.stage == "promoted"


def test_staged_rollout_region_by_region(session, defined):
    _ready(session, defined, "1.0.0")
    first = promotion.promote(session, defined, "1.0.0", regions=["North Europe"], actor="rm")
    assert first.changed and first.regions == ("northeurope",)
    assert first.message.endswith("to latest in northeurope")
    publishing = _publishing(session, defined, "1.0.0")
    assert publishing["excludeFromLatest"] is False
    flags = {t["name"]: t["excludeFromLatest"] for t in publishing["targetRegions"]}
    assert flags == {"West Europe": True, "North Europe": False, "Sweden Central": True}
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.tags[tags.PROMOTED_REGIONS] == "northeurope"
    second = promotion.promote(session, defined, "1.0.0", regions=["westeurope"], actor="rm")
    assert second.regions == ("northeurope", "westeurope")
    assert gallery.get_version(session, defined, "1.0.0").tags[tags.PROMOTED_REGIONS] == (
        "northeurope,westeurope"
    )
    same = promotion.promote(session, defined, "1.0.0", regions=["westeurope"], actor="rm")
    assert not same.changed
    full = promotion.promote(session, defined, "1.0.0", actor="rm")
    assert full.changed
    flags = {
        t["excludeFromLatest"] for t in _publishing(session, defined, "1.0.0")["targetRegions"]
    }
    assert flags == {False}
    assert gallery.get_version(session, defined, "1.0.0").tags[tags.PROMOTED_REGIONS] == "all"


def test_invalid_region_names_are_one_line_errors(session, defined):
    _ready(session, defined, "1.0.0")
    with pytest.raises(ConfigError) as caught:
        promotion.promote(session, defined, "1.0.0", regions=["westeurop"], actor="rm")
    assert str(caught.value) == (
        "--regions: 'westeurop' is not an Azure region (target regions of image debian-12: "
        "westeurope, northeurope, swedencentral)"
    )
    with pytest.raises(ConfigError) as caught:
        promotion.promote(session, defined, "1.0.0", regions=["eastus"], actor="rm")
    assert "\n" not in str(caught.value)
    assert "region 'eastus' is not a target region of image debian-12" in str(caught.value)


# rollback ---------------------------------------------------------------------------------


def test_rollback_excludes_the_version_at_both_levels(session, defined):
    """GalleryRP's spec does not say whether the version's or a region's excludeFromLatest
    wins; a rolled-back version is excluded by both, so no reading keeps it latest."""
    for version in ("1.0.0", "1.0.1"):
        _ready(session, defined, version)
        promotion.promote(session, defined, version, actor="rm")
    promotion.rollback(session, defined, "1.0.1", actor="oncall")
    publishing = _publishing(session, defined, "1.0.1")
    assert publishing["excludeFromLatest"] is True
    assert [t["excludeFromLatest"] for t in publishing["targetRegions"]] == [True] * 3
    promotion.promote(session, defined, "1.0.0", actor="rm")  # still promoted: nothing to do
    assert _publishing(session, defined, "1.0.0")["excludeFromLatest"] is False


def test_rollback_refused_without_another_promoted_version(session, defined):
    _ready(session, defined, "1.0.0")
    promotion.promote(session, defined, "1.0.0", actor="rm")
    with pytest.raises(GateError) as caught:
        promotion.rollback(session, defined, "1.0.0", actor="rm")
    assert str(caught.value).startswith(
        "rollback refused: no other promoted version of debian-12 to fall back to"
    )
    assert not gallery.get_version(session, defined, "1.0.0").exclude_from_latest


def test_rollback_falls_back_to_the_previous_promoted_version(session, defined):
    for version in ("1.0.0", "1.0.1"):
        _ready(session, defined, version)
        promotion.promote(session, defined, version, actor="rm")
    result = promotion.rollback(session, defined, "1.0.1", actor="oncall", reason="boot loop")
    assert result.changed and result.latest_now == "1.0.0"
    assert result.message == "rolled back image debian-12 version 1.0.1: latest is now 1.0.0"
    info = gallery.get_version(session, defined, "1.0.1")
    assert info.exclude_from_latest and info.stage == "revoked"
    assert info.tags[tags.REVOKED_BY] == "oncall" and info.tags[tags.REASON] == "boot loop"
    assert [v.name for v in gallery.list_versions(session, defined) if v.is_latest] == ["1.0.0"]
    again = promotion.rollback(session, defined, "1.0.1", actor="oncall")
    assert not again.changed and again.latest_now == "1.0.0"
    with pytest.raises(GateError, match="promote refused .* stage is revoked"):
        promotion.promote(session, defined, "1.0.1", actor="rm")


# deprecate and prune ----------------------------------------------------------------------


def test_deprecate_sets_end_of_life(session, defined):
    publish(session, defined, "1.0.0")
    result = retention.deprecate(session, defined, "1.0.0", end_of_life=dt.date(2027, 6, 30))
    assert result.changed
    assert result.message == "image debian-12 version 1.0.0 reaches end of life on 2027-06-30"
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.end_of_life_date == dt.datetime(2027, 6, 30, tzinfo=dt.UTC)
    assert not retention.deprecate(
        session, defined, "1.0.0", end_of_life=dt.date(2027, 6, 30)
    ).changed


def _promoted_quickly(session: Session, image: ImageDefinition, version: str) -> None:
    publish(session, image, version, stage="promoted")
    site = session.site
    session.compute.gallery_image_versions.begin_update(
        site.resource_group, site.gallery, image.gallery_image.name, version,
        {"properties": {"publishingProfile": {"excludeFromLatest": False}, "storageProfile": {}}},
    ).result()  # fmt: skip


def test_prune_lists_then_deletes_by_policy_and_never_latest(arm, session, defined):
    publish(session, defined, "1.0.0")
    for version in ("1.0.1", "1.0.2", "1.0.3", "1.0.4"):
        _promoted_quickly(session, defined, version)
    publish(session, defined, "1.0.5")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    young = retention.prune(session, defined, keep=2, days=30)
    assert young.candidates == [] and young.message.startswith("nothing to prune")
    listed = retention.prune(session, defined, keep=2, days=30, now=later)
    assert listed.candidates == ["1.0.0", "1.0.1", "1.0.2", "1.0.5"]
    assert listed.deleted == []
    assert listed.message == (
        "would delete 4 version(s) of image debian-12: 1.0.0, 1.0.1, 1.0.2, 1.0.5 "
        "(run again with --yes to delete)"
    )
    assert len(gallery.list_versions(session, defined)) == 6
    only_latest = retention.prune(session, defined, keep=0, days=0, now=later)
    assert "1.0.4" not in only_latest.candidates  # the current latest, even with keep=0
    done = retention.prune(session, defined, keep=2, days=30, yes=True, now=later)
    assert done.deleted == ["1.0.0", "1.0.1", "1.0.2", "1.0.5"]
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.3", "1.0.4"]
    nothing = retention.prune(session, defined, keep=2, days=30, yes=True, now=later)
    assert nothing.deleted == [] and nothing.message == (
        "nothing to prune for image debian-12 (keep 2 newest promoted, anything younger than "
        "30 days, and latest)"
    )


# versions table ---------------------------------------------------------------------------


def test_versions_table_shows_stage_tests_regions_and_latest(session, defined):
    _ready(session, defined, "1.0.0")
    promotion.promote(session, defined, "1.0.0", actor="rm")
    publish(session, defined, "1.0.1", stage="failed", extra_tags=evidence_tags(3, 1))
    rows = release.versions_table(session, defined)
    assert [r.name for r in rows] == ["1.0.1", "1.0.0"]
    assert rows[1].regions == TARGETS and rows[1].is_latest
    console = Console(record=True, width=200, file=io.StringIO())
    show.render_versions("debian-12", rows, console)
    text = console.export_text()
    assert "1.0.0" in text and "promoted" in text and "12 passed, 0 failed" in text
    assert "northeurope Completed" in text and "yes" in text
    assert "1.0.1" in text and "3 passed, 1 failed" in text and "excluded" in text
    empty = Console(record=True, width=200, file=io.StringIO())
    show.render_versions("ubuntu-24.04", [], empty)
    assert "ubuntu-24.04: no versions in the gallery" in empty.export_text()


# cleanup ----------------------------------------------------------------------------------


def test_cleanup_deletes_only_expired_imageforge_groups(session, defined):
    groups = session.resource.resource_groups
    now = dt.datetime.now(dt.UTC)
    base = {tags.CREATED_BY: "imageforge", tags.RUN: "r1", tags.PURPOSE: "test"}
    suffix = session.site.resource_group
    wanted = {
        f"old-{suffix}": {**base, tags.EXPIRES: "2020-01-01T00:00:00Z"},
        f"fresh-{suffix}": {**base, tags.EXPIRES: (now + dt.timedelta(hours=3)).isoformat()},
        f"noexpiry-{suffix}": dict(base),
        f"foreign-{suffix}": {tags.EXPIRES: "2020-01-01T00:00:00Z"},
    }
    for name, group_tags in wanted.items():
        groups.create_or_update(name, {"location": "westeurope", "tags": group_tags})
    deleted = janitor.cleanup(session, now=now)
    assert f"old-{suffix}" in deleted
    assert not any(name.endswith(suffix) and not name.startswith("old-") for name in deleted)
    remaining = {g.name for g in groups.list()}
    assert f"old-{suffix}" not in remaining
    assert {f"fresh-{suffix}", f"noexpiry-{suffix}", f"foreign-{suffix}", suffix} <= remaining
    later = janitor.cleanup(session, now=now + dt.timedelta(hours=4))
    assert f"fresh-{suffix}" in later
    assert suffix in {g.name for g in groups.list()}  # the gallery's group is never touched


def test_cleanup_reclaims_at_once_a_group_whose_run_was_killed_on_this_machine(session, defined):
    """Not expired, but the process that made it is gone (SIGKILL leaves no chance to delete it):
    reclaimed now. A live owner, or one on another machine, waits for its expiry."""
    import subprocess

    from imageforge import owner

    me = owner.current()
    assert me is not None
    child = subprocess.Popen(["sleep", "30"])
    killed = dataclasses.replace(me, pid=child.pid, start=owner._start_ticks(child.pid)).tag()
    child.kill()
    child.wait()
    groups = session.resource.resource_groups
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = {tags.CREATED_BY: "imageforge", tags.RUN: "r2", tags.PURPOSE: "build",
            tags.EXPIRES: later}  # fmt: skip
    suffix = session.site.resource_group
    wanted = {
        f"killed-{suffix}": {**base, tags.OWNER: killed},
        f"alive-{suffix}": {**base, tags.OWNER: me.tag()},
        f"elsewhere-{suffix}": {
            **base,
            tags.OWNER: dataclasses.replace(me, machine="f" * 32).tag(),
        },
    }
    for name, group_tags in wanted.items():
        groups.create_or_update(name, {"location": "westeurope", "tags": group_tags})
    out = Console(file=io.StringIO(), width=200)
    deleted = janitor.cleanup(session, report=out.print)
    assert f"killed-{suffix}" in deleted
    assert f"alive-{suffix}" not in deleted and f"elsewhere-{suffix}" not in deleted
    assert f"deleted resource group killed-{suffix} (its run's process is gone)" in (
        out.file.getvalue()
    )


def test_images_with_other_targets(session, defined):
    """The version's own (gallery) region is kept even if the file no longer lists it."""
    _tested(session, defined, "1.0.0")
    narrowed = dataclasses.replace(
        defined,
        target_regions=tuple(r for r in defined.target_regions if r.name != "westeurope"),
    )
    result = replication.replicate(session, narrowed, "1.0.0")
    assert set(result.regions) == set(TARGETS)


def test_replicate_and_promote_fit_the_request_budget(arm, session, defined):
    _tested(session, defined, "1.0.0")
    arm.reset_stats()
    replication.replicate(session, defined, "1.0.0")
    promotion.promote(session, defined, "1.0.0", actor="rm")
    stats = arm.stats()
    assert stats["total"] < 30, [(e["method"], e["route"]) for e in stats["log"]]
    assert stats["failed"] == 0 and stats["throttled"] == 0
