"""The azure target with an image file's ``managed_image = true``, on both profiles.

Same set-up as test_azure_target.py (its ``build`` fixture: the Packer stand-in making
azure-arm's ARM calls against the emulator, everything else imageforge's own code): builtin
keeps the managed image Packer 1.6 makes on the way to the gallery instead of deleting it, the
plugin profile makes one because the rendered source asks for it, and either way the version
records its id (tag ``imageforge.managed-image``), which prune then deletes with the version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from test_azure_target import GROUP, Build, build  # noqa: F401 - build is the fixture

from imageforge import tags
from imageforge.azure import gallery, locks, retention

MANAGED = "imageforge-debian-12-1-0-0"


def _managed_id(b: Build) -> str:
    return (
        f"/subscriptions/{b.arm.subscription_id}/resourceGroups/{GROUP}"
        f"/providers/Microsoft.Compute/images/{MANAGED}"
    )


@pytest.fixture
def asked(build: Build) -> Build:  # noqa: F811 - the fixture imported above
    build.image = dataclasses.replace(build.image, managed_image=True)
    return build


@pytest.mark.parametrize("profile", ["builtin", "plugin"])
def test_the_managed_image_is_kept_and_recorded_on_the_version(asked: Build, profile: str):
    outcome = asked.run(profile)

    assert outcome.ok, outcome.error
    assert asked.managed_images() == [_managed_id(asked)]  # kept, not deleted
    info = gallery.get_version(asked.session, asked.image, "1.0.0")
    assert info.tags[tags.MANAGED_IMAGE].lower() == _managed_id(asked).lower()
    assert info.stage == "built" and info.exclude_from_latest
    text = (asked.out_dir / "sources.pkr.hcl").read_text()
    assert re.search(r"\n  managed_image_name\s+= local\.managed_image_name\n", text), text
    assert "kept" in text

    # prune deleting the version deletes its managed image too, under the group's lock
    locks.ensure(asked.session)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    done = retention.prune(asked.session, asked.image, keep=0, days=0, yes=True, now=later)
    assert done.deleted == ["1.0.0"]
    assert done.message.endswith(f"; and their managed image(s): {MANAGED}")
    assert asked.managed_images() == []


def test_without_the_key_builtin_still_deletes_it_and_records_nothing(build: Build):  # noqa: F811
    outcome = build.run("builtin")
    assert outcome.ok, outcome.error
    assert build.managed_images() == []
    info = gallery.get_version(build.session, build.image, "1.0.0")
    assert tags.MANAGED_IMAGE not in info.tags


def test_a_plugin_build_stopped_after_its_managed_image_can_be_retried(
    asked: Build, monkeypatch: pytest.MonkeyPatch
):
    """The plugin refuses to overwrite a managed image, so the leftover of a stopped run must
    go before the next Packer run, as on builtin."""
    monkeypatch.setenv("IMAGEFORGE_STANDIN_FAIL", "after-capture")
    first = asked.run("plugin")
    assert not first.ok and first.version == "1.0.0"
    assert asked.managed_images() == []  # the failed build's image went with it
    monkeypatch.delenv("IMAGEFORGE_STANDIN_FAIL")

    second = asked.run("plugin")

    assert second.ok, second.error
    assert asked.managed_images() == [_managed_id(asked)]
