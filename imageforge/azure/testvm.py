"""The throw-away test VM: a VM from an exact gallery version, reachable, then deleted.

``deploy_test_vm`` checks what it is asked for (a target region of the image where the version
has replicated, an allowed VM size) before anything is created, then makes the VM with
``throwaway.throwaway_vm``: its own tagged resource group, a per-run key (Linux, admin user
``imageforge``) or password (Windows), an NSG that admits only the runner (``vmaccess``).

``sandbox_build_vm`` and ``capture_version`` live in ``buildvm``; they and ``TestVm`` are
importable from here too, where the pipeline has always found them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from imageforge import regions as region_names
from imageforge.azure.buildvm import capture_version, sandbox_build_vm
from imageforge.azure.clients import Session
from imageforge.azure.gallery import get_version
from imageforge.azure.throwaway import TestVm, throwaway_vm
from imageforge.azure.vmbodies import VmPlan
from imageforge.config import ImageDefinition
from imageforge.errors import AzureError, ConfigError

__all__ = [
    "TEST_ADMIN",
    "TestVm",
    "allowed_vm_sizes",
    "capture_version",
    "deploy_test_vm",
    "sandbox_build_vm",
]

TEST_ADMIN = "imageforge"


def allowed_vm_sizes(image: ImageDefinition) -> tuple[str, ...]:
    """The sizes a VM of ``image`` may have: its test size, its build size and the build's
    allowed sizes."""
    return tuple(
        dict.fromkeys((image.test.vm_size, image.build.vm_size, *image.build.allowed_vm_sizes))
    )


def _checked_size(image: ImageDefinition, vm_size: str | None) -> str:
    size = vm_size or image.test.vm_size
    allowed = allowed_vm_sizes(image)
    if size.lower() not in {s.lower() for s in allowed}:
        raise ConfigError(
            f"VM size {size!r} is not allowed for image {image.name} "
            f"(test.vm_size, build.vm_size or build.allowed_vm_sizes: {', '.join(allowed)})",
            path=str(image.path),
            key="build.allowed_vm_sizes",
        )
    return size


@contextmanager
def deploy_test_vm(
    session: Session,
    image: ImageDefinition,
    version: str,
    *,
    run_id: str,
    region: str | None = None,
    vm_size: str | None = None,
    allowed_source: str | None = None,
    subnet_id: str | None = None,
    purpose: str = "test",
    reach_timeout: float | None = None,
    wait: bool = True,
) -> Iterator[TestVm]:
    """A VM from the exact version id of ``image``/``version`` in ``region`` (default: the build
    region), reachable when the block starts, deleted with its group when it ends.

    ``region`` must be one of the image's target regions and ``vm_size`` (default: the image's
    test size) one of ``allowed_vm_sizes(image)``: anything else is a ConfigError naming the
    image file, before anything is created."""
    where = region_names.normalize(region or image.build.region)
    if not region_names.is_region(where):
        raise ConfigError(f"unknown Azure region {region!r} for the test VM")
    image.region(where)
    size = _checked_size(image, vm_size)
    info = get_version(session, image, version)
    state = info.regions.get(where)
    if state != "Completed":
        raise AzureError(
            f"image {image.name} version {info.name} is not available in {where} "
            f"(replication: {state or 'not replicated there'}); replicate it first"
        )
    plan = VmPlan(
        purpose=purpose,
        run_id=run_id,
        image=image,
        region=where,
        vm_size=size,
        username=TEST_ADMIN,
        image_reference={"id": info.id},
        allowed_source=allowed_source,
        subnet_id=subnet_id,
        reach_timeout=reach_timeout,
        wait=wait,
        os_profile=not image.specialized,
    )
    with throwaway_vm(session, plan) as vm:
        yield vm
