"""`invoke outdated` on gallery data shaped as Azure keeps it, in the emulator: several images,
one never promoted, one pinned to a base version, one whose base the marketplace lacks."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from azure_helpers import evidence_tags, load_image, publish

from imageforge import outdated, tags
from imageforge.azure import gallery, marketplace
from imageforge.config import BaseImageRef
from imageforge.errors import ConfigError


def _definition(session, image):  # type: ignore[no-untyped-def]
    gallery.ensure_gallery(session)
    gallery.ensure_image_definition(session, image)
    return image


def _promoted(session, image, version: str, base: str | None) -> None:  # type: ignore[no-untyped-def]
    extra = {**evidence_tags(), **({tags.BASE_IMAGE_VERSION: base} if base else {})}
    publish(session, image, version, stage="promoted", extra_tags=extra)


def _image(name: str, **base):  # type: ignore[no-untyped-def]
    image = load_image("debian-12")
    gallery_image = dataclasses.replace(image.gallery_image, name=name)
    return dataclasses.replace(
        image,
        name=name,
        gallery_image=gallery_image,
        base_image=dataclasses.replace(image.base_image, **base),
    )


def test_outdated_over_several_images(arm, session):
    newest = marketplace.newest(session, load_image("debian-12"))
    old = "0.20200101.1"
    fresh = _definition(session, _image("fresh"))
    _promoted(session, fresh, "1.0.0", old)
    _promoted(session, fresh, "1.0.1", newest)
    stale = _definition(session, _image("stale"))
    _promoted(session, stale, "2.0.0", old)
    publish(session, stale, "2.0.1", stage="tested", extra_tags={tags.BASE_IMAGE_VERSION: newest})
    never = _definition(session, _image("never"))
    publish(session, never, "1.0.0", stage="replicated")
    unrecorded = _definition(session, _image("unrecorded"))
    _promoted(session, unrecorded, "1.0.0", "latest")
    pinned = _definition(session, _image("pinned", version=old))
    _promoted(session, pinned, "1.0.0", old)
    repinned = _definition(session, _image("repinned", version=newest))
    _promoted(session, repinned, "1.0.0", old)

    images = [fresh, stale, never, unrecorded, pinned, repinned]
    rows = {r.image: r for r in outdated.check_all(session, images, max_age_days=30)}
    assert not rows["fresh"].outdated and rows["fresh"].promoted == "1.0.1"
    assert rows["stale"].reasons == (f"2.0.0 is built from base {old}; {newest} is out",)
    assert rows["never"].reasons == ("no promoted version",)
    assert rows["unrecorded"].reasons == ("1.0.0 does not record its base version (latest)",)
    assert not rows["pinned"].outdated  # pinned to the base it was built from: up to date
    assert rows["repinned"].reasons == (
        f"1.0.0 is built from base {old}; debian-12.pkrvars.hcl pins {newest}",
    )
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    aged = outdated.check(session, fresh, max_age_days=30, now=later)
    assert aged.reasons == ("1.0.1 is 31 days old (max_age_days 30)",)
    data = outdated.as_json([rows["stale"]])
    assert '"outdated": true' in data and '"newest_base"' in data


def test_an_unknown_base_sku_is_a_one_line_error(session):
    unknown = _image("unknown", sku="13-gen2")
    with pytest.raises(ConfigError) as caught:
        outdated.check(session, unknown, max_age_days=30, now=dt.datetime.now(dt.UTC))
    assert str(caught.value) == (
        "debian-12.pkrvars.hcl: base_image Debian:debian-12:13-gen2 does not exist in westeurope "
        "(no publisher, offer or sku of that name lists a version there)"
    )


def test_resolve_pins_latest_and_checks_a_requested_version(session):
    image = load_image("debian-12")
    names = marketplace.versions(session, image)
    assert marketplace.resolve(session, image) == names[-1]
    assert marketplace.resolve(session, image, names[0]) == names[0]
    with pytest.raises(ConfigError, match=r"^--base-version '9\.9\.9': Debian:debian-12:12-gen2 "):
        marketplace.resolve(session, image, "9.9.9")
    pinned = dataclasses.replace(
        image, base_image=BaseImageRef("Debian", "debian-12", "12-gen2", "1.2.3")
    )
    with pytest.raises(ConfigError, match=r"^debian-12.pkrvars.hcl: base_image.version '1\.2\.3'"):
        marketplace.resolve(session, pinned)


def test_the_table_shows_whole_versions_and_the_reasons_below_it():
    import io

    from rich.console import Console

    rows = [
        outdated.Freshness("debian-12-hardened", "1.0.0", "0.20261201.2133", "0.29990101.1", 3,
                           ("1.0.0 is built from base 0.20261201.2133; 0.29990101.1 is out",)),
        outdated.Freshness("debian-12", "1.0.1", "0.29990101.1", "0.29990101.1", 0, ()),
    ]  # fmt: skip
    console = Console(file=io.StringIO(), width=160)
    outdated.render(rows, console)
    text = console.file.getvalue()
    row = next(line for line in text.splitlines() if "debian-12-hardened" in line and "│" in line)
    assert "0.20261201.2133" in row and "0.29990101.1" in row and "yes" in row
    assert (
        "debian-12-hardened: 1.0.0 is built from base 0.20261201.2133; 0.29990101.1 is out"
        in text.splitlines()
    )
