"""The smoke evidence of each replica, as the promote gate reads it: a region whose replica
failed (or was never smoke-tested) is named and not promoted; the others still can be."""

from __future__ import annotations

import pytest
from azure_helpers import publish

from imageforge import tags
from imageforge.azure import evidence, gallery, promotion, replication
from imageforge.errors import GateError

TESTED = {tags.TESTS_PASSED: "12", tags.TESTS_FAILED: "0", tags.TESTS_ERRORS: "0"}


def _replicated_without_smoke(session, image, version):  # type: ignore[no-untyped-def]
    publish(session, image, version, stage="tested", extra_tags=TESTED)
    replication.replicate(session, image, version)
    return gallery.get_version(session, image, version)


def test_the_verdicts_are_recorded_per_region(session, defined):
    info = _replicated_without_smoke(session, defined, "1.0.0")
    assert evidence.smoke_regions(defined) == ["northeurope", "swedencentral"]
    assert evidence.smoke_verdict(7, 0, 0) == "passed 7 of 7"
    assert evidence.smoke_verdict(5, 2, 0, ["test_marker_file_exists"]) == (
        "failed 2 of 7: test_marker_file_exists"
    )
    after = evidence.record_smoke(
        session,
        defined,
        info,
        {"northeurope": "failed 1 of 7: x", "swedencentral": "passed 7 of 7"},
    )
    read = gallery.get_version(session, defined, "1.0.0")
    assert after.tags == read.tags
    assert read.tags["imageforge.smoke.northeurope"] == "failed 1 of 7: x"
    assert read.tags["imageforge.smoke.swedencentral"] == "passed 7 of 7"


def test_a_version_never_smoke_tested_is_not_promoted_where_it_was_not(session, defined):
    _replicated_without_smoke(session, defined, "1.0.0")
    with pytest.raises(GateError) as caught:
        promotion.promote(session, defined, "1.0.0", actor="rm")
    assert str(caught.value) == (
        "promote refused for image debian-12 version 1.0.0: no smoke test of the replica in "
        "northeurope, swedencentral (invoke smoke-test)"
    )
    # the build region needs none: the full suite ran on the version there
    staged = promotion.promote(session, defined, "1.0.0", regions=["westeurope"], actor="rm")
    assert staged.changed and staged.regions == ("westeurope",)


def test_a_failed_region_is_named_and_the_others_still_go(session, defined):
    info = _replicated_without_smoke(session, defined, "1.0.0")
    evidence.record_smoke(
        session, defined, info,
        {"northeurope": "failed 3 of 7: test_marker_file_exists", "swedencentral": "passed 7 of 7"},
    )  # fmt: skip
    for regions in (None, ["northeurope"], ["swedencentral", "northeurope"]):
        with pytest.raises(GateError, match="smoke test failed in northeurope$"):
            promotion.promote(session, defined, "1.0.0", regions=regions, actor="rm")
    assert gallery.get_version(session, defined, "1.0.0").exclude_from_latest
    went = promotion.promote(
        session, defined, "1.0.0", regions=["westeurope", "swedencentral"], actor="rm"
    )
    assert went.changed and went.regions == ("swedencentral", "westeurope")
    info = gallery.get_version(session, defined, "1.0.0")
    excluded = {t.region: t.exclude_from_latest for t in info.targets}
    assert excluded == {"westeurope": False, "swedencentral": False, "northeurope": True}
    forced = promotion.promote(
        session, defined, "1.0.0", force=True, reason="replica rebuilt by hand", actor="rm"
    )
    assert forced.forced and "smoke test failed in northeurope" in forced.message
