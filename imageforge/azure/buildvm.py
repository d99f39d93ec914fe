"""The sandbox's build VM, and the capture of a build VM into a gallery version.

On the sandbox Packer's null builder provisions a VM imageforge made (``sandbox_build_vm``):
the image's base image in the build region, the communicator's user with a per-run key.
``capture_version`` then deallocates and generalizes it (a Specialized image: deallocates
only) and creates the gallery version from it, in the gallery's region only and excluded from
latest: replication and promotion are later, separate steps. An image file's
``managed_image = true`` also makes a managed image from the same VM
(``azure.managedimages``) and records its id on the version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from imageforge import regions as region_names
from imageforge import tags as tag_names
from imageforge.azure import locks, managedimages
from imageforge.azure.arm import arm_call
from imageforge.azure.clients import Session
from imageforge.azure.gallery import create_version, version_exists
from imageforge.azure.records import VersionInfo
from imageforge.azure.throwaway import TestVm, throwaway_vm
from imageforge.azure.vmbodies import VmPlan
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError, VersionError


@contextmanager
def sandbox_build_vm(
    session: Session,
    image: ImageDefinition,
    *,
    run_id: str,
    base_version: str | None = None,
    reach_timeout: float | None = None,
    wait: bool = True,
) -> Iterator[TestVm]:
    """The sandbox's build VM: the image's base image (marketplace reference, at
    ``base_version`` when given) in the build region, the communicator's user with a per-run
    key; Packer's null builder provisions it."""
    base = image.base_image
    plan = VmPlan(
        purpose="build",
        run_id=run_id,
        image=image,
        region=image.build.region,
        vm_size=image.build.vm_size,
        username=image.communicator.username,
        image_reference={
            "publisher": base.publisher,
            "offer": base.offer,
            "sku": base.sku,
            "version": base_version or base.version,
        },
        allowed_source=None,
        subnet_id=None,
        reach_timeout=reach_timeout,
        wait=wait,
    )
    with throwaway_vm(session, plan) as vm:
        yield vm


def capture_version(
    session: Session,
    image: ImageDefinition,
    version: str,
    vm: TestVm,
    *,
    tags: Mapping[str, object],
) -> str:
    """``capture``, answering the version's id."""
    return capture(session, image, version, vm, tags=tags).id


def capture(
    session: Session,
    image: ImageDefinition,
    version: str,
    vm: TestVm,
    *,
    tags: Mapping[str, object],
    shallow: bool = False,
) -> VersionInfo:
    """Deallocate and generalize the build VM (Specialized: deallocate only), then create the
    gallery version from it in the build region only, excluded from latest, with ``tags``;
    returns the version as the create operation answered it (no second read). ``shallow``:
    replicationMode Shallow, one replica (a preview: the plugin's use_shallow_replication does
    the same on Azure)."""
    site = session.site
    gallery_region = region_names.normalize(site.location)
    if region_names.normalize(vm.region) != gallery_region:
        raise ConfigError(
            f"image {image.name} builds in {vm.region} but gallery {site.gallery} is in "
            f"{gallery_region}: a version is created in the gallery's region from a VM there",
            path=str(image.path),
            key="build.region",
        )
    if version_exists(session, image, version):
        raise VersionError(
            f"version {version} of image {image.name} already exists in gallery {site.gallery}"
        )
    vms = session.compute.virtual_machines
    doing = "deallocating" if image.specialized else "generalizing"
    with arm_call(f"{doing} build VM {vm.vm_name} in {vm.resource_group}", where=session.where):
        vms.begin_deallocate(vm.resource_group, vm.vm_name).result()
        if not image.specialized:  # os_state Specialized: captured as it is, like the plugin's
            vms.generalize(vm.resource_group, vm.vm_name)  # specialized gallery destination
    target = next((r for r in image.target_regions if r.name == gallery_region), None)
    body = {
        "location": gallery_region,
        "tags": tag_names.merge({tag_names.IMAGE: image.name}, tags),
        "properties": {
            "publishingProfile": {
                "excludeFromLatest": True,
                **({"replicationMode": "Shallow"} if shallow else {}),
                "targetRegions": [
                    {
                        "name": gallery_region,
                        "regionalReplicaCount": 1 if shallow or not target else target.replicas,
                        "storageAccountType": target.storage_account_type
                        if target
                        else "Standard_LRS",
                    }
                ],
            },
            "storageProfile": {"source": {"virtualMachineId": vm.vm_id}},
        },
    }
    if not image.managed_image:
        return create_version(session, image, version, body)
    return _with_managed_image(session, image, version, vm, body)


def _with_managed_image(
    session: Session, image: ImageDefinition, version: str, vm: TestVm, body: dict[str, Any]
) -> VersionInfo:
    """``managed_image = true``: the managed image from the same generalized VM first, then
    the version recording its id; a version that cannot be created takes the image with it."""
    labels = {k: v for k, v in body["tags"].items() if k != tag_names.STAGE}
    managed_id = managedimages.create_from_vm(
        session, image, version, vm.vm_id, location=body["location"], tags=labels
    )
    body["tags"] = tag_names.merge(body["tags"], managedimages.tag_for(managed_id))
    try:
        return create_version(session, image, version, body)
    except BaseException:
        group = session.site.resource_group
        with (
            contextlib.suppress(Exception),  # the capture's own error is the one to see
            locks.lifted_in(session, group, actor="imageforge", why="failed capture"),
        ):
            managedimages.delete(session, managed_id)
        raise
