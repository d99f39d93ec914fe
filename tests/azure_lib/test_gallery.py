"""Gallery, image definition, versions and their tags, through the SDK against the emulator."""

from __future__ import annotations

import dataclasses

import pytest
from azure_helpers import load_image, methods, publish, requests_since

from imageforge import tags
from imageforge.azure import gallery, ids
from imageforge.azure.records import replication_of
from imageforge.config import GalleryImageSpec
from imageforge.errors import AzureError, ConfigError, NotFoundError, VersionError
from imageforge.versions import Version


def test_ensure_gallery_and_definition_create_once(arm, session, image):
    gallery.ensure_gallery(session)
    definition_id = gallery.ensure_image_definition(session, image)
    site = session.site
    assert definition_id == ids.definition_id(session, image)
    created = session.compute.gallery_images.get(site.resource_group, "gallery", "debian-12")
    props = created.as_dict()["properties"]
    assert props["osType"] == "Linux"
    assert props["osState"] == "Generalized"
    assert props["hyperVGeneration"] == "V2"
    assert props["architecture"] == "x64"
    assert props["identifier"] == {"publisher": "imageforge", "offer": "debian", "sku": "12-gen2"}
    assert props["features"] == [{"name": "SecurityType", "value": "TrustedLaunchSupported"}]
    assert created.tags[tags.IMAGE] == "debian-12"
    assert created.tags[tags.CREATED_BY] == "imageforge"
    assert created.tags["owner"] == "imageforge-tests"
    group = session.resource.resource_groups.get(site.resource_group)
    assert group.location == "westeurope"
    arm.reset_stats()
    gallery.ensure_gallery(session)
    gallery.ensure_image_definition(session, image)
    log = requests_since(arm)
    assert [e["method"] for e in log] == ["GET", "GET", "GET"], log


def test_definition_created_when_only_it_is_missing(session, image):
    gallery.ensure_image_definition(session, image)  # creates group and gallery on the way
    assert session.compute.galleries.get(session.site.resource_group, "gallery").location


def test_changing_an_immutable_field_is_refused_in_one_line(session, image):
    gallery.ensure_gallery(session)
    gallery.ensure_image_definition(session, image)
    gen1 = dataclasses.replace(
        image,
        gallery_image=dataclasses.replace(image.gallery_image, hyper_v_generation="V1"),
    )
    with pytest.raises(ConfigError) as caught:
        gallery.ensure_image_definition(session, gen1)
    message = str(caught.value)
    assert "\n" not in message
    assert "refusing to change gallery image debian-12" in message
    assert "hyperVGeneration is 'V2' in the gallery but 'V1' in the image file" in message
    assert "debian-12.pkrvars.hcl" in message
    other_sku = dataclasses.replace(
        image, gallery_image=GalleryImageSpec(**{**vars(image.gallery_image), "sku": "other"})
    )
    with pytest.raises(ConfigError, match=r"identifier.sku is '12-gen2' .* but 'other'"):
        gallery.ensure_image_definition(session, other_sku)
    trusted = dataclasses.replace(
        image,
        gallery_image=dataclasses.replace(image.gallery_image, security_type="TrustedLaunch"),
    )
    with pytest.raises(ConfigError, match="features.SecurityType"):
        gallery.ensure_image_definition(session, trusted)


def test_list_and_get_versions_with_azure_latest(session, defined):
    publish(session, defined, "1.0.0")
    publish(session, defined, "1.0.2", stage="promoted")
    publish(session, defined, "1.0.10")
    site = session.site
    for name in ("1.0.0", "1.0.2"):
        session.compute.gallery_image_versions.begin_update(
            site.resource_group,
            "gallery",
            "debian-12",
            name,
            {
                "properties": {
                    "publishingProfile": {"excludeFromLatest": False},
                    "storageProfile": {},
                }
            },
        ).result()
    versions = gallery.list_versions(session, defined)
    assert [v.name for v in versions] == ["1.0.0", "1.0.2", "1.0.10"]
    assert [v.is_latest for v in versions] == [False, True, False]
    assert versions[1].stage == "promoted"
    assert versions[2].exclude_from_latest is True
    assert versions[0].regions == {"westeurope": "Unknown"}
    info = gallery.get_version(session, defined, "1.0.2")
    assert info.version == Version(1, 0, 2)
    assert info.regions == {"westeurope": "Completed"}
    assert info.published_date is not None and info.published_date.tzinfo is not None
    assert info.id.endswith("/images/debian-12/versions/1.0.2")
    by_id = gallery.get_version(session, defined, info.id)
    assert by_id.name == "1.0.2"
    assert gallery.GalleryVersionSource(session).existing_versions("debian-12") == [
        Version(1, 0, 0),
        Version(1, 0, 2),
        Version(1, 0, 10),
    ]
    status = replication_of(gallery.get_version(session, defined, "1.0.10"))
    assert status.aggregated == "Completed" and status.states == {"westeurope": "Completed"}


