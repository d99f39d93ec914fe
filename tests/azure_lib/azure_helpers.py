"""Helpers of the imageforge.azure tests: sites, image definitions, versions, ARM counters.

Imported as ``azure_helpers`` (a unique name, so it cannot collide with another directory's
helpers). Everything talks to a real emulator over HTTPS through the real SDK clients.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from imageforge import tags
from imageforge.azure.clients import Session, session_for_emulator
from imageforge.config import ImageDefinition, TargetRegion, load_image_file
from imageforge.sandbox.harness import EmulatorHandle
from imageforge.site import Site

REPO = Path(__file__).resolve().parents[2]
LOCATION = "westeurope"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def make_site(**overrides: Any) -> Site:
    """A site of its own (a unique resource group), so tests can share one emulator."""
    values: dict[str, Any] = {
        "root": REPO,
        "resource_group": unique("rg-gallery-"),
        "gallery": "gallery",
        "location": LOCATION,
        "tags": {"owner": "imageforge-tests"},
        "test_vm_ttl_hours": 6,
    }
    values.update(overrides)
    return Site(**values)


def load_image(name: str = "debian-12", **changes: Any) -> ImageDefinition:
    image = load_image_file(REPO / "images" / f"{name}.pkrvars.hcl", repo_root=REPO)
    return dataclasses.replace(image, **changes) if changes else image


def with_regions(image: ImageDefinition, *names: str, replicas: int = 1) -> ImageDefinition:
    regions = tuple(TargetRegion(n, replicas, "Standard_LRS") for n in names)
    return dataclasses.replace(image, target_regions=regions)


def new_session(
    arm: EmulatorHandle, *, client_options: dict[str, Any] | None = None, **site_overrides: Any
) -> Session:
    return session_for_emulator(arm, make_site(**site_overrides), **(client_options or {}))


def managed_image_id(session: Session, image: ImageDefinition) -> str:
    """The id of a managed image recorded from a (blob) OS disk that fits ``image``'s gallery
    definition, created in the gallery's region when missing (a version's source must exist)."""
    site = session.site
    generation = image.gallery_image.hyper_v_generation
    name = f"base-image-{image.os}-{generation.lower()}"
    try:
        return str(session.compute.images.get(site.resource_group, name).id)
    except ResourceNotFoundError:
        pass
    body = {
        "location": site.location,
        "properties": {
            "hyperVGeneration": generation,
            "storageProfile": {
                "osDisk": {
                    "osType": image.os.capitalize(),
                    "osState": image.gallery_image.os_state,
                    "blobUri": "https://sandbox.blob.core.windows.net/vhds/base-image.vhd",
                }
            },
        },
    }
    poller = session.compute.images.begin_create_or_update(site.resource_group, name, body)
    return str(poller.result().id)


def publish(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    stage: str | None = "built",
    extra_tags: dict[str, str] | None = None,
    regions: list[str] | None = None,
    wait: bool = True,
    mode: str | None = None,
) -> Any:
    """A version published from a (recorded) managed image, excluded from latest, in the
    gallery's region only unless ``regions`` says otherwise: bookkeeping, no machine.
    ``mode``: publishingProfile.replicationMode (Shallow for a preview)."""
    site = session.site
    version_tags = {tags.IMAGE: image.name, **(extra_tags or {})}
    if stage:
        version_tags[tags.STAGE] = stage
    poller = session.compute.gallery_image_versions.begin_create_or_update(
        site.resource_group,
        site.gallery,
        image.gallery_image.name,
        version,
        {
            "location": site.location,
            "tags": version_tags,
            "properties": {
                "publishingProfile": {
                    "excludeFromLatest": True,
                    "targetRegions": [{"name": r} for r in (regions or [site.location])],
                    **({"replicationMode": mode} if mode else {}),
                },
                "storageProfile": {"source": {"id": managed_image_id(session, image)}},
            },
        },
    )
    return poller.result() if wait else poller


#: The test image's target regions other than its build region (westeurope).
SMOKE_REGIONS = ("northeurope", "swedencentral")


def evidence_tags(passed: int = 12, failed: int = 0) -> dict[str, str]:
    """What the test stage and the smoke test of each replica would have written."""
    return {
        tags.TESTS_PASSED: str(passed),
        tags.TESTS_FAILED: str(failed),
        tags.TESTS_ERRORS: "0",
        **{tags.SMOKE_PREFIX + region: "passed 7 of 7" for region in SMOKE_REGIONS},
    }


def requests_since(arm: EmulatorHandle) -> list[dict[str, Any]]:
    return list(arm.stats()["log"])


def methods(log: list[dict[str, Any]], method: str, fragment: str = "") -> list[dict[str, Any]]:
    return [e for e in log if e["method"] == method and fragment.lower() in e["path"].lower()]
