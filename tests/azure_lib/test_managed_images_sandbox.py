"""``managed_image = true`` on real sandbox machines (chroot backend): the managed image the
capture makes from the build VM is a real capture of that VM (a version made from it boots
with what the build wrote), the version records it, and prune deletes it with the version.

Needs root, debootstrap and sshd (the base image is cached across runs).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from azure_helpers import load_image, new_session
from test_testvm_sandbox import _run

from imageforge import tags
from imageforge.azure import buildvm, gallery, locks, retention, testvm
from imageforge.sandbox.harness import EmulatorHandle, running_emulator

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(tmp_path_factory.mktemp("chroot-mi"), backend="chroot") as handle:
        yield handle
        assert handle.status()["vms"] == 0, "a VM outlived its with block"


def test_a_sandbox_capture_keeps_a_bootable_managed_image_that_prune_deletes(machines):
    image = dataclasses.replace(load_image("debian-12"), managed_image=True)
    with new_session(machines) as session:
        site = session.site
        gallery.ensure_image_definition(session, image)
        locks.ensure(session)
        with testvm.sandbox_build_vm(session, image, run_id="smi-1") as build:
            _run(build, "echo managed-image-test | sudo tee /etc/imageforge-managed-test")
            info = buildvm.capture(session, image, "1.0.0", build, tags={tags.STAGE: "built"})
        name = "imageforge-debian-12-1-0-0"
        managed = session.compute.images.get(site.resource_group, name)
        assert info.tags[tags.MANAGED_IMAGE] == managed.id
        assert managed.provisioning_state == "Succeeded"
        assert managed.source_virtual_machine.id.lower().endswith(build.vm_name.lower())

        # a version from the managed image alone boots with what the build wrote
        session.compute.gallery_image_versions.begin_create_or_update(
            site.resource_group, site.gallery, image.gallery_image.name, "1.0.1",
            {"location": site.location, "tags": {tags.STAGE: "built"},
             "properties": {"publishingProfile": {"excludeFromLatest": True},
                            "storageProfile": {"source": {"id": managed.id}}}},
        ).result()  # fmt: skip
        with testvm.deploy_test_vm(session, image, "1.0.1", run_id="smi-2") as vm:
            assert _run(vm, "cat /etc/imageforge-managed-test") == "managed-image-test\n"

        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
        done = retention.prune(session, image, keep=0, days=0, yes=True, now=later)
        assert done.deleted == ["1.0.0", "1.0.1"]
        assert done.message.endswith(f"; and their managed image(s): {name}")
        assert [i.name for i in session.compute.images.list_by_resource_group(
            site.resource_group)] == []  # fmt: skip
        lock = locks.read(session)
        assert lock is not None and lock.level == "CanNotDelete"
