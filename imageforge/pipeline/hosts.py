"""Build hosts: the one difference between the targets.

On ``azure`` Packer's azure-arm builder boots, generalizes and publishes by itself (on the
builtin profile imageforge then deletes the intermediate managed image, unless the image file
says ``managed_image = true``: then it is kept and recorded on the version); on ``sandbox``
imageforge asks the emulator for the build VM, Packer's null builder provisions it over SSH,
and imageforge generalizes it and captures the version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from imageforge.azure import buildvm, gallery, locks, managedimages
from imageforge.azure.clients import Session
from imageforge.azure.records import VersionInfo
from imageforge.azure.throwaway import TestVm
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError
from imageforge.kinds import Target
from imageforge.packer import Artifact
from imageforge.pipeline.context import actor, say
from imageforge.render import Profile, source_name
from imageforge.versions import Version


class BuildHost(Protocol):
    only: str
    variables: dict[str, str]

    def before_build(self, version: Version) -> None: ...

    def after_failure(self, version: Version) -> None: ...

    def publish(
        self, version: Version, artifact: Artifact, tags: dict[str, str], *, preview: bool
    ) -> VersionInfo:
        """Make the built version a gallery version (if Packer has not) and return it;
        ``preview``: a shallow one."""
        ...


@dataclass
class AzureBuildHost:
    """Packer's azure-arm builder does it all; builtin leaves a managed image to delete."""

    session: Session
    image: ImageDefinition
    profile: Profile
    only: str
    variables: dict[str, str] = field(default_factory=dict)

    def managed_image_name(self, version: Version) -> str:
        """As templates/locals.pkr.hcl names it: imageforge-<image>-<version with dashes>."""
        return managedimages.image_name(self.image, str(version))

    @property
    def makes_image(self) -> bool:
        """Packer makes a managed image: builtin always, plugin when the image file asks."""
        return self.profile.managed_image or self.image.managed_image

    def before_build(self, version: Version) -> None:
        """builtin: a run that stopped after Packer made the managed image left it behind, and
        Packer 1.6 refuses to overwrite it without -force (which would also delete versions)."""
        if self.makes_image:
            self._delete_image(version, "left by an earlier run")

    def after_failure(self, version: Version) -> None:
        if self.makes_image:
            self._delete_image(version, "of the failed build")

    def _delete_image(self, version: Version, why: str) -> None:
        group, name = self.session.site.resource_group, self.managed_image_name(version)
        # lazy: azure-core loads with the first SDK client, not with the pipeline
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.session.compute.images.get(group, name)
        except ResourceNotFoundError:
            return
        say(f"deleting the intermediate managed image {name} {why}")
        with _lock_lifted(self.session, group):
            self.session.compute.images.begin_delete(group, name).result()

    def publish(
        self, version: Version, artifact: Artifact, tags: dict[str, str], *, preview: bool
    ) -> VersionInfo:
        """Packer published it (with use_shallow_replication when ``preview``)."""
        if self.image.managed_image:
            return self._record_image(version)
        if self.profile.managed_image and artifact.artifact_id:
            delete_managed_image(self.session, artifact.artifact_id)
        return gallery.get_version(self.session, self.image, str(version))

    def _record_image(self, version: Version) -> VersionInfo:
        """``managed_image = true``: Packer's managed image is kept, its id on the version."""
        name = self.managed_image_name(version)
        managed_id = managedimages.find(self.session, name)
        if managed_id is None:
            raise AzureError(
                f"Packer published {self.image.name} {version} but left no managed image "
                f"{name} in {self.session.site.resource_group}"
            )
        say(f"keeping managed image {name} (managed_image = true)")
        record = managedimages.tag_for(managed_id)
        return gallery.tag_version(self.session, self.image, str(version), record)


def delete_managed_image(session: Session, image_id: str) -> None:
    """Delete the managed image Packer < 1.7 had to create on the way to the gallery."""
    parts = image_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    try:
        group = parts[lowered.index("resourcegroups") + 1]
        at = lowered.index("microsoft.compute")
        if lowered[at + 1] != "images" or len(parts) != at + 3:
            raise ValueError
        name = parts[at + 2]
    except (ValueError, IndexError):
        raise AzureError(
            f"the manifest's artifact {image_id!r} is not a managed image id"
        ) from None
    say(f"deleting the intermediate managed image {name} in {group}")
    with _lock_lifted(session, group):
        session.compute.images.begin_delete(group, name).result()


def _lock_lifted(session: Session, group: str) -> contextlib.AbstractContextManager[object]:
    """The managed image lives in the gallery's group, under imageforge's CanNotDelete lock
    (``lock_gallery``): lifted around the delete, restored after, as prune does."""
    return locks.lifted_in(session, group, actor=actor(), why="managed image cleanup")


@dataclass
class SandboxBuildHost:
    """A build VM from the sandbox marketplace; captured into the gallery after Packer."""

    session: Session
    image: ImageDefinition
    vm: TestVm
    only: str
    variables: dict[str, str] = field(default_factory=dict)

    def before_build(self, version: Version) -> None:
        return None

    def after_failure(self, version: Version) -> None:
        return None

    def publish(
        self, version: Version, artifact: Artifact, tags: dict[str, str], *, preview: bool
    ) -> VersionInfo:
        return buildvm.capture(
            self.session, self.image, str(version), self.vm, tags=tags, shallow=preview
        )


def packer_only(image: ImageDefinition, target: Target) -> str:
    """Packer's -only selector: <build name>.<source type>.<source name>."""
    name = source_name(image.name)
    kind = "azure-arm" if target == "azure" else "null"
    return f"{name}.{kind}.{name}"


@contextlib.contextmanager
def build_host(
    session: Session,
    target: Target,
    image: ImageDefinition,
    profile: Profile,
    run_id: str,
    base_version: str | None = None,
) -> Iterator[BuildHost]:
    if target == "azure":
        yield AzureBuildHost(session, image, profile, packer_only(image, target))
        return
    with buildvm.sandbox_build_vm(session, image, run_id=run_id, base_version=base_version) as vm:
        yield SandboxBuildHost(
            session,
            image,
            vm,
            packer_only(image, target),
            {
                "sandbox_host": vm.host,
                "sandbox_port": str(vm.port),
                "sandbox_username": vm.username,
                "sandbox_private_key_file": str(vm.ssh_key_path),
            },
        )
