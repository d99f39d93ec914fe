"""imageforge's CanNotDelete lock on the gallery's resource group (imageforge.azure.locks),
through the real SDK clients against the emulator, which refuses deletes under it as ARM does
(409 ScopeLocked): ensure and remove, the lift around prune's deletes (restored after an error
and after Ctrl-C, the lift recorded in a tag meanwhile), the builtin profile's managed image
cleanup, rollback (a PATCH) under the lock, and the build's prepare_gallery.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from azure_helpers import evidence_tags, managed_image_id, publish

from imageforge import tags
from imageforge.azure import gallery, locks, promotion, replication, retention, tagsapi
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError
from imageforge.pipeline import build as building
from imageforge.pipeline.hosts import delete_managed_image

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)


def _group_tags(session: Session) -> dict[str, str]:
    return tagsapi.read_at(session, locks.group_scope(session))


def _promoted(session: Session, image: ImageDefinition, version: str) -> None:
    publish(session, image, version, stage="promoted")
    site = session.site
    session.compute.gallery_image_versions.begin_update(
        site.resource_group, site.gallery, image.gallery_image.name, version,
        {"properties": {"publishingProfile": {"excludeFromLatest": False}, "storageProfile": {}}},
    ).result()  # fmt: skip


def _locked_and_untagged(session: Session) -> None:
    lock = locks.read(session)
    assert lock is not None and lock.level == "CanNotDelete" and lock.notes == locks.NOTES
    assert locks.LIFTED_TAG not in _group_tags(session)


def test_ensure_is_idempotent_and_remove_says_when_there_is_none(session, defined):
    group = session.site.resource_group
    assert locks.read(session) is None
    made = locks.ensure(session)
    assert made.changed
    assert made.message == f"locked resource group {group}: CanNotDelete lock imageforge-gallery"
    again = locks.ensure(session)
    assert not again.changed
    assert again.message == (
        f"resource group {group} is already locked (CanNotDelete lock imageforge-gallery)"
    )
    _locked_and_untagged(session)
    removed = locks.remove(session)
    assert removed.changed and removed.message == (
        f"removed lock imageforge-gallery from resource group {group}"
    )
    assert locks.read(session) is None
    nothing = locks.remove(session)
    assert not nothing.changed and nothing.message == (
        f"resource group {group} has no lock imageforge-gallery; nothing to do"
    )


def test_the_lock_refuses_a_delete_that_is_not_lifted(session, defined):
    publish(session, defined, "1.0.0")
    locks.ensure(session)
    with pytest.raises(AzureError, match="ScopeLocked: .* cannot perform delete operation"):
        gallery.delete_versions(session, defined, ["1.0.0"])
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.0"]


def test_prune_yes_under_the_lock_deletes_and_puts_the_lock_back(arm, session, defined):
    publish(session, defined, "1.0.0")
    for version in ("1.0.1", "1.0.2"):
        _promoted(session, defined, version)
    locks.ensure(session)
    arm.reset_stats()
    done = retention.prune(session, defined, keep=1, days=30, yes=True, now=LATER, actor="rm")
    assert done.deleted == ["1.0.0", "1.0.1"]
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.2"]
    _locked_and_untagged(session)
    # the lift was recorded before the lock went, and the lock was back before the tag went
    steps = []
    for entry in arm.stats()["log"]:
        method, path = entry["method"], entry["path"].lower()
        kind = "lock" if "/locks/" in path else "tags" if path.endswith("/tags/default") else ""
        kind = "version" if "/versions/" in path and method == "DELETE" else kind
        if kind and method != "GET":
            steps.append(f"{method} {kind}")
    assert steps == [
        "PATCH tags", "DELETE lock", "DELETE version", "DELETE version", "PUT lock", "PATCH tags",
    ]  # fmt: skip


def test_the_lift_is_tagged_while_it_lasts(session, defined):
    locks.ensure(session)
    with locks.lifted(session, actor="rm@example.com", why="prune") as lifted:
        assert lifted is not None and lifted.name == "imageforge-gallery"
        assert locks.read(session) is None
        actor, stamp, why = _group_tags(session)[locks.LIFTED_TAG].split(" ")
        assert (actor, why) == ("rm@example.com", "prune")
        assert abs(dt.datetime.fromisoformat(stamp) - dt.datetime.now(dt.UTC)).seconds < 60
    _locked_and_untagged(session)


def test_an_error_mid_prune_still_puts_the_lock_back(arm, session, defined):
    publish(session, defined, "1.0.0")
    publish(session, defined, "1.0.1")
    locks.ensure(session)
    arm.set_faults([{"kind": "lro_failed", "method": "DELETE", "path": "/versions/1.0.1$",
                     "message": "The platform refused the delete."}])  # fmt: skip
    with pytest.raises(AzureError, match=r"prune deleted 1 of 2 version\(s\); .*1\.0\.1"):
        retention.prune(session, defined, keep=0, days=0, yes=True, now=LATER)
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.1"]
    _locked_and_untagged(session)


def test_ctrl_c_inside_the_lift_still_puts_the_lock_back(session, defined):
    locks.ensure(session)
    with pytest.raises(KeyboardInterrupt):
        with locks.lifted(session, actor="rm", why="prune"):
            assert locks.read(session) is None
            raise KeyboardInterrupt
    _locked_and_untagged(session)


def test_lifts_in_threads_nest_and_the_last_one_restores(session, defined):
    locks.ensure(session)
    inside, release = threading.Barrier(2), threading.Event()
    seen: list[object] = []

    def worker() -> None:
        with locks.lifted(session, actor="builder", why="managed image cleanup"):
            inside.wait(timeout=30)
            release.wait(timeout=30)

    other = threading.Thread(target=worker)
    other.start()
    with locks.lifted(session, actor="builder", why="managed image cleanup"):
        inside.wait(timeout=30)
        release.set()
        other.join(timeout=30)
        seen.append(locks.read(session))  # the other thread is done: still lifted for this one
    assert seen == [None]
    _locked_and_untagged(session)


def test_no_lock_means_nothing_to_lift_and_no_tag(session, defined):
    with locks.lifted(session, actor="rm", why="prune") as lifted:
        assert lifted is None
        assert locks.LIFTED_TAG not in _group_tags(session)
    assert locks.read(session) is None


def test_ensure_clears_the_tag_of_a_lift_a_killed_run_left(session, defined):
    tagsapi.merge_at(session, locks.group_scope(session), {locks.LIFTED_TAG: "rm 2026 prune"})
    made = locks.ensure(session)
    assert made.message.endswith("; removed the imageforge.lock-lifted tag an interrupted run left")
    _locked_and_untagged(session)


def test_rollback_is_a_patch_and_works_under_the_lock(session, defined):
    for version in ("1.0.0", "1.0.1"):
        publish(session, defined, version, stage="tested", extra_tags=evidence_tags())
        replication.replicate(session, defined, version)
        promotion.promote(session, defined, version, actor="rm")
    locks.ensure(session)
    result = promotion.rollback(session, defined, "1.0.1", actor="oncall", reason="boot loop")
    assert result.changed and result.latest_now == "1.0.0"
    info = gallery.get_version(session, defined, "1.0.1")
    assert info.exclude_from_latest and info.tags[tags.STAGE] == "revoked"
    _locked_and_untagged(session)


def test_the_builtin_profiles_managed_image_is_deleted_under_the_lock(session, defined):
    image_id = managed_image_id(session, defined)
    locks.ensure(session)
    delete_managed_image(session, image_id)
    names = [i.name for i in session.compute.images.list_by_resource_group(
        session.site.resource_group)]  # fmt: skip
    assert image_id.rsplit("/", 1)[1] not in names
    _locked_and_untagged(session)


def test_build_prepares_the_lock_with_the_gallery_unless_the_site_says_no(session, defined):
    building.prepare_gallery(session, [defined])
    _locked_and_untagged(session)
    locks.remove(session)
    unlocked = Session(
        dataclasses.replace(session.site, lock_gallery=False),
        session.target, session.subscription_id, session.credential,
        base_url=session.base_url, connection_verify=session.connection_verify,
    )  # fmt: skip
    building.prepare_gallery(unlocked, [defined])
    assert locks.read(session) is None
