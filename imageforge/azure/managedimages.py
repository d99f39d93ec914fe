"""Managed images (``Microsoft.Compute/images``) kept beside gallery versions.

An image file's ``managed_image = true`` asks for a managed image of each version, in the build
region and the gallery's resource group, named as templates/locals.pkr.hcl names the builtin
profile's intermediate image (``imageforge-<image>-<version with dashes>``). Its id is recorded
on the version (tag ``imageforge.managed-image``), and prune deletes it with the version.

ComputeRP ``Images_CreateOrUpdate`` (example Image_CreateFromAVM.json): a PUT whose
``properties.sourceVirtualMachine.id`` names a generalized VM of the image's region; Azure
derives osType, osState and hyperVGeneration from the VM, so the body names none of them.
Deletes are the caller's to run with the gallery group's lock lifted (``locks.lifted``): this
module only makes the calls.
"""

from __future__ import annotations

from collections.abc import Mapping

from imageforge import tags as tag_names
from imageforge.azure import ids
from imageforge.azure.arm import arm_call
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, NotFoundError


def image_name(image: ImageDefinition, version: str) -> str:
    """As templates/locals.pkr.hcl names it: imageforge-<image>-<version with dashes>."""
    return f"imageforge-{image.name}-{version.replace('.', '-')}"


def image_id(session: Session, name: str, group: str | None = None) -> str:
    return f"{ids.group_id(session, group)}/providers/Microsoft.Compute/images/{name}"


def parse_id(managed_id: str) -> tuple[str, str]:
    """(resource group, name) of a managed image id; an AzureError for anything else."""
    parts = managed_id.strip().strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        group = parts[lowered.index("resourcegroups") + 1]
        at = lowered.index("microsoft.compute")
        if lowered[at + 1] != "images" or len(parts) != at + 3 or not parts[at + 2]:
            raise ValueError
    except (ValueError, IndexError):
        raise AzureError(f"{managed_id!r} is not a managed image id") from None
    return group, parts[at + 2]


def tag_for(managed_id: str) -> dict[str, str]:
    """The version tag that records its managed image. Azure clips nothing, imageforge's
    ``tags.clip`` would: an id longer than a tag value may be is refused, not shortened."""
    if len(managed_id) > tag_names.MAX_VALUE:
        raise AzureError(
            f"managed image id {managed_id} is longer than a tag value may be "
            f"({tag_names.MAX_VALUE}): use a shorter resource group or image name"
        )
    return {tag_names.MANAGED_IMAGE: managed_id}


def create_from_vm(
    session: Session,
    image: ImageDefinition,
    version: str,
    vm_id: str,
    *,
    location: str,
    tags: Mapping[str, object],
) -> str:
    """Create the managed image of ``version`` from the generalized VM ``vm_id`` (in
    ``location``, the VM's region) in the gallery's resource group; answers its id."""
    group, name = session.site.resource_group, image_name(image, version)
    body = {
        "location": location,
        "tags": tag_names.merge({tag_names.IMAGE: image.name}, tags),
        "properties": {"sourceVirtualMachine": {"id": vm_id}},
    }
    with arm_call(f"creating managed image {name} in {group}", where=session.where):
        made = session.compute.images.begin_create_or_update(group, name, body).result()
    return str(made.id)


def find(session: Session, name: str, group: str | None = None) -> str | None:
    """The id of the managed image ``name`` (in the gallery's group by default), or None."""
    where = group or session.site.resource_group
    try:
        with arm_call(f"reading managed image {name} in {where}", where=session.where):
            return str(session.compute.images.get(where, name).id)
    except NotFoundError:
        return None


def delete(session: Session, managed_id: str) -> bool:
    """Delete a managed image by id; False when it was already gone (not an error)."""
    group, name = parse_id(managed_id)
    if find(session, name, group) is None:
        return False
    with arm_call(f"deleting managed image {name} in {group}", where=session.where):
        session.compute.images.begin_delete(group, name).result()
    return True
