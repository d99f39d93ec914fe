"""Managed images kept with versions (an image file's ``managed_image = true``), against the
emulator through the real SDK clients: the capture makes one from the build VM and records it
on the version; prune deletes it with the version, under the gallery group's lock.

The inert backend is enough here (ARM bookkeeping: the VM's generalization and the image's
source are what Azure checks); test_managed_images_sandbox.py builds one on real machines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from azure_helpers import publish

from imageforge import tags
from imageforge.azure import buildvm, gallery, locks, managedimages, retention, tagsapi, testvm
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)


def _images(session: Session) -> list[str]:
    return sorted(str(i.name) for i in session.compute.images.list_by_resource_group(
        session.site.resource_group))  # fmt: skip


def _recorded_image(session: Session, name: str) -> str:
    """A managed image recorded from a (blob) OS disk: one a version could be tagged with."""
    body = {
        "location": session.site.location,
        "properties": {
            "hyperVGeneration": "V2",
            "storageProfile": {
                "osDisk": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "blobUri": f"https://sandbox.blob.core.windows.net/vhds/{name}.vhd",
                }
            },
        },
    }
    group = session.site.resource_group
    return str(session.compute.images.begin_create_or_update(group, name, body).result().id)


def _promoted(session: Session, image: ImageDefinition, version: str, **kw: object) -> None:
    publish(session, image, version, stage="promoted", **kw)  # type: ignore[arg-type]
    site = session.site
    session.compute.gallery_image_versions.begin_update(
        site.resource_group, site.gallery, image.gallery_image.name, version,
        {"properties": {"publishingProfile": {"excludeFromLatest": False}, "storageProfile": {}}},
    ).result()  # fmt: skip


# capture ------------------------------------------------------------------------------------


def test_capture_with_managed_image_makes_it_from_the_vm_and_tags_the_version(session, defined):
    wanted = dataclasses.replace(defined, managed_image=True)
    with testvm.sandbox_build_vm(session, wanted, run_id="mi-1", wait=False) as vm:
        info = buildvm.capture(
            session, wanted, "1.0.0", vm, tags={tags.STAGE: "built", tags.SOURCE_COMMIT: "abc"}
        )
        vm_id = vm.vm_id
    group = session.site.resource_group
    made = session.compute.images.get(group, "imageforge-debian-12-1-0-0")
    assert made.source_virtual_machine.id.lower() == vm_id.lower()
    assert made.location == "westeurope"
    assert made.storage_profile.os_disk.os_state == "Generalized"
    assert made.tags[tags.IMAGE] == "debian-12" and made.tags[tags.SOURCE_COMMIT] == "abc"
    assert tags.STAGE not in made.tags  # a stage is the version's, not the image's
    assert info.tags[tags.MANAGED_IMAGE] == made.id
    assert info.tags[tags.STAGE] == "built"
    again = gallery.get_version(session, defined, "1.0.0")
    assert (
        again.tags[tags.MANAGED_IMAGE]
        == made.id
        == managedimages.image_id(session, "imageforge-debian-12-1-0-0")
    )
    # the version itself still comes straight from the VM
    source = session.compute.gallery_image_versions.get(
        group, session.site.gallery, "debian-12", "1.0.0"
    ).storage_profile.source
    assert source.virtual_machine_id.lower() == vm_id.lower()


def test_capture_without_the_key_makes_no_managed_image(session, defined):
    with testvm.sandbox_build_vm(session, defined, run_id="mi-2", wait=False) as vm:
        info = buildvm.capture(session, defined, "1.0.0", vm, tags={})
    assert tags.MANAGED_IMAGE not in info.tags
    assert _images(session) == []


def test_a_version_that_cannot_be_created_takes_its_managed_image_with_it(arm, session, defined):
    wanted = dataclasses.replace(defined, managed_image=True)
    locks.ensure(session)
    with testvm.sandbox_build_vm(session, wanted, run_id="mi-3", wait=False) as vm:
        arm.set_faults([{"kind": "lro_failed", "method": "PUT",
                         "path": "/versions/1.0.0$", "count": 1}])  # fmt: skip
        with pytest.raises(AzureError, match="1.0.0"):
            buildvm.capture(session, wanted, "1.0.0", vm, tags={})
    assert _images(session) == []
    # the failed create leaves a Failed version, as Azure does; prune finds its image gone
    assert [v.provisioning_state for v in gallery.list_versions(session, defined)] == ["Failed"]
    lock = locks.read(session)  # the delete ran with the lock lifted, and it is back
    assert lock is not None and lock.level == "CanNotDelete"
    assert locks.LIFTED_TAG not in tagsapi.read_at(session, locks.group_scope(session))


# prune --------------------------------------------------------------------------------------


def test_prune_yes_deletes_the_managed_images_of_the_versions_it_deletes(arm, session, defined):
    old = _recorded_image(session, "imageforge-debian-12-1-0-0")
    kept = _recorded_image(session, "imageforge-debian-12-1-0-2")
    gone = managedimages.image_id(session, "imageforge-debian-12-1-0-1")  # never existed
    publish(session, defined, "1.0.0", extra_tags={tags.MANAGED_IMAGE: old})
    publish(session, defined, "1.0.1", extra_tags={tags.MANAGED_IMAGE: gone})
    _promoted(session, defined, "1.0.2", extra_tags={tags.MANAGED_IMAGE: kept})
    locks.ensure(session)  # deleting an image in the gallery's group needs the lift as well

    done = retention.prune(session, defined, keep=1, days=30, yes=True, now=LATER, actor="rm")

    assert done.deleted == ["1.0.0", "1.0.1"]
    assert done.message == (
        "deleted 2 version(s) of image debian-12: 1.0.0, 1.0.1; and their managed image(s): "
        "imageforge-debian-12-1-0-0, imageforge-debian-12-1-0-1 (already gone)"
    )
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.2"]
    assert _images(session) == ["base-image-linux-v2", "imageforge-debian-12-1-0-2"]
    lock = locks.read(session)
    assert lock is not None and lock.level == "CanNotDelete"


def test_prune_without_yes_leaves_the_managed_images(session, defined):
    old = _recorded_image(session, "imageforge-debian-12-1-0-0")
    publish(session, defined, "1.0.0", extra_tags={tags.MANAGED_IMAGE: old})
    _promoted(session, defined, "1.0.1")
    listed = retention.prune(session, defined, keep=1, days=30, now=LATER)
    assert listed.candidates == ["1.0.0"] and listed.deleted == []
    assert "imageforge-debian-12-1-0-0" in _images(session)


def test_a_tag_that_is_not_a_managed_image_id_fails_prune_in_one_line(session, defined):
    publish(session, defined, "1.0.0", extra_tags={tags.MANAGED_IMAGE: "not-an-id"})
    _promoted(session, defined, "1.0.1")
    with pytest.raises(AzureError) as caught:
        retention.prune(session, defined, keep=1, days=30, yes=True, now=LATER)
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "prune deleted 1 of 1 version(s); version 1.0.0's managed image not-an-id: "
        "'not-an-id' is not a managed image id"
    )
    assert [v.name for v in gallery.list_versions(session, defined)] == ["1.0.1"]


def test_parse_id_and_tag_for(session):
    managed = managedimages.image_id(session, "imageforge-x-1-0-0", "rg-a")
    assert managedimages.parse_id(managed) == ("rg-a", "imageforge-x-1-0-0")
    with pytest.raises(AzureError, match="is not a managed image id"):
        managedimages.parse_id(managed.replace("/images/", "/disks/"))
    assert managedimages.tag_for(managed) == {tags.MANAGED_IMAGE: managed}
    with pytest.raises(AzureError, match="longer than a tag value may be"):
        managedimages.tag_for(managedimages.image_id(session, "i" * 80, "g" * 90) + "x" * 60)
