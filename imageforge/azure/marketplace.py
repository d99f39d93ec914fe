"""Marketplace base images: the concrete version ``latest`` means today, and what exists.

A build pins its base: ``latest`` in an image definition is resolved, once, to the newest
version the region's marketplace lists (ComputeRP ``VirtualMachineImages_List`` through the
SDK; the sandbox emulator serves its own marketplace the same way), Packer builds exactly that
version, and the version is recorded on the image version (``imageforge.base-image-version``).
``invoke outdated`` compares that record with the newest version listed now.
"""

from __future__ import annotations

from imageforge.azure.arm import arm_call, as_json
from imageforge.azure.clients import Session
from imageforge.config import ImageDefinition
from imageforge.errors import ConfigError, NotFoundError

LATEST = "latest"


def version_key(name: str) -> tuple[int, ...]:
    """Marketplace versions are dotted integers (e.g. 0.20250605.2137): compare as numbers."""
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


def reference(image: ImageDefinition) -> str:
    base = image.base_image
    return f"{base.publisher}:{base.offer}:{base.sku}"


def versions(session: Session, image: ImageDefinition, region: str | None = None) -> list[str]:
    """The base image's versions in ``region`` (default: the build region), oldest first."""
    base = image.base_image
    where = region or image.build.region
    shown = reference(image)
    try:
        with arm_call(f"listing the versions of {shown} in {where}", where=session.where):
            items = session.compute.virtual_machine_images.list(
                where, base.publisher, base.offer, base.sku
            )
            names = [str(as_json(item).get("name", "")) for item in items]
    except NotFoundError:
        names = []
    names = sorted((n for n in names if version_key(n)), key=version_key)
    if not names:
        raise ConfigError(
            f"{image.path.name}: base_image {shown} does not exist in {where} (no publisher, "
            "offer or sku of that name lists a version there)"
        )
    return names


def newest(session: Session, image: ImageDefinition) -> str:
    return versions(session, image)[-1]


def resolve(session: Session, image: ImageDefinition, requested: str | None = None) -> str:
    """The concrete base version to build: ``requested`` (--base-version), else the image
    definition's ``base_image.version``, with ``latest`` resolved; one that the marketplace does
    not list is a one-line error."""
    wanted = (requested or image.base_image.version).strip()
    available = versions(session, image)
    if wanted.lower() == LATEST:
        return available[-1]
    if wanted in available:
        return wanted
    where = "--base-version" if requested else f"{image.path.name}: base_image.version"
    raise ConfigError(
        f"{where} {wanted!r}: {reference(image)} has no such version in "
        f"{image.build.region} (newest: {available[-1]})"
    )
