"""Previews: versions published with shallow replication (`invoke build --preview`). Azure
cannot change a version's replicationMode, so a preview is never replicated or promoted (no
override), and prune lets previews go by their own age limit."""

from __future__ import annotations

import datetime as dt

import pytest
from azure_helpers import evidence_tags, publish

from imageforge import tags
from imageforge.azure import evidence, gallery, promotion, replication, retention
from imageforge.errors import GateError


def _preview(session, image, version):  # type: ignore[no-untyped-def]
    publish(
        session, image, version, stage="tested", mode="Shallow",
        extra_tags={**evidence_tags(), tags.PREVIEW: "true"},
    )  # fmt: skip
    return gallery.get_version(session, image, version)


def test_a_preview_is_read_as_one_and_fails_the_gate(session, defined):
    info = _preview(session, defined, "1.0.0")
    assert info.is_preview and info.replication_mode == "Shallow"
    assert evidence.PREVIEW_REFUSED in evidence.gate_problems(defined, info)
    publish(session, defined, "1.0.1", stage="tested", extra_tags=evidence_tags())
    full = gallery.get_version(session, defined, "1.0.1")
    assert not full.is_preview and full.replication_mode == "Full"


def test_promote_refuses_a_preview_even_with_force_and_changes_nothing(session, defined):
    _preview(session, defined, "1.0.0")
    before = gallery.get_version(session, defined, "1.0.0")
    for force in (False, True):
        with pytest.raises(GateError) as caught:
            promotion.promote(
                session, defined, "1.0.0", force=force, reason="ship it" if force else None,
                actor="rm",
            )  # fmt: skip
        message = str(caught.value)
        assert message.startswith("promote refused for image debian-12 version 1.0.0: it is a")
        assert "preview" in message and "\n" not in message
    after = gallery.get_version(session, defined, "1.0.0")
    assert after.tags == before.tags and after.exclude_from_latest


def test_a_preview_is_not_replicated(session, defined):
    _preview(session, defined, "1.0.0")
    with pytest.raises(GateError, match="is a preview .* not replicated"):
        replication.replicate(session, defined, "1.0.0")
    assert gallery.get_version(session, defined, "1.0.0").target_names == ["westeurope"]


def test_prune_lets_previews_go_by_their_own_age_and_keeps_the_rest(session, defined):
    publish(session, defined, "1.0.0", stage="promoted", extra_tags=evidence_tags())
    _preview(session, defined, "1.0.1")
    _preview(session, defined, "1.0.2")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    early = retention.prune(session, defined, keep=3, days=30, now=soon, preview_days=7)
    assert early.candidates == [] and "previews until 7 days old" in early.message
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)
    plan = retention.prune(session, defined, keep=3, days=30, now=later, preview_days=7)
    assert plan.candidates == ["1.0.1", "1.0.2"] and plan.deleted == []
    done = retention.prune(session, defined, keep=3, days=30, yes=True, now=later, preview_days=7)
    assert done.deleted == ["1.0.1", "1.0.2"]
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.0"]