def test_unknown_version_and_image_are_one_line_not_found(session, defined):
    publish(session, defined, "1.0.0")
    with pytest.raises(NotFoundError) as caught:
        gallery.get_version(session, defined, "9.9.9")
    assert str(caught.value) == (
        f"image debian-12 has no version 9.9.9 in gallery gallery (resource group "
        f"{session.site.resource_group})"
    )
    missing = load_image("ubuntu-24.04")
    with pytest.raises(
        NotFoundError,
        match=r"gallery image ubuntu-24.04 \(image ubuntu-24.04\) "
        "does not exist",
    ):
        gallery.get_version(session, missing, "1.0.0")
    with pytest.raises(NotFoundError, match="does not exist"):
        gallery.list_versions(session, missing)
    assert gallery.GalleryVersionSource(session).existing_versions("ubuntu-24.04") == []
    with pytest.raises(VersionError, match="invalid version 'latest'"):
        gallery.get_version(session, defined, "latest")


def test_a_version_of_another_image_is_named(session, defined):
    ubuntu = load_image("ubuntu-24.04")
    gallery.ensure_image_definition(session, ubuntu)
    publish(session, ubuntu, "2.0.0")
    with pytest.raises(NotFoundError) as caught:
        gallery.get_version(session, defined, "2.0.0")
    assert "image debian-12 has no version 2.0.0" in str(caught.value)
    assert "(2.0.0 is a version of gallery image ubuntu-24.04)" in str(caught.value)
    other_id = gallery.get_version(session, ubuntu, "2.0.0").id
    with pytest.raises(
        NotFoundError, match="belongs to gallery image ubuntu-24.04 .* not to image debian-12"
    ):
        gallery.get_version(session, defined, other_id)
    with pytest.raises(VersionError, match="not a gallery image version id"):
        gallery.get_version(session, defined, "/subscriptions/x/nope")


def test_a_version_tagged_for_another_image_is_a_mismatch(session, defined):
    publish(session, defined, "1.0.0", extra_tags={tags.IMAGE: "debian-12-hardened"})
    with pytest.raises(AzureError, match="built for image debian-12-hardened, not debian-12"):
        gallery.get_version(session, defined, "1.0.0")


def test_version_tags_merge_and_delete_only_named_keys(arm, session, defined):
    publish(session, defined, "1.0.0", extra_tags={"keep": "me", "drop": "x"})
    arm.reset_stats()
    result = gallery.set_version_tags(
        session, defined, "1.0.0", {tags.STAGE: "tested", "drop": None, "new": 3}
    )
    assert result == {
        tags.IMAGE: "debian-12",
        tags.STAGE: "tested",
        "keep": "me",
        "new": "3",
    }
    log = requests_since(arm)
    patches = methods(log, "PATCH", "/providers/Microsoft.Resources/tags/default")
    assert len(patches) == 2  # one Merge, one Delete; nothing else written
    assert not methods(log, "PUT") and len(methods(log, "PATCH")) == 2
    info = gallery.get_version(session, defined, "1.0.0")
    assert info.tags == result
    with pytest.raises(ConfigError, match="at most 50 tags"):
        gallery.set_version_tags(session, defined, info, {f"t{n}": "v" for n in range(50)})
    with pytest.raises(ConfigError, match="not allowed by Azure"):
        gallery.set_version_tags(session, defined, info, {"a/b": "v"})
    long_value = gallery.set_version_tags(session, defined, info, {"long": "x" * 300})["long"]
    assert len(long_value) == 256


def test_tags_can_be_written_while_the_version_replicates(session, defined, tmp_path):
    from imageforge.sandbox.harness import running_emulator

    with running_emulator(tmp_path / "paced", replication_seconds=1.0) as paced:
        from azure_helpers import new_session

        with new_session(paced) as slow:
            gallery.ensure_image_definition(slow, defined)
            publish(slow, defined, "1.0.0", regions=["westeurope", "northeurope"], wait=False)
            busy = gallery.get_version(slow, defined, "1.0.0")
            assert busy.provisioning_state == "Creating"
            updated = gallery.set_version_tags(slow, defined, busy, {tags.REPORT_DIGEST: "abc"})
            assert updated[tags.REPORT_DIGEST] == "abc"
